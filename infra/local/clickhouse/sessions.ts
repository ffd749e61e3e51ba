/**
 * HTTP sessions (`session_id`), as a ClickHouse server keeps them: each session owns one engine
 * connection, so its temporary tables, `SET` settings and `USE` database last from request to
 * request and are invisible to every other session. A session lives `session_timeout` seconds
 * (default 60, at most 3600) after its last request ends; `session_check=1` refuses an unknown
 * session (372); a second request while one is running is refused (373), as the server does.
 */
import { chError } from './errors.js';
import type { ConnectionPool, EngineConnection } from './pool.js';

/** Server defaults: `default_session_timeout` and `max_session_timeout` in seconds. */
export const defaultSessionTimeout = 60;
export const maxSessionTimeout = 3600;

interface HttpSession {
  connection: EngineConnection;
  timeoutMs: number;
  busy: boolean;
  timer?: NodeJS.Timeout;
}

/** The session a request runs in, released when the request ends. */
export interface SessionLease {
  connection: EngineConnection;
  release(): void;
}

/**
 * Parses `session_timeout` like the server: a non-negative integer number of seconds, at most
 * {@link maxSessionTimeout}.
 *
 * @throws EndpointError 374 INVALID_SESSION_TIMEOUT otherwise.
 */
export function parseSessionTimeout(raw: string | null): number {
  if (raw === null) return defaultSessionTimeout;
  if (!/^\+?\d+$/.test(raw)) throw chError('INVALID_SESSION_TIMEOUT', `Invalid session timeout: '${raw}'`);
  const seconds = Number(raw);
  if (seconds > maxSessionTimeout) {
    throw chError('INVALID_SESSION_TIMEOUT', `Session timeout '${raw}' is larger than max_session_timeout: ${maxSessionTimeout}. Maximum session timeout could be modified in configuration file`);
  }
  return seconds;
}

/** The endpoint's open HTTP sessions, keyed by user and session id. */
export class HttpSessions {
  private readonly sessions = new Map<string, HttpSession>();

  constructor(private readonly pool: ConnectionPool) {}

  /** Number of open sessions. */
  get size(): number {
    return this.sessions.size;
  }

  /**
   * Takes the session for one request, creating it unless `check` is set.
   *
   * @throws EndpointError 372 SESSION_NOT_FOUND, 373 SESSION_IS_LOCKED, 374 INVALID_SESSION_TIMEOUT.
   */
  async acquire(user: string, id: string, check: boolean, timeoutParam: string | null): Promise<SessionLease> {
    const timeoutMs = parseSessionTimeout(timeoutParam) * 1000;
    const key = `${user}\0${id}`;
    let session = this.sessions.get(key);
    if (session?.busy) throw chError('SESSION_IS_LOCKED', `Session ${id} is locked by a concurrent client`);
    if (!session) {
      if (check) throw chError('SESSION_NOT_FOUND', `Session ${id} not found`);
      const placeholder: HttpSession = { connection: undefined as unknown as EngineConnection, timeoutMs, busy: true };
      this.sessions.set(key, placeholder); // a concurrent first request must see it as locked
      try {
        placeholder.connection = await this.pool.acquire(0);
      } catch (err) {
        this.sessions.delete(key);
        throw err;
      }
      session = placeholder;
    } else {
      clearTimeout(session.timer);
      session.busy = true;
      if (timeoutParam !== null) session.timeoutMs = timeoutMs;
    }
    const held = session;
    return {
      connection: held.connection,
      release: () => {
        held.busy = false;
        held.timer = setTimeout(() => this.expire(key, held), held.timeoutMs);
        held.timer.unref();
      },
    };
  }

  /** Closes every idle session (on shutdown). */
  close(): void {
    for (const [key, session] of this.sessions) if (!session.busy) this.expire(key, session);
  }

  private expire(key: string, session: HttpSession): void {
    if (this.sessions.get(key) !== session || session.busy) return;
    this.sessions.delete(key);
    this.pool.discard(session.connection);
  }
}
