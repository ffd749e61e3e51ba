/**
 * A ClickHouse-HTTP-compatible endpoint in front of the embedded engine (npm `chdb`), so that the
 * official @clickhouse/client, curl, Grafana's ClickHouse datasource and a browser (`/play`) work
 * unchanged locally, and behave as against a server.
 *
 * Each request runs on its own engine connection from a pool (pool.ts): reads run in parallel
 * with each other and with inserts. Results stream to the client chunk by chunk with backpressure,
 * so memory is bounded by one engine block per running query, not by the result size. Requests
 * carrying `session_id` run on their session's own connection (sessions.ts). Cancellation (client
 * disconnect, `KILL QUERY WHERE query_id = ...`, `max_execution_time`) stops the engine's query.
 */
import { randomUUID } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { once } from 'node:events';
import type { Readable, Writable } from 'node:stream';
import type { StreamInsertFormat } from 'chdb';
import { compressor, decodedBody, responseMethod } from './encoding.js';
import { chError, EndpointError, httpStatusFor, toEndpointError } from './errors.js';
import { missingParameter, parameterStatement, quoteLiteral } from './params.js';
import { playPage } from './play.js';
import { ConnectionPool, EngineConnection, type ReadonlyLevel } from './pool.js';
import { HttpSessions, type SessionLease } from './sessions.js';

/** Options of {@link startClickHouseHttp}. */
export interface ClickHouseHttpOptions {
  /** Interface to listen on. @default "127.0.0.1" */
  host?: string;
  /** TCP port; 0 picks a free one. */
  port: number;
  /** Directory holding the databases (created if missing). One endpoint per path per process. */
  dataPath: string;
  /** Receives one line per notable event (start, failed query). @default no logging */
  log?: (line: string) => void;
  /** Accepted user name. @default "default" */
  user?: string;
  /**
   * Required password. Empty or unset: the user has no password and, as on a server whose user
   * is configured with `no_password`, any password is accepted.
   */
  password?: string;
  /**
   * Most engine connections at once (running requests plus open HTTP sessions); more requests
   * wait. Parallelism is also capped by the process's UV_THREADPOOL_SIZE. @default 32
   */
  maxConnections?: number;
}

/** A running endpoint. */
export interface ClickHouseHttpServer {
  /** Base URL, e.g. http://127.0.0.1:8123. */
  url: string;
  port: number;
  /** Stops accepting requests, cancels nothing, lets running ones finish, then closes the engine. */
  close(): Promise<void>;
}

/** URL parameters that belong to the HTTP layer and are not engine settings. */
const httpOnlyParams = new Set([
  'query', 'database', 'default_format', 'query_id', 'user', 'password', 'quota_key', 'session_id',
  'session_timeout', 'session_check', 'compress', 'decompress', 'buffer_size', 'wait_end_of_query',
  'stacktrace', 'role', 'client_protocol_version', 'add_http_cors_header', 'readonly',
  'enable_http_compression', 'http_zlib_compression_level',
]);

const streamFormats = new Map<string, StreamInsertFormat>([
  ['JSONEachRow', 'JSONEachRow'], ['JSONLines', 'JSONEachRow'], ['NDJSON', 'JSONEachRow'],
  ['JSONCompactEachRow', 'JSONCompactEachRow'], ['TSV', 'TabSeparated'], ['TabSeparated', 'TabSeparated'],
]);
const bufferedFormats = new Set(['CSV', 'CSVWithNames', 'TSVWithNames', 'TabSeparatedWithNames'] as const);
type BufferedFormat = typeof bufferedFormats extends Set<infer T> ? T : never;
const binaryFormat = /^(RowBinary\w*|Native|Parquet|Arrow\w*|ORC|Avro\w*|Protobuf\w*|CapnProto|MsgPack|BSONEachRow|Npy)$/;

const ident = String.raw`(?:[A-Za-z_][A-Za-z0-9_]*|\x60[A-Za-z0-9_]+\x60)`;
/** `INSERT INTO [db.]t [(cols)] FORMAT F` with the rows in the body: the client's insert shape. */
const dataInsert = new RegExp(
  String.raw`^\s*INSERT\s+INTO\s+(?:TABLE\s+)?(${ident}(?:\.${ident})?)\s*(?:\(([^()]*)\))?\s*FORMAT\s+(\w+)\s*;?\s*$`, 'i');
/**
 * Output formats whose blocks concatenate into a valid result (no prefix, suffix or header), so
 * they are streamed block by block; lower case. Every other format (JSON, JSONCompact,
 * CSVWithNames, TSVWithNames..., XML, Pretty..., Parquet, Arrow...) is sent in one piece.
 * Source: ClickHouse's format list (docs "Formats for Input and Output Data"), rows-only formats.
 */
const blockStreamFormats = new Set([
  'tabseparated', 'tsv', 'tabseparatedraw', 'tsvraw', 'csv', 'jsoneachrow', 'jsonlines', 'ndjson',
  'jsoncompacteachrow', 'jsonstringseachrow', 'jsoncompactstringseachrow', 'rowbinary', 'native',
  'values', 'lineasstring', 'rawblob', 'customseparated', 'null',
]);
const trailingFormat = /\bFORMAT\s+([A-Za-z0-9_]+)\s*(?:SETTINGS\b[^;]*)?;?\s*$/i;
const stateChanging = /^\s*(?:USE|SET)\s/i;
const setStatement = /^\s*SET\s/i;
const readStatement = /^[\s(]*(?:SELECT|WITH|SHOW|DESC|DESCRIBE|EXISTS|EXPLAIN|SET|USE)\b/i;
const temporaryTable = /\bTEMPORARY\s+TABLE\b/i;
const insertStatement = /^\s*INSERT\b/i;
const killByQueryId = /^\s*KILL\s+QUERY\s+WHERE\s+query_id\s*=\s*'((?:[^'\\]|\\.)*)'(?:\s+(SYNC|ASYNC|TEST))?\s*(?:FORMAT\s+\w+\s*)?;?\s*$/i;
const engineTag = /\s*\/\* streamwarden-query [0-9a-f-]+ \*\//g;
const chdbIdentifier = /^[A-Za-z0-9_]+(\.[A-Za-z0-9_]+)*$/;
const getImpliesReadonly = 'For queries over HTTP, method GET implies readonly. You should use method POST for modifying queries';
/** The longest request line and headers accepted, as the server's `http_max_uri_size` (1 MiB), plus room for headers. */
const maxHeaderBytes = 1024 * 1024 + 64 * 1024;
/** The engine's default max_query_size (bytes). */
const defaultMaxQuerySize = 262_144;

/**
 * Offset of a second statement in `sql`, or -1. The server refuses multi-statements over HTTP.
 */
function secondStatement(sql: string): number {
  let end = -1;
  for (let i = 0; i < sql.length; i++) {
    const c = sql[i]!;
    if (c === "'" || c === '"' || c === '`') {
      for (i++; i < sql.length && sql[i] !== c; i++) if (sql[i] === '\\') i++;
    } else if (c === '-' && sql[i + 1] === '-') {
      i = sql.indexOf('\n', i) < 0 ? sql.length : sql.indexOf('\n', i);
    } else if (c === '/' && sql[i + 1] === '*') {
      i = sql.indexOf('*/', i + 2) < 0 ? sql.length : sql.indexOf('*/', i + 2) + 1;
    } else if (c === ';') {
      end = i;
    } else if (end >= 0 && !/\s/.test(c)) {
      return i;
    }
  }
  return -1;
}

function unquoteIdent(name: string): string {
  return name.replace(/`/g, '');
}

function contentType(format: string): string {
  if (/^(JSON|NDJSON)/.test(format)) return 'application/json; charset=UTF-8';
  if (/^(TSV|TabSeparated)/.test(format)) return 'text/tab-separated-values; charset=UTF-8';
  if (format.startsWith('CSV')) return `text/csv; charset=UTF-8; header=${format.includes('WithNames') ? 'present' : 'absent'}`;
  if (binaryFormat.test(format)) return 'application/octet-stream';
  return 'text/plain; charset=UTF-8';
}

async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk as string));
  return Buffer.concat(chunks);
}

/** Fields of a multipart/form-data body (the client sends large query parameters this way). */
function multipartFields(body: Buffer, boundary: string): Map<string, string> {
  const fields = new Map<string, string>();
  for (const part of body.toString('utf8').split(`--${boundary}`)) {
    const split = part.indexOf('\r\n\r\n');
    const name = /name="([^"]*)"/.exec(part.slice(0, split));
    if (split < 0 || !name) continue;
    fields.set(name[1]!, part.slice(split + 4).replace(/\r\n$/, ''));
  }
  return fields;
}

/** The user a request names (headers, Basic auth or URL parameters) and the password it sends. */
function credentials(req: IncomingMessage, params: URLSearchParams, defaultUser: string): { name: string; secret: string } {
  let name = req.headers['x-clickhouse-user'] as string | undefined ?? params.get('user') ?? undefined;
  let secret = req.headers['x-clickhouse-key'] as string | undefined ?? params.get('password') ?? undefined;
  const basic = /^Basic\s+(.+)$/i.exec(req.headers.authorization ?? '');
  if (basic) {
    const decoded = Buffer.from(basic[1]!, 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    name = colon < 0 ? decoded : decoded.slice(0, colon);
    secret = colon < 0 ? '' : decoded.slice(colon + 1);
  }
  return { name: name || defaultUser, secret: secret ?? '' };
}

interface Summary { read_rows: number; read_bytes: number; written_rows: number; written_bytes: number; result_rows: number; elapsed: number }
const noSummary = (elapsed: number): Summary => ({ read_rows: 0, read_bytes: 0, written_rows: 0, written_bytes: 0, result_rows: 0, elapsed });

/** A request being served, for `KILL QUERY` and for cancelling it when the client goes away. */
interface Running {
  user: string;
  query: string;
  /** Trailing comment that identifies the engine query in system.processes. */
  tag?: string;
  /**
   * Cancels the request's chdb result stream. Called before KILL QUERY: chdb-node releases a
   * stream's engine query only when cancel() comes first (it then waits for the in-flight fetch
   * and destroys the stream); a fetch that fails on KILL marks the stream closed without
   * releasing it, and the query stays in system.processes for good.
   */
  stopStream?: () => void;
  abort: AbortController;
  finished: Promise<void>;
  /** Set when the request has ended. */
  done: boolean;
}

/** What one request writes back: headers once, then the (possibly compressed) body. */
class Reply {
  out?: Writable;
  constructor(private readonly res: ServerResponse, private readonly encoding: ReturnType<typeof responseMethod>) {}

  /** Sends status 200 and the headers; the body goes through {@link write}. */
  start(format: string, summary: Summary): void {
    const headers: Record<string, string> = {
      'Content-Type': contentType(format),
      'X-ClickHouse-Format': format,
      'X-ClickHouse-Summary': JSON.stringify({
        read_rows: String(summary.read_rows), read_bytes: String(summary.read_bytes),
        written_rows: String(summary.written_rows), written_bytes: String(summary.written_bytes),
        total_rows_to_read: '0', result_rows: String(summary.result_rows),
        result_bytes: '0', elapsed_ns: String(Math.round(summary.elapsed * 1e9)),
      }),
    };
    if (this.encoding) {
      headers['Content-Encoding'] = this.encoding;
      const zip = compressor(this.encoding);
      zip.pipe(this.res);
      this.out = zip;
    } else {
      this.out = this.res;
    }
    this.res.writeHead(200, headers);
  }

  /** Writes a chunk, waiting while the client is slower than the engine (bounded memory). */
  async write(chunk: Uint8Array): Promise<void> {
    if (chunk.byteLength === 0) return;
    const out = this.out!;
    if (!out.write(chunk)) {
      await Promise.race([once(out, 'drain'), once(this.res, 'close')]);
      if (this.res.destroyed) throw chError('QUERY_WAS_CANCELLED', 'Client closed the connection');
    }
  }

  end(): void {
    this.out?.end();
  }
}

/**
 * Starts the endpoint. Resolves once it listens; {@link ClickHouseHttpServer.close} stops it and
 * releases the engine.
 */
export async function startClickHouseHttp(options: ClickHouseHttpOptions): Promise<ClickHouseHttpServer> {
  const { host = '127.0.0.1', dataPath, log = () => undefined, user = 'default', password = '' } = options;
  mkdirSync(dataPath, { recursive: true });
  const pool = new ConnectionPool({ dataPath, ...(options.maxConnections ? { maxConnections: options.maxConnections } : {}) });
  // Outside the pool, so that KILL QUERY never waits for a free connection.
  const control = await EngineConnection.open(dataPath, 0);
  let controlTail: Promise<unknown> = Promise.resolve();
  const onControl = <T>(work: () => Promise<T>): Promise<T> => {
    const job = controlTail.then(work);
    controlTail = job.catch(() => undefined);
    return job;
  };
  const info = (await control.session.queryAsync('SELECT timezone(), version()', { format: 'TSV' })).text().trim().split('\t');
  const [timezone = 'UTC', version = 'unknown'] = info;
  const sessions = new HttpSessions(pool);
  const running = new Map<string, Running>();

  /** Stops a running request: its stream or insert at once, and its engine query by KILL QUERY. */
  async function cancel(entry: Running): Promise<void> {
    // A query not started yet must not start. A running one is killed in the engine first: an
    // aborted chdb stream stops waiting for its query, which then no longer reliably sees KILL.
    if (!entry.tag) entry.abort.abort();
    entry.stopStream?.();
    // The engine may not list the query yet (still being prepared), and an aborted stream rejects
    // at once while the engine computes on until its next block: kill again until the request has
    // ended AND the engine no longer lists the query, so that no cancel is lost. Bounded (a minute).
    for (let attempt = 0; attempt < 300; attempt++) {
      const { tag } = entry;
      let listed = false;
      if (tag) {
        const literal = quoteLiteral(tag);
        listed = await onControl(async () => {
          await control.session.queryAsync(`KILL QUERY WHERE endsWith(query, ${literal}) ASYNC`);
          const left = await control.session.queryAsync(`SELECT count() FROM system.processes WHERE endsWith(query, ${literal})`, { format: 'TSV' });
          return left.text().trim() !== '0';
        }).catch(() => false);
      }
      entry.abort.abort();
      if (entry.done && !listed) return;
      await new Promise((resolve) => setTimeout(resolve, 200).unref());
    }
  }

  async function execute(req: IncomingMessage, reply: Reply, params: URLSearchParams, userName: string, entry: Running): Promise<void> {
    const settings = new Map<string, string>();
    const queryParams = new Map<string, string>();
    for (const [name, value] of params) {
      if (name.startsWith('param_')) queryParams.set(name.slice(6), value);
      else if (!httpOnlyParams.has(name) && value !== '') settings.set(name, value);
    }
    const readonlyParam = params.get('readonly');
    const readonly: ReadonlyLevel = readonlyParam === '1' ? 1 : readonlyParam === '2' || req.method === 'GET' ? 2 : 0;
    const defaultFormat = params.get('default_format') || 'TabSeparated';
    const started = process.hrtime.bigint();
    const elapsed = (): number => Number(process.hrtime.bigint() - started) / 1e9;
    let urlSql = params.get('query') ?? '';

    const sessionId = params.get('session_id');
    const lease: SessionLease | undefined = sessionId
      ? await sessions.acquire(userName, sessionId, params.get('session_check') === '1', params.get('session_timeout'))
      : undefined;
    let connection: EngineConnection | undefined;
    let discard = false;
    try {
      const take = async (level: ReadonlyLevel): Promise<EngineConnection> => {
        connection = lease?.connection ?? await pool.acquire(level);
        return connection;
      };
      const database = params.get('database') || (lease ? lease.connection.database : 'default');

      const insert = req.method === 'POST' ? dataInsert.exec(urlSql) : null;
      const [, table = '', columnList, insertFormat = ''] = insert ?? [];
      const columns = columnList?.split(',').map((c) => unquoteIdent(c.trim())).filter((c) => c !== '');
      // chdb's insert API takes plain identifiers only; anything fancier goes in as SQL text below.
      if (insert && [unquoteIdent(table), ...(columns ?? [])].every((name) => chdbIdentifier.test(name))) {
        if (readonly > 0) throw chError('READONLY', 'Cannot execute query in readonly mode');
        if (binaryFormat.test(insertFormat)) {
          throw chError('NOT_IMPLEMENTED', `Format ${insertFormat} in an INSERT body is not supported by the embedded endpoint: use a text format such as JSONEachRow, CSV or TSV`);
        }
        const target = { table: unquoteIdent(table), ...(columns?.length ? { columns } : {}) };
        const streamFormat = streamFormats.get(insertFormat);
        const signal = entry.abort.signal;
        let summary: { rowsWritten: number; bytesWritten: number; bytesSent: number } | undefined;
        if (streamFormat || bufferedFormats.has(insertFormat as BufferedFormat)) {
          const conn = await take(0);
          await conn.prepare(database, settings);
          const body = decodedBody(req, req.headers['content-encoding']);
          // A dedup token must cover the whole insert: chunked stream inserts would each carry it and
          // the later chunks would be dropped as duplicates, so token inserts go in as one statement.
          if (streamFormat && !settings.has('insert_deduplication_token')) {
            // A stalled upload must not hold a connection for ever: give up after a minute without data.
            summary = await conn.session.insert({ ...target, format: streamFormat, values: body, stallTimeout: 60_000, signal });
          } else {
            const values = await readAll(body);
            const rawFormat = (streamFormat ?? insertFormat) as BufferedFormat | StreamInsertFormat;
            summary = await conn.session.insert({ ...target, format: rawFormat, values, signal });
          }
        }
        if (summary) {
          const { rowsWritten, bytesWritten, bytesSent } = summary;
          reply.start(insertFormat, { read_rows: rowsWritten, read_bytes: bytesSent, written_rows: rowsWritten, written_bytes: bytesWritten, result_rows: rowsWritten, elapsed: elapsed() });
          reply.end();
          return;
        }
      }

      let body = req.method === 'POST' ? await readAll(decodedBody(req, req.headers['content-encoding'])) : Buffer.alloc(0);
      const multipart = /^multipart\/form-data;.*boundary="?([^";]+)"?/i.exec(req.headers['content-type'] ?? '');
      if (multipart) {
        const fields = multipartFields(body, multipart[1]!);
        for (const [name, value] of fields) if (name.startsWith('param_')) queryParams.set(name.slice(6), value);
        urlSql = fields.get('query') ?? urlSql;
        body = Buffer.alloc(0);
      }
      const text = body.toString('utf8');
      let sql = urlSql && text ? `${urlSql}\n${text}` : urlSql || text;
      if (sql.trim() === '') throw chError('SYNTAX_ERROR', 'Empty query');
      const format = trailingFormat.exec(sql)?.[1] ?? defaultFormat;
      const isInsert = insertStatement.test(sql);
      const second = isInsert ? -1 : secondStatement(sql);
      if (second >= 0) {
        throw chError('SYNTAX_ERROR', `Syntax error (Multi-statements are not allowed): failed at position ${second + 1}: ${sql.slice(second, second + 40)}`);
      }

      const kill = killByQueryId.exec(sql);
      if (kill) {
        // The engine's query ids are its own; the HTTP query_id is known here.
        const id = kill[1]!.replace(/\\(.)/g, '$1');
        const mode = (kill[2] ?? 'ASYNC').toUpperCase();
        const target = running.get(id);
        let status = 'waiting';
        if (target && mode !== 'TEST') {
          void cancel(target);
          if (mode === 'SYNC') {
            await Promise.race([target.finished, new Promise((resolve) => setTimeout(resolve, 10_000).unref())]);
            status = 'finished';
          }
        }
        queryParams.clear();
        for (const [name, value] of Object.entries({ s: status, i: id, u: target?.user ?? '', q: target?.query ?? '', n: target ? '1' : '0' })) queryParams.set(`kill_${name}`, value);
        sql = `SELECT {kill_s:String} AS kill_status, {kill_i:String} AS query_id, {kill_u:String} AS user, {kill_q:String} AS query WHERE {kill_n:UInt8}${kill[0].match(/FORMAT\s+\w+/i) ? ` ${kill[0].match(/FORMAT\s+\w+/i)![0]}` : ''}`;
      }

      if (!lease && stateChanging.test(sql)) {
        // Without a session, USE and SET last for one request on a server: nothing to keep.
        reply.start(format, noSummary(elapsed()));
        reply.end();
        return;
      }
      if (lease && readonly > 0 && !readStatement.test(sql)) {
        throw chError('READONLY', `Cannot execute query in readonly mode${readonly === 2 && req.method === 'GET' ? `. ${getImpliesReadonly}` : ''}`);
      }
      const missing = missingParameter(sql, queryParams);
      if (missing !== undefined) throw chError('UNKNOWN_QUERY_PARAMETER', `Substitution \`${missing}\` is not set`);

      const conn = await take(readonly);
      await conn.prepare(database, settings);
      await setParameters(conn, queryParams, settings);
      entry.query = sql;
      if (lease && stateChanging.test(sql)) {
        await conn.session.queryAsync(sql);
        if (setStatement.test(sql)) await conn.adoptSessionSettings(settings);
        else await conn.adoptDatabase();
        reply.start(format, noSummary(elapsed()));
        reply.end();
        return;
      }
      discard = !lease && temporaryTable.test(sql);
      // INSERT text can carry inline rows, which a trailing comment would corrupt: not tagged.
      const tag = isInsert ? undefined : `\n/* streamwarden-query ${randomUUID()} */`;
      if (tag) entry.tag = tag;
      const engineSql = tag ? sql.replace(/;\s*$/, '') + tag : sql;
      // Cancelled (client gone, KILL QUERY) while waiting for a connection: do not start it.
      if (entry.abort.signal.aborted) throw chError('QUERY_WAS_CANCELLED', 'Query was cancelled');
      await runQuery(conn, engineSql, defaultFormat, format, params.get('wait_end_of_query') === '1', reply, entry, elapsed);
    } catch (err) {
      // A failed statement may have left a half-made temporary table behind.
      if (connection && !lease && temporaryTable.test(urlSql)) discard = true;
      throw err;
    } finally {
      if (connection && !lease) {
        if (discard) pool.discard(connection);
        else pool.release(connection);
      }
      lease?.release();
    }
  }

  /**
   * Hands the request's parameters to the connection. The SET statement carrying them is itself a
   * query, limited by max_query_size (256 KiB), while a server takes parameters in URLs up to
   * 1 MiB: the limit is raised for that statement only.
   */
  async function setParameters(conn: EngineConnection, queryParams: ReadonlyMap<string, string>, settings: ReadonlyMap<string, string>): Promise<void> {
    const statement = parameterStatement(queryParams);
    if (!statement) return;
    const size = Buffer.byteLength(statement) + 1;
    if (size <= defaultMaxQuerySize) {
      await conn.session.queryAsync(statement);
      return;
    }
    if (conn.readonly === 1) {
      throw chError('NOT_IMPLEMENTED', `Query parameters of more than 256 KiB in total with readonly=1 are not supported by the embedded endpoint (chdb): its parameters travel in a SET statement, which readonly=1 cannot enlarge`);
    }
    await conn.session.queryAsync(`SET max_query_size = ${size}`);
    try {
      await conn.session.queryAsync(statement);
    } finally {
      const restore = settings.get('max_query_size') ?? conn.baseline.get('max_query_size');
      await conn.session.queryAsync(`SET max_query_size = ${restore === undefined ? 'DEFAULT' : quoteLiteral(restore)}`);
    }
  }

  /**
   * Runs one statement and sends its result. SELECT-like statements in a row format
   * ({@link blockStreamFormats}) stream chunk by chunk; the engine refuses streaming for the rest
   * (DDL, INSERT ... SELECT), which then run in one call, as do results in a format with a prefix or
   * suffix (JSON, CSVWithNames, XML, Parquet, ...): the engine's stream writes those once per block,
   * so a result of several blocks came out as several JSON documents or repeated header lines.
   */
  async function runQuery(conn: EngineConnection, sql: string, defaultFormat: string, format: string, waitEnd: boolean,
    reply: Reply, entry: Running, elapsed: () => number): Promise<void> {
    const signal = entry.abort.signal;
    let stream: ReturnType<EngineConnection['session']['queryStream']> | undefined;
    let first: IteratorResult<{ numRows: number; raw(): Uint8Array }> | undefined;
    let iterator: AsyncIterator<{ numRows: number; raw(): Uint8Array }> | undefined;
    try {
      if (!blockStreamFormats.has(format.toLowerCase())) throw new Error('Streaming query is not supported for this format here');
      stream = conn.session.queryStream(sql, { format: defaultFormat, signal });
      const started = stream;
      entry.stopStream = () => started.cancel();
      iterator = stream[Symbol.asyncIterator]();
      first = await iterator.next();
    } catch (err) {
      if (!/Streaming query is not supported/.test((err as Error).message)) throw err;
      stream = undefined;
    }
    if (!stream || !iterator || !first) {
      const result = await conn.session.queryAsync(sql, { format: defaultFormat });
      reply.start(format, { read_rows: result.rowsRead, read_bytes: result.bytesRead, written_rows: 0, written_bytes: 0, result_rows: 0, elapsed: result.elapsed });
      await reply.write(result.bytes());
      reply.end();
      return;
    }
    const pending: Uint8Array[] = [];
    let rows = 0;
    try {
      if (waitEnd) {
        // wait_end_of_query=1: the whole result first, so that a late error still sets the status.
        for (let next = first; !next.done; next = await iterator.next()) { pending.push(next.value.raw()); rows += next.value.numRows; }
        reply.start(format, { ...noSummary(elapsed()), result_rows: rows });
        for (const chunk of pending.splice(0)) await reply.write(chunk);
      } else {
        reply.start(format, { ...noSummary(elapsed()), result_rows: first.done ? 0 : first.value.numRows });
        for (let next = first; !next.done; next = await iterator.next()) await reply.write(next.value.raw());
      }
      reply.end();
    } finally {
      entry.stopStream = undefined;
      stream.cancel();
    }
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const params = url.searchParams;
    if (params.get('add_http_cors_header') === '1') res.setHeader('Access-Control-Allow-Origin', '*');
    if (url.pathname === '/ping' || url.pathname === '/replicas_status' ||
        (url.pathname === '/' && req.method === 'GET' && !params.has('query'))) {
      res.writeHead(200, { 'Content-Type': 'text/html; charset=UTF-8' }).end('Ok.\n');
      return;
    }
    if (url.pathname === '/play' && req.method === 'GET') {
      res.writeHead(200, { 'Content-Type': 'text/html; charset=UTF-8' }).end(playPage);
      return;
    }
    const queryId = params.get('query_id') || randomUUID();
    res.setHeader('X-ClickHouse-Query-Id', queryId);
    res.setHeader('X-ClickHouse-Timezone', timezone);
    res.setHeader('X-ClickHouse-Server-Display-Name', 'streamwarden-chdb');
    const reply = new Reply(res, params.get('enable_http_compression') === '1' ? responseMethod(req.headers['accept-encoding']) : undefined);
    let registered = false;
    let finish = (): void => undefined;
    try {
      if (url.pathname === '/dashboard') {
        throw chError('NOT_IMPLEMENTED', 'The /dashboard page is not served by the embedded ClickHouse endpoint (chdb): use /play, or Grafana');
      }
      if (url.pathname !== '/' && url.pathname !== '/query') {
        throw new EndpointError(1001, `There is no handle ${url.pathname}`, 'STD_EXCEPTION');
      }
      const { name, secret } = credentials(req, params, user);
      // A user without a password accepts any password, as a server's `no_password` user does.
      if (name !== user || (password !== '' && secret !== password)) {
        throw chError('AUTHENTICATION_FAILED', `${name}: Authentication failed: password is incorrect, or there is no user with such name`);
      }
      if (params.get('compress') === '1' || params.get('decompress') === '1') {
        throw chError('NOT_IMPLEMENTED', 'ClickHouse native block compression (compress=1 / decompress=1) is not supported by the embedded endpoint: use HTTP compression (enable_http_compression=1 with Accept-Encoding, or Content-Encoding)');
      }
      if (running.has(queryId)) {
        throw chError('QUERY_WITH_SAME_ID_IS_ALREADY_RUNNING', `Query with id = ${queryId} is already running`);
      }
      const entry: Running = { user: name, query: '', abort: new AbortController(), finished: new Promise<void>((resolve) => { finish = resolve; }), done: false };
      const finishEntry = finish;
      finish = () => { entry.done = true; finishEntry(); };
      running.set(queryId, entry);
      registered = true;
      // The client went away before the answer was complete. As on a server, a result being
      // streamed stops at its next chunk (the write fails), and any query stops at once with
      // cancel_http_readonly_queries_on_client_close=1 (the server's default is 0: it runs on).
      const cancelOnClose = params.get('cancel_http_readonly_queries_on_client_close') === '1';
      res.once('close', () => {
        if (res.writableFinished) return;
        if (cancelOnClose) void cancel(entry);
        else entry.abort.abort();
      });
      await execute(req, reply, params, name, entry);
    } catch (err) {
      const error = toEndpointError(err);
      // The tag that identifies the engine query is the endpoint's, not the user's text.
      error.message = error.message.replace(engineTag, '');
      if (error.code === 164 && req.method === 'GET' && !error.message.includes('method GET')) {
        error.message = `${error.message}. ${getImpliesReadonly}`;
      }
      log(`query ${queryId} failed: Code: ${error.code}. ${error.message}`);
      const text = `Code: ${error.code}. DB::Exception: ${error.message}. (${error.typeName}) (version ${version})\n`;
      if (!res.headersSent) {
        res.writeHead(url.pathname === '/' || url.pathname === '/query' || url.pathname === '/dashboard' ? httpStatusFor(error.code) : 404,
          { 'Content-Type': 'text/plain; charset=UTF-8', 'X-ClickHouse-Exception-Code': String(error.code) });
        res.end(text);
      } else if (!res.destroyed) {
        // Mid-stream failure: the status is already sent, so the exception ends the body, as on a server.
        (reply.out ?? res).end(text);
      }
      // An insert rejected before its body was read: drop the rest instead of buffering it.
      if (!req.complete) req.resume();
    } finally {
      if (registered) running.delete(queryId);
      finish();
    }
  }

  const server = createServer({ maxHeaderSize: maxHeaderBytes }, (req, res) => void handle(req, res));
  server.requestTimeout = 0;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, host, () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  const url = `http://${host}:${port}`;
  log(`ClickHouse ${version} (chdb) at ${url}, data in ${dataPath}`);

  let closing: Promise<void> | undefined;
  return {
    url,
    port,
    close() {
      closing ??= (async () => {
        const closed = new Promise<void>((resolve) => server.close(() => resolve()));
        server.closeIdleConnections();
        // A client that keeps its connection busy must not hold the shutdown for ever.
        const force = setTimeout(() => server.closeAllConnections(), 5000);
        await closed;
        clearTimeout(force);
        await Promise.all([...running.values()].map((r) => r.finished));
        sessions.close();
        pool.close();
        await controlTail;
        control.close();
      })();
      return closing;
    },
  };
}
