/**
 * The acknowledge-link endpoint is safe by default: loopback bind, no built-in signing key (a random
 * one is generated into the state folder with mode 0600), refusals naming the variable for a
 * non-loopback bind without a key or public URL, a renamed port variable refused, and a taken port
 * that does not kill the process. Real files, real sockets, the real config parser.
 */
import { chmodSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { Client } from '@temporalio/client';
import { afterAll, describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../schemas/config.js';
import { ackEndpointSettings, isLoopbackHost, signingSecretFileName, startAckEndpoint } from '../../workers/ack-endpoint.js';

const root = fileURLToPath(new URL('../..', import.meta.url));
const dirs: string[] = [];
function tempState(): string {
  const dir = mkdtempSync(join(tmpdir(), 'ack-endpoint-'));
  dirs.push(dir);
  return dir;
}
afterAll(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

function refusal(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as ConfigError).message;
  }
  throw new Error('expected a ConfigError');
}

describe('acknowledge-link endpoint settings', () => {
  it('tells loopback addresses from the rest', () => {
    for (const host of ['127.0.0.1', '127.1.2.3', 'localhost', '::1', '[::1]', 'LOCALHOST']) expect(isLoopbackHost(host), host).toBe(true);
    for (const host of ['0.0.0.0', '::', '10.0.0.5', '192.168.1.2', 'example.com', 'fe80::1', '128.0.0.1']) expect(isLoopbackHost(host), host).toBe(false);
  });

  it('defaults to 127.0.0.1:8787 with a random key generated once into the state folder, mode 0600', () => {
    const state = tempState();
    const config = loadConfig({ PLATFORM_STATE_DIR: state });
    const first = ackEndpointSettings(config);
    expect(first).toMatchObject({ host: '127.0.0.1', port: 8787, publicUrl: 'http://127.0.0.1:8787', secretSource: { kind: 'state-file', path: join(state, signingSecretFileName) } });
    expect(first.secret.length).toBeGreaterThanOrEqual(32);
    expect(statSync(join(state, signingSecretFileName)).mode & 0o777).toBe(0o600);
    // Every later process on this machine signs with the same key.
    expect(ackEndpointSettings(config).secret).toBe(first.secret);
    // Another state folder gets another key: there is no shared built-in value.
    expect(ackEndpointSettings(loadConfig({ PLATFORM_STATE_DIR: tempState() })).secret).not.toBe(first.secret);
  });

  it('narrows a key file readable by others to 0600, and refuses a damaged one naming the file', () => {
    const state = tempState();
    const path = join(state, signingSecretFileName);
    writeFileSync(path, 'an-existing-key-of-enough-length\n');
    chmodSync(path, 0o644);
    expect(ackEndpointSettings(loadConfig({ PLATFORM_STATE_DIR: state })).secret).toBe('an-existing-key-of-enough-length');
    expect(statSync(path).mode & 0o777).toBe(0o600);
    writeFileSync(path, 'short');
    expect(refusal(() => ackEndpointSettings(loadConfig({ PLATFORM_STATE_DIR: state })))).toContain(`ALERT_SIGNING_SECRET: unset, and the generated key in ${path} is damaged`);
  });

  it('follows LOCAL_ACK_PORT and PLATFORM_HTTP_HOST; a configured key is used as is and no file is written', () => {
    const state = tempState();
    const settings = ackEndpointSettings(loadConfig({ PLATFORM_STATE_DIR: state, LOCAL_ACK_PORT: '18787', PLATFORM_HTTP_HOST: '::1', ALERT_SIGNING_SECRET: 'configured-secret-0123456789' }));
    expect(settings).toMatchObject({ host: '::1', port: 18787, publicUrl: 'http://[::1]:18787', secret: 'configured-secret-0123456789', secretSource: { kind: 'environment' } });
    expect(() => statSync(join(state, signingSecretFileName))).toThrow();
  });

  it('refuses a non-loopback bind without ALERT_SIGNING_SECRET, and without PLATFORM_PUBLIC_URL, naming each', () => {
    const state = tempState();
    const both = refusal(() => ackEndpointSettings(loadConfig({ PLATFORM_STATE_DIR: state, PLATFORM_HTTP_HOST: '0.0.0.0' })));
    expect(both).toContain('ALERT_SIGNING_SECRET: required when PLATFORM_HTTP_HOST is "0.0.0.0" (not a loopback address)');
    expect(both).toContain('PLATFORM_PUBLIC_URL: required when PLATFORM_HTTP_HOST is "0.0.0.0"');
    // No key was generated for it either.
    expect(() => statSync(join(state, signingSecretFileName))).toThrow();
    const noSecret = refusal(() => ackEndpointSettings(loadConfig({ PLATFORM_HTTP_HOST: '10.1.2.3', PLATFORM_PUBLIC_URL: 'https://ops.example.com' })));
    expect(noSecret).toContain('ALERT_SIGNING_SECRET');
    expect(noSecret).not.toContain('PLATFORM_PUBLIC_URL');
    const ok = ackEndpointSettings(loadConfig({ PLATFORM_HTTP_HOST: '0.0.0.0', PLATFORM_PUBLIC_URL: 'https://ops.example.com/sw/', ALERT_SIGNING_SECRET: 'configured-secret-0123456789' }));
    expect(ok).toMatchObject({ host: '0.0.0.0', publicUrl: 'https://ops.example.com/sw' });
  });

  it('refuses the old PLATFORM_HTTP_PORT with the new name, and a bad host or port', () => {
    expect(refusal(() => loadConfig({ PLATFORM_HTTP_PORT: '8788' }))).toContain('PLATFORM_HTTP_PORT: renamed to LOCAL_ACK_PORT; set LOCAL_ACK_PORT=8788 instead');
    expect(refusal(() => loadConfig({ LOCAL_ACK_PORT: '99999' }))).toMatch(/LOCAL_ACK_PORT: .*got "99999"/);
    expect(refusal(() => loadConfig({ PLATFORM_HTTP_HOST: 'http://0.0.0.0' }))).toMatch(/PLATFORM_HTTP_HOST: expected a host name or IP address/);
  });

  it('the worker process refuses to start on 0.0.0.0 without a signing secret, naming the variable, before connecting anywhere', () => {
    const result = spawnSync(process.execPath, ['--import', 'tsx', 'workers/worker.ts'], {
      cwd: root,
      // Addresses where nothing listens: the refusal must come before any connection attempt.
      env: { PATH: process.env.PATH, HOME: process.env.HOME, PLATFORM_HTTP_HOST: '0.0.0.0', PLATFORM_PUBLIC_URL: 'https://ops.example.com', TEMPORAL_ADDRESS: '127.0.0.1:1', KAFKA_BROKERS: '127.0.0.1:1', CLICKHOUSE_URL: 'http://127.0.0.1:1' },
      encoding: 'utf8',
      timeout: 60_000,
    });
    expect(result.status).toBe(1);
    expect(result.stderr).toContain('ALERT_SIGNING_SECRET: required when PLATFORM_HTTP_HOST is "0.0.0.0"');
  });

  it('a second endpoint on a taken port logs one line and runs without serving links instead of dying with EADDRINUSE', async () => {
    const taken: Server = createServer();
    await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
    const port = (taken.address() as AddressInfo).port;
    const lines: string[] = [];
    try {
      const settings = ackEndpointSettings(loadConfig({ PLATFORM_STATE_DIR: tempState(), LOCAL_ACK_PORT: String(port) }));
      // The client is never used: nothing is served.
      const client = new Client();
      const http = await startAckEndpoint({ client, settings, log: { info: () => undefined, warn: (m) => lines.push(m) } });
      expect(http).toBeNull();
      expect(lines).toEqual([`acknowledge-link endpoint not started: 127.0.0.1:${port} is in use (another worker serves the links; set LOCAL_ACK_PORT to run a separate one)`]);
      // A free port serves, on 127.0.0.1 by default.
      const served = await startAckEndpoint({ client, settings, port: 0, log: { info: () => undefined, warn: (m) => lines.push(m) } });
      expect(served?.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
      expect((await fetch(`${served!.url}/healthz`)).status).toBe(200);
      await served!.close();
    } finally {
      taken.close();
    }
  });
});
