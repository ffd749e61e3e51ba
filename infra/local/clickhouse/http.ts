/**
 * A ClickHouse-HTTP-compatible endpoint in front of the embedded engine (npm `chdb`), so that the
 * official @clickhouse/client, curl and Grafana's ClickHouse datasource work unchanged locally.
 *
 * One chdb Session per data path serves every request. The native connection runs one statement
 * at a time anyway, and each request needs the session's current database and settings set to its
 * own URL parameters, so requests run one after another through a queue; the session state
 * (database, settings) is tracked and only changed when a request needs something different.
 */
import { createHash, randomUUID, timingSafeEqual } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Readable } from 'node:stream';
import { createBrotliDecompress, createGunzip, createInflate } from 'node:zlib';
import { Session, type StreamInsertFormat } from 'chdb';
import { BadQueryParameter, bindParams } from './params.js';

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
  /** Required password; empty or unset accepts any password, like a local `default` user. */
  password?: string;
}

/** A running endpoint. */
export interface ClickHouseHttpServer {
  /** Base URL, e.g. http://127.0.0.1:8123. */
  url: string;
  port: number;
  /** Stops accepting requests, lets the running ones finish, then closes the engine. */
  close(): Promise<void>;
}

/** URL parameters that belong to the HTTP layer and are not engine settings. */
const httpOnlyParams = new Set([
  'query', 'database', 'default_format', 'query_id', 'user', 'password', 'quota_key', 'session_id',
  'session_timeout', 'session_check', 'compress', 'decompress', 'buffer_size', 'wait_end_of_query',
  'stacktrace', 'role', 'client_protocol_version', 'add_http_cors_header',
  // Read-only mode would lock the shared session's settings for every later request.
  'readonly',
]);

/** Where this endpoint deliberately differs from chdb's defaults, to behave like a server. */
const serverDefaults: Record<string, string> = { date_time_input_format: 'basic', implicit_select: '0' };

const streamFormats = new Map<string, StreamInsertFormat>([
  ['JSONEachRow', 'JSONEachRow'], ['JSONLines', 'JSONEachRow'], ['NDJSON', 'JSONEachRow'],
  ['JSONCompactEachRow', 'JSONCompactEachRow'], ['TSV', 'TabSeparated'], ['TabSeparated', 'TabSeparated'],
]);
const bufferedFormats = new Set(['CSV', 'CSVWithNames', 'TSVWithNames', 'TabSeparatedWithNames'] as const);
type BufferedFormat = typeof bufferedFormats extends Set<infer T> ? T : never;
const binaryFormat = /^(RowBinary\w*|Native|Parquet|Arrow\w*|ORC|Avro\w*|Protobuf\w*|CapnProto|MsgPack|BSONEachRow|Npy)$/;

// ClickHouse's HTTP status for well-known error codes; everything else is a 500.
const statusByCode = new Map<number, number>([
  [60, 404], [81, 404], [46, 404], [47, 404], [50, 404], [56, 404], [63, 404], [73, 404], [115, 404],
  [62, 400], [6, 400], [25, 400], [26, 400], [27, 400], [38, 400], [41, 400], [53, 400], [72, 400],
  [117, 400], [456, 400], [457, 400], [516, 403], [48, 501],
]);

const ident = String.raw`(?:[A-Za-z_][A-Za-z0-9_]*|\x60[A-Za-z0-9_]+\x60)`;
/** `INSERT INTO [db.]t [(cols)] FORMAT F` with the rows in the body: the client's insert shape. */
const dataInsert = new RegExp(
  String.raw`^\s*INSERT\s+INTO\s+(?:TABLE\s+)?(${ident}(?:\.${ident})?)\s*(?:\(([^()]*)\))?\s*FORMAT\s+(\w+)\s*;?\s*$`, 'i');
const trailingFormat = /\bFORMAT\s+([A-Za-z0-9_]+)\s*(?:SETTINGS\b[^;]*)?;?\s*$/i;
const stateChanging = /^\s*(?:USE|SET)\s/i;
const chdbIdentifier = /^[A-Za-z0-9_]+(\.[A-Za-z0-9_]+)*$/;

/**
 * Offset of a second statement in `sql`, or -1. The server refuses multi-statements over HTTP,
 * and here one would also change the shared session behind the tracked state.
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

/** An error carrying a ClickHouse error code, rendered as the server renders exceptions. */
class EndpointError extends Error {
  constructor(readonly code: number, message: string, readonly typeName: string) {
    super(message);
  }
}

interface Outcome {
  body: Buffer;
  format: string;
  summary: { read_rows: number; read_bytes: number; written_rows: number; written_bytes: number; elapsed: number };
}

/** Serialised access to the one session, keeping its database and settings per request. */
class Engine {
  private tail: Promise<unknown> = Promise.resolve();
  private database = 'default';
  private readonly applied = new Map<string, string>();

  constructor(readonly session: Session) {}

  run<T>(database: string, settings: Map<string, string>, work: () => Promise<T>): Promise<T> {
    const job = this.tail.then(async () => {
      await this.prepare(database, settings);
      return work();
    });
    this.tail = job.catch(() => undefined);
    return job;
  }

  drain(): Promise<unknown> {
    return this.tail;
  }

  private async prepare(database: string, settings: Map<string, string>): Promise<void> {
    // One SET per setting so that a rejected one (unknown name) leaves the tracked state exact.
    for (const name of [...this.applied.keys()]) {
      if (settings.has(name)) continue;
      const reset = serverDefaults[name];
      await this.session.queryAsync(`SET ${name} = ${reset === undefined ? 'DEFAULT' : quote(reset)}`);
      this.applied.delete(name);
    }
    for (const [name, value] of settings) {
      if (this.applied.get(name) === value) continue;
      if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) throw new EndpointError(115, `Unknown setting '${name}'`, 'UNKNOWN_SETTING');
      await this.session.queryAsync(`SET ${name} = ${quote(value)}`);
      this.applied.set(name, value);
    }
    if (database !== this.database) {
      await this.session.queryAsync(`USE \`${database.replace(/[`\\]/g, '\\$&')}\``);
      this.database = database;
    }
  }
}

function quote(value: string): string {
  return `'${value.replace(/[\\']/g, '\\$&')}'`;
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

function toEndpointError(err: unknown): EndpointError {
  if (err instanceof EndpointError) return err;
  if (err instanceof BadQueryParameter || (err as Error | undefined)?.name === 'ChdbBindError') {
    return new EndpointError(457, (err as Error).message, 'BAD_QUERY_PARAMETER');
  }
  const message = err instanceof Error ? err.message : String(err);
  const parsed = /Code: (\d+)\. DB::Exception: ([\s\S]*?)(?:\. )?\(([A-Z0-9_]+)\)\s*$/.exec(message);
  if (parsed) return new EndpointError(Number(parsed[1]), parsed[2]!, parsed[3]!);
  const chCode = (err as { clickhouseCode?: unknown }).clickhouseCode;
  return new EndpointError(typeof chCode === 'number' ? chCode : 1001, message, 'STD_EXCEPTION');
}

/** The request body, decompressed when the client says it is compressed. */
function bodyStream(req: IncomingMessage): Readable {
  switch (req.headers['content-encoding']) {
    case 'gzip': return req.pipe(createGunzip());
    case 'deflate': return req.pipe(createInflate());
    case 'br': return req.pipe(createBrotliDecompress());
    default: return req;
  }
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

function authorised(req: IncomingMessage, params: URLSearchParams, user: string, password: string): boolean {
  let name = req.headers['x-clickhouse-user'] as string | undefined ?? params.get('user') ?? undefined;
  let secret = req.headers['x-clickhouse-key'] as string | undefined ?? params.get('password') ?? undefined;
  const basic = /^Basic\s+(.+)$/i.exec(req.headers.authorization ?? '');
  if (basic) {
    const decoded = Buffer.from(basic[1]!, 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    name = colon < 0 ? decoded : decoded.slice(0, colon);
    secret = colon < 0 ? '' : decoded.slice(colon + 1);
  }
  const digest = (text: string): Buffer => createHash('sha256').update(text).digest();
  return (name ?? user) === user && (password === '' || timingSafeEqual(digest(secret ?? ''), digest(password)));
}

/**
 * Starts the endpoint. Resolves once it listens; {@link ClickHouseHttpServer.close} stops it and
 * releases the engine.
 */
export async function startClickHouseHttp(options: ClickHouseHttpOptions): Promise<ClickHouseHttpServer> {
  const { host = '127.0.0.1', dataPath, log = () => undefined, user = 'default', password = '' } = options;
  mkdirSync(dataPath, { recursive: true });
  const session = new Session(dataPath);
  const engine = new Engine(session);
  const info = (await session.queryAsync('SELECT timezone(), version()', { format: 'TSV' })).text().trim().split('\t');
  const [timezone = 'UTC', version = 'unknown'] = info;
  for (const [name, value] of Object.entries(serverDefaults)) await session.queryAsync(`SET ${name} = ${quote(value)}`);

  async function execute(req: IncomingMessage, params: URLSearchParams): Promise<Outcome> {
    const database = params.get('database') || 'default';
    const settings = new Map<string, string>();
    const queryParams = new Map<string, string>();
    for (const [name, value] of params) {
      if (name.startsWith('param_')) queryParams.set(name.slice(6), value);
      else if (!httpOnlyParams.has(name) && value !== '') settings.set(name, value);
    }
    const defaultFormat = params.get('default_format') || 'TabSeparated';
    let urlSql = params.get('query') ?? '';
    const started = process.hrtime.bigint();
    const elapsed = (): number => Number(process.hrtime.bigint() - started) / 1e9;

    const insert = req.method === 'POST' ? dataInsert.exec(urlSql) : null;
    const [, table = '', columnList, insertFormat = ''] = insert ?? [];
    const columns = columnList?.split(',').map((c) => unquoteIdent(c.trim())).filter((c) => c !== '');
    // chdb's insert API takes plain identifiers only; anything fancier goes in as SQL text below.
    if (insert && [unquoteIdent(table), ...(columns ?? [])].every((name) => chdbIdentifier.test(name))) {
      if (binaryFormat.test(insertFormat)) {
        throw new EndpointError(48, `Format ${insertFormat} in an INSERT body is not supported by the embedded endpoint: use a text format such as JSONEachRow, CSV or TSV`, 'NOT_IMPLEMENTED');
      }
      const target = { table: unquoteIdent(table), ...(columns?.length ? { columns } : {}) };
      const streamFormat = streamFormats.get(insertFormat);
      let summary: { rowsWritten: number; bytesWritten: number; bytesSent: number } | undefined;
      // A dedup token must cover the whole insert: chunked stream inserts would each carry it and
      // the later chunks would be dropped as duplicates, so token inserts go in as one statement.
      if (streamFormat && !settings.has('insert_deduplication_token')) {
        summary = await engine.run(database, settings, () =>
          // A stalled upload would hold the queue: give up after a minute without data.
          session.insert({ ...target, format: streamFormat, values: bodyStream(req), stallTimeout: 60_000 }));
      } else if (streamFormat || bufferedFormats.has(insertFormat as BufferedFormat)) {
        const values = await readAll(bodyStream(req));
        const rawFormat = (streamFormat ?? insertFormat) as BufferedFormat | StreamInsertFormat;
        summary = await engine.run(database, settings, () => session.insert({ ...target, format: rawFormat, values }));
      }
      if (summary) {
        const { rowsWritten, bytesWritten, bytesSent } = summary;
        return {
          body: Buffer.alloc(0),
          format: insertFormat,
          summary: { read_rows: rowsWritten, read_bytes: bytesSent, written_rows: rowsWritten, written_bytes: bytesWritten, elapsed: elapsed() },
        };
      }
    }

    let body = req.method === 'POST' ? await readAll(bodyStream(req)) : Buffer.alloc(0);
    const multipart = /^multipart\/form-data;.*boundary="?([^";]+)"?/i.exec(req.headers['content-type'] ?? '');
    if (multipart) {
      const fields = multipartFields(body, multipart[1]!);
      for (const [name, value] of fields) if (name.startsWith('param_')) queryParams.set(name.slice(6), value);
      urlSql = fields.get('query') ?? urlSql;
      body = Buffer.alloc(0);
    }
    const text = body.toString('utf8');
    const sql = urlSql && text ? `${urlSql}\n${text}` : urlSql || text;
    if (sql.trim() === '') throw new EndpointError(62, 'Empty query', 'SYNTAX_ERROR');
    const format = trailingFormat.exec(sql)?.[1] ?? defaultFormat;
    const second = /^\s*INSERT\b/i.test(sql) ? -1 : secondStatement(sql);
    if (second >= 0) {
      throw new EndpointError(62, `Syntax error (Multi-statements are not allowed): failed at position ${second + 1}: ${sql.slice(second, second + 40)}`, 'SYNTAX_ERROR');
    }
    if (stateChanging.test(sql)) {
      // Without a session, USE and SET last for one request on a real server: nothing to keep.
      return { body: Buffer.alloc(0), format, summary: { read_rows: 0, read_bytes: 0, written_rows: 0, written_bytes: 0, elapsed: elapsed() } };
    }
    const result = await engine.run(database, settings, () =>
      queryParams.size > 0
        ? session.queryBindAsync(sql, bindParams(sql, queryParams), { format: defaultFormat })
        : session.queryAsync(sql, { format: defaultFormat }));
    const bytes = result.bytes();
    return {
      body: Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength),
      format,
      summary: { read_rows: result.rowsRead, read_bytes: result.bytesRead, written_rows: 0, written_bytes: 0, elapsed: result.elapsed },
    };
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
    const queryId = params.get('query_id') || randomUUID();
    res.setHeader('X-ClickHouse-Query-Id', queryId);
    res.setHeader('X-ClickHouse-Timezone', timezone);
    res.setHeader('X-ClickHouse-Server-Display-Name', 'streamwarden-chdb');
    try {
      if (url.pathname !== '/' && url.pathname !== '/query') {
        throw new EndpointError(1001, `There is no handle ${url.pathname}`, 'STD_EXCEPTION');
      }
      if (!authorised(req, params, user, password)) {
        throw new EndpointError(516, `${user}: Authentication failed: password is incorrect, or there is no user with such name`, 'AUTHENTICATION_FAILED');
      }
      const { body, format, summary } = await execute(req, params);
      res.writeHead(200, {
        'Content-Type': contentType(format),
        'X-ClickHouse-Format': format,
        'X-ClickHouse-Summary': JSON.stringify({
          read_rows: String(summary.read_rows), read_bytes: String(summary.read_bytes),
          written_rows: String(summary.written_rows), written_bytes: String(summary.written_bytes),
          total_rows_to_read: '0', result_rows: String(summary.written_rows || summary.read_rows),
          result_bytes: String(body.length), elapsed_ns: String(Math.round(summary.elapsed * 1e9)),
        }),
      });
      res.end(body);
    } catch (err) {
      const error = toEndpointError(err);
      const status = url.pathname === '/' || url.pathname === '/query' ? statusByCode.get(error.code) ?? 500 : 404;
      log(`query ${queryId} failed: Code: ${error.code}. ${error.message}`);
      if (!res.headersSent) {
        res.writeHead(status, { 'Content-Type': 'text/plain; charset=UTF-8', 'X-ClickHouse-Exception-Code': String(error.code) });
      }
      res.end(`Code: ${error.code}. DB::Exception: ${error.message}. (${error.typeName}) (version ${version})\n`);
      // An insert rejected before its body was read: drop the rest instead of buffering it.
      if (!req.complete) req.resume();
    }
  }

  const server = createServer((req, res) => void handle(req, res));
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
        await engine.drain();
        session.close();
      })();
      return closing;
    },
  };
}
