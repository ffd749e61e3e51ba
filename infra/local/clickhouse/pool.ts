/**
 * A pool of chdb connections on one data directory.
 *
 * chdb 3.4 binds one data directory per process but allows any number of connections to it; each
 * connection carries its own current database, settings, query parameters and temporary tables,
 * and connections run queries in parallel (each call runs on a libuv worker thread, so the
 * process's UV_THREADPOOL_SIZE also caps parallelism). This is what a server's per-query contexts
 * give, so the endpoint takes one connection per running request: reads run next to each other
 * and next to inserts, and a long query holds only its own connection.
 *
 * A connection's state is tracked here and changed only when a request needs something else:
 * settings from the URL last for one request and are reset afterwards to the connection's baseline
 * (the server's defaults, or for an HTTP session what the session `SET`).
 */
import { Session } from 'chdb';
import { quoteLiteral } from './params.js';

/** Read-only level of a connection: 0 writes allowed, 1 read only, 2 read only but settings may change. */
export type ReadonlyLevel = 0 | 1 | 2;

/** Where this endpoint deliberately differs from chdb's defaults, to behave like a server. */
export const serverDefaults: Readonly<Record<string, string>> = { date_time_input_format: 'basic', implicit_select: '0' };

const settingName = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** One engine connection and what is currently set on it. */
export class EngineConnection {
  /** Current database of the connection. */
  database = 'default';
  /** Settings this connection keeps between requests (an HTTP session's `SET`s). */
  readonly baseline = new Map<string, string>();
  /** Settings applied for the current request on top of the baseline. */
  private readonly applied = new Map<string, string>();

  constructor(readonly session: Session, readonly readonly: ReadonlyLevel) {}

  /** Opens a connection at `dataPath` with the server's defaults and the given read-only level. */
  static async open(dataPath: string, readonly: ReadonlyLevel): Promise<EngineConnection> {
    const session = new Session(dataPath);
    try {
      for (const [name, value] of Object.entries(serverDefaults)) await session.queryAsync(`SET ${name} = ${quoteLiteral(value)}`);
      // Set last: read-only level 1 refuses every later SET, which is the point.
      if (readonly > 0) await session.queryAsync(`SET readonly = ${readonly}`);
    } catch (err) {
      session.close();
      throw err;
    }
    return new EngineConnection(session, readonly);
  }

  /**
   * Makes `database` current and exactly `settings` (plus the baseline) applied. One SET per
   * setting, so a refused one (unknown name, read-only mode) leaves the tracked state exact.
   *
   * @throws the engine's error (115 UNKNOWN_SETTING, 164 READONLY, 81 UNKNOWN_DATABASE).
   */
  async prepare(database: string, settings: ReadonlyMap<string, string>): Promise<void> {
    for (const name of [...this.applied.keys()]) {
      if (settings.has(name)) continue;
      const reset = this.baseline.get(name) ?? serverDefaults[name];
      await this.session.queryAsync(`SET ${name} = ${reset === undefined ? 'DEFAULT' : quoteLiteral(reset)}`);
      this.applied.delete(name);
    }
    for (const [name, value] of settings) {
      if ((this.applied.get(name) ?? this.baseline.get(name)) === value) continue;
      if (!settingName.test(name)) throw new Error(`Code: 115. DB::Exception: Unknown setting '${name}'. (UNKNOWN_SETTING)`);
      await this.session.queryAsync(`SET ${name} = ${quoteLiteral(value)}`);
      this.applied.set(name, value);
    }
    if (database !== this.database) {
      await this.session.queryAsync(`USE \`${database.replace(/[`\\]/g, '\\$&')}\``);
      this.database = database;
    }
  }

  /**
   * Re-reads what the connection has changed from the defaults after a session's own `SET`, so
   * that later requests reset URL settings to it. `urlSettings` are this request's own.
   */
  async adoptSessionSettings(urlSettings: ReadonlyMap<string, string>): Promise<void> {
    const rows = (await this.session.queryAsync('SELECT name, value FROM system.settings WHERE changed', { format: 'JSONEachRow' }))
      .text().split('\n').filter((line) => line !== '').map((line) => JSON.parse(line) as { name: string; value: string });
    this.baseline.clear();
    this.applied.clear();
    for (const { name, value } of rows) {
      if (urlSettings.has(name)) this.applied.set(name, value);
      else if (serverDefaults[name] !== value && name !== 'readonly') this.baseline.set(name, value);
    }
  }

  /** Re-reads the current database after a session's `USE`. */
  async adoptDatabase(): Promise<void> {
    this.database = (await this.session.queryAsync('SELECT currentDatabase()', { format: 'TSV' })).text().trim();
  }

  close(): void {
    this.session.close();
  }
}

/** Options of {@link ConnectionPool}. */
export interface PoolOptions {
  /** Data directory shared by every connection. */
  dataPath: string;
  /** Most connections open at once, sessions included; a request beyond it waits. @default 32 */
  maxConnections?: number;
}

/**
 * Connections per read-only level, opened on demand, reused when idle, at most
 * {@link PoolOptions.maxConnections} at once (HTTP sessions count against it too).
 */
export class ConnectionPool {
  private readonly idle: Record<ReadonlyLevel, EngineConnection[]> = { 0: [], 1: [], 2: [] };
  private readonly waiting: (() => void)[] = [];
  private open = 0;
  private closed = false;
  readonly maxConnections: number;

  constructor(private readonly options: PoolOptions) {
    this.maxConnections = options.maxConnections ?? 32;
  }

  /** Connections open now (busy or idle). */
  get size(): number {
    return this.open;
  }

  /** An idle connection of that level, a new one, or (at the limit) the next one released. */
  async acquire(readonly: ReadonlyLevel): Promise<EngineConnection> {
    for (;;) {
      if (this.closed) throw new Error('Code: 1001. DB::Exception: The endpoint is shutting down. (STD_EXCEPTION)');
      const reused = this.idle[readonly].pop();
      if (reused) return reused;
      if (this.open >= this.maxConnections) {
        // Make room by closing an idle connection of another level, or wait for a release.
        const other = ([0, 1, 2] as const).map((l) => this.idle[l]).find((list) => list.length > 0)?.pop();
        if (other) {
          this.discard(other);
          continue;
        }
        await new Promise<void>((resolve) => this.waiting.push(resolve));
        continue;
      }
      this.open++;
      try {
        return await EngineConnection.open(this.options.dataPath, readonly);
      } catch (err) {
        this.open--;
        this.wake();
        throw err;
      }
    }
  }

  /** Returns a connection for reuse. */
  release(connection: EngineConnection): void {
    if (this.closed) {
      this.discard(connection);
      return;
    }
    this.idle[connection.readonly].push(connection);
    this.wake();
  }

  /** Closes a connection whose state must not reach another request (temporary tables, a session's end). */
  discard(connection: EngineConnection): void {
    connection.close();
    this.open--;
    this.wake();
  }

  /** Closes the idle connections and refuses new ones; busy ones close on release. */
  close(): void {
    this.closed = true;
    for (const level of [0, 1, 2] as const) for (const connection of this.idle[level].splice(0)) this.discard(connection);
    for (const wake of this.waiting.splice(0)) wake();
  }

  private wake(): void {
    this.waiting.shift()?.();
  }
}
