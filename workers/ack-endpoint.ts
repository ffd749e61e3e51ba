/**
 * Where the acknowledge-link endpoint listens, which URL links point at, and the key that signs
 * them, derived from the configuration with safe defaults:
 * - it binds `PLATFORM_HTTP_HOST` (default 127.0.0.1) on `LOCAL_ACK_PORT` (default 8787);
 * - on a loopback bind without `ALERT_SIGNING_SECRET`, a random 256-bit key is generated once and
 *   kept in `<PLATFORM_STATE_DIR>/alert-signing-secret` (mode 0600), so every worker and `npm start`
 *   on this machine signs and verifies with the same key, and nobody ships a known demo key;
 * - on any other bind, a missing `ALERT_SIGNING_SECRET` or `PLATFORM_PUBLIC_URL` refuses the start
 *   with a {@link ConfigError} naming the variable.
 */
import { randomBytes } from 'node:crypto';
import { chmodSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { join } from 'node:path';
import type { Client } from '@temporalio/client';
import { stateDir } from '../infra/local/process.js';
import { ConfigError, type PlatformConfig } from '../schemas/config.js';
import { startHttpServer, type HttpServerLog, type RunningHttpServer } from './http-server.js';

/** The resolved settings of the endpoint. */
export interface AckEndpointSettings {
  /** Interface to bind. */
  host: string;
  /** TCP port to bind. */
  port: number;
  /** Base URL that links point at (no trailing slash). */
  publicUrl: string;
  /** HMAC key for links and webhook signatures. Never log it. */
  secret: string;
  /** Where the key came from: the environment, or the generated file (its path). */
  secretSource: { kind: 'environment' } | { kind: 'state-file'; path: string };
}

/** Name of the generated key's file inside the state folder. */
export const signingSecretFileName = 'alert-signing-secret';

/**
 * True for addresses only this machine can reach: 127.0.0.0/8, ::1, `localhost`. `0.0.0.0` and `::`
 * (every interface) are not loopback.
 */
export function isLoopbackHost(host: string): boolean {
  const h = host.trim().toLowerCase().replace(/^\[|\]$/g, '');
  if (h === 'localhost' || h.endsWith('.localhost')) return true;
  if (isIP(h) === 4) return h.startsWith('127.');
  if (isIP(h) === 6) return h === '::1' || h === '0:0:0:0:0:0:0:1' || /^::ffff:127\./.test(h);
  return false;
}

/**
 * Reads the generated key, creating it (mode 0600, exclusive create so two processes starting at
 * once agree on one key) when absent. A file readable by others is narrowed to 0600.
 * @throws ConfigError when the file exists but holds no usable key.
 */
export function loadOrCreateSigningSecret(dir: string): { secret: string; path: string } {
  mkdirSync(dir, { recursive: true });
  const path = join(dir, signingSecretFileName);
  try {
    writeFileSync(path, `${randomBytes(32).toString('base64url')}\n`, { mode: 0o600, flag: 'wx' });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
  }
  if ((statSync(path).mode & 0o077) !== 0) chmodSync(path, 0o600);
  const secret = readFileSync(path, 'utf8').trim();
  if (secret.length < 16) {
    throw new ConfigError([`ALERT_SIGNING_SECRET: unset, and the generated key in ${path} is damaged (expected at least 16 characters); delete the file to generate a new one, or set ALERT_SIGNING_SECRET`]);
  }
  return { secret, path };
}

/**
 * Resolves the endpoint settings (see the module comment).
 * @throws ConfigError naming ALERT_SIGNING_SECRET or PLATFORM_PUBLIC_URL when a non-loopback bind lacks them.
 */
export function ackEndpointSettings(config: PlatformConfig): AckEndpointSettings {
  const host = config.PLATFORM_HTTP_HOST;
  const port = config.LOCAL_ACK_PORT;
  const local = isLoopbackHost(host);
  const problems: string[] = [];
  if (!local && config.ALERT_SIGNING_SECRET === undefined) {
    problems.push(
      `ALERT_SIGNING_SECRET: required when PLATFORM_HTTP_HOST is ${JSON.stringify(host)} (not a loopback address): expected a random key of at least 16 characters, e.g. from \`openssl rand -hex 32\`, shared by every worker`,
    );
  }
  if (!local && config.PLATFORM_PUBLIC_URL === undefined) {
    problems.push(`PLATFORM_PUBLIC_URL: required when PLATFORM_HTTP_HOST is ${JSON.stringify(host)}: expected the URL people reach this endpoint at, e.g. https://ops.example.com/streamwarden`);
  }
  if (problems.length > 0) throw new ConfigError(problems);
  const shownHost = host.includes(':') ? `[${host}]` : host;
  const publicUrl = (config.PLATFORM_PUBLIC_URL ?? `http://${shownHost}:${port}`).replace(/\/+$/, '');
  if (config.ALERT_SIGNING_SECRET !== undefined) {
    return { host, port, publicUrl, secret: config.ALERT_SIGNING_SECRET, secretSource: { kind: 'environment' } };
  }
  const generated = loadOrCreateSigningSecret(stateDir(config));
  return { host, port, publicUrl, secret: generated.secret, secretSource: { kind: 'state-file', path: generated.path } };
}

/** Options of {@link startAckEndpoint}. */
export interface StartAckEndpointOptions {
  client: Client;
  settings: AckEndpointSettings;
  log: HttpServerLog;
  /** Bind this port instead of the configured one (0: a free port, for tests). */
  port?: number;
}

/**
 * Starts the endpoint on the configured interface and port. When the port is taken (another worker
 * on this machine already serves the links, which it verifies with the same key), it logs one line
 * and returns null: this process then runs without serving links instead of dying with EADDRINUSE.
 */
export async function startAckEndpoint(options: StartAckEndpointOptions): Promise<RunningHttpServer | null> {
  const { settings, log } = options;
  const port = options.port ?? settings.port;
  try {
    return await startHttpServer({ client: options.client, secret: settings.secret, host: settings.host, port, log });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EADDRINUSE') throw err;
    log.warn(`acknowledge-link endpoint not started: ${settings.host}:${port} is in use (another worker serves the links; set LOCAL_ACK_PORT to run a separate one)`);
    return null;
  }
}
