/**
 * `npm start` shows only its screen: with the runtime installed the way workers/start.ts installs
 * it, a real worker whose activity fails writes the SDK's multi-line `Activity failed` warnings
 * (with stack traces) to the log file and nothing to the screen, and an SDK error appears as exactly
 * one line of its own, never inside the progress line.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { createScreen, oneLine } from '../../workers/start-screen.js';
import { stackEndpoints, uniqueId } from '../support/stack.js';

const root = fileURLToPath(new URL('../..', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'start-screen-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function run(args: string[]): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'test/support/screen/child.ts', ...args], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'], timeout: 180_000 });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.on('error', reject);
    child.on('close', (status) => resolve({ status, stdout, stderr }));
  });
}

describe('npm start screen', () => {
  it('SDK warnings with stack traces go to the log file only; an SDK error is one line of its own', async () => {
    const logPath = join(dir, 'worker.log');
    const result = await run([logPath, `screen-${uniqueId('q')}`, stackEndpoints().temporalAddress]);
    expect(result.status, result.stderr).toBe(0);
    // The screen: the two progress states and one problem line, nothing else.
    const screenLines = result.stdout.split('\n').filter((l) => l !== '');
    expect(screenLines).toEqual(['\r\x1b[K[+00:01] landed 1 | open alerts 0', '  ! temporal: core lost its connection', '\r\x1b[K[+00:02] landed 2 | open alerts 1']);
    expect(result.stdout).not.toContain('Activity failed');
    expect(result.stdout).not.toContain('boom');
    expect(result.stderr).not.toContain('Activity failed');
    // The file has all of it, stack traces included.
    const log = readFileSync(logPath, 'utf8');
    // One JSON object per line (pino), the SDK's entries under component "temporal".
    const entries = log.trim().split('\n').map((line) => JSON.parse(line) as Record<string, unknown>);
    expect(entries.some((e) => e.component === 'temporal' && e.level === 'warn' && e.msg === 'Activity failed')).toBe(true);
    expect(log).toContain('boom: the sink refused the batch');
    expect(log).toContain('stack line 2');
  });

  it('the screen never puts a problem inside the live line, and keeps each problem to one line', () => {
    let out = '';
    const screen = createScreen({ write: (t) => (out += t), tty: true });
    screen.live('[+00:05] landed 10');
    screen.problem('first line\n    at stack (file.ts:1)');
    screen.live('[+00:06] landed 11');
    screen.say('alert opened');
    expect(out).toBe('\r\x1b[K[+00:05] landed 10\n  ! first line\n\r\x1b[K[+00:06] landed 11\nalert opened\n');
    expect(oneLine('\n\n  x'.padEnd(400, 'y'))).toHaveLength(200);
    let piped = '';
    const plain = createScreen({ write: (t) => (piped += t), tty: false });
    plain.live('a');
    plain.problem('b');
    expect(piped).toBe('a\n  ! b\n');
  });
});
