/**
 * The local stack's process plumbing without starting any server: the cross-process lock, PID
 * ownership, log tails in errors, and the single-node Kafka settings consumer groups depend on.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { serverProperties } from '../../infra/local/kafka.js';
import { componentPaths, ownedPid, sleep, StackError, stateDir, tailFile, withLock } from '../../infra/local/process.js';
import { loadConfig } from '../../schemas/config.js';

const dirs: string[] = [];
function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'local-stack-unit-'));
  dirs.push(dir);
  return dir;
}
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

describe('withLock', () => {
  it('runs holders of the same lock one after the other', async () => {
    const lock = join(tempDir(), 'x.lock');
    const events: string[] = [];
    const holder = (name: string) =>
      withLock(lock, 5000, async () => {
        events.push(`${name}:in`);
        await sleep(50);
        events.push(`${name}:out`);
      });
    await Promise.all([holder('a'), holder('b')]);
    const names = events.map((e) => e.split(':')[0]);
    expect(events).toHaveLength(4);
    expect(names[0]).toBe(names[1]); // the first holder left before the second entered
    expect(names[2]).toBe(names[3]);
    expect(existsSync(lock)).toBe(false);
  });

  it('takes over a lock whose holder process is gone', async () => {
    const lock = join(tempDir(), 'x.lock');
    const gone = spawn('true');
    await new Promise((r) => gone.once('exit', r));
    writeFileSync(lock, `${gone.pid}\n`);
    await expect(withLock(lock, 2000, async () => 'got it')).resolves.toBe('got it');
  });

  it('gives up after its timeout while a live process holds the lock', async () => {
    const lock = join(tempDir(), 'x.lock');
    writeFileSync(lock, `${process.pid}\n`);
    await expect(withLock(lock, 300, async () => 'never')).rejects.toThrow(/timed out waiting for lock .* held by PID/);
  });
});

describe('ownedPid', () => {
  it('accepts a live PID whose command line carries the marker and drops a stale PID file', async () => {
    const config = loadConfig({ PLATFORM_STATE_DIR: tempDir() });
    const paths = componentPaths(config, 'kafka');
    const marker = join(stateDir(config), 'kafka', 'server.properties');
    // A process whose command line carries the marker, as our servers' do (a path in the state folder).
    const marked = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 30000)', marker], { stdio: 'ignore' });
    try {
      writeFileSync(paths.pidFile, `${marked.pid}\n`);
      expect(ownedPid(paths, marker)).toBe(marked.pid);
      expect(ownedPid(paths, '/some/other/state/kafka/server.properties')).toBeNull();
      expect(existsSync(paths.pidFile)).toBe(false);
    } finally {
      marked.kill('SIGKILL');
    }
  });
});

describe('StackError', () => {
  it('names the component, the port and the log file, and quotes the end of the log', () => {
    const log = join(tempDir(), 'kafka.log');
    writeFileSync(log, Array.from({ length: 40 }, (_, i) => `line ${i}`).join('\n'));
    const err = new StackError('kafka', 9092, log, 'not healthy after 120 s');
    expect(err.message).toContain('[kafka] not healthy after 120 s (port 9092, log ' + log + ')');
    expect(err.message).toContain('line 39');
    expect(err.message).not.toContain('line 10\n');
    expect(tailFile(log, 2)).toBe('line 38\nline 39');
    expect(tailFile(join(tempDir(), 'missing.log'), 5)).toBe('');
  });
});

describe('kafka server.properties', () => {
  it('binds to loopback on the configured ports and sets single-node replication for internal topics', () => {
    const props = serverProperties(loadConfig({ LOCAL_KAFKA_PORT: '19092', LOCAL_KAFKA_CONTROLLER_PORT: '19093' }));
    const map = new Map(props.split('\n').filter((l) => l.includes('=') && !l.startsWith('#')).map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));
    expect(map.get('listeners')).toBe('PLAINTEXT://127.0.0.1:19092,CONTROLLER://127.0.0.1:19093');
    expect(map.get('advertised.listeners')).toBe('PLAINTEXT://127.0.0.1:19092');
    expect(map.get('controller.quorum.voters')).toBe('1@127.0.0.1:19093');
    expect(map.get('process.roles')).toBe('broker,controller');
    for (const key of ['offsets.topic.replication.factor', 'transaction.state.log.replication.factor', 'transaction.state.log.min.isr']) {
      expect(map.get(key), key).toBe('1');
    }
    expect(map.get('auto.create.topics.enable')).toBe('false');
    expect(map.get('group.initial.rebalance.delay.ms')).toBe('0');
  });
});
