/**
 * Plain HTTP requests to the server under test, with nothing decoded or retried on the way, so
 * that each case sees exactly what a server sends: status, headers, body bytes.
 */
import { randomBytes } from 'node:crypto';
import { request } from 'node:http';
import { inject } from 'vitest';
import type { ConformanceTarget } from './global-setup.js';

/** The server under test. */
export function target(): ConformanceTarget {
  return inject('conformance');
}

/** Options of {@link ch}. */
export interface Call {
  /** @default POST with the SQL as body, or GET with it in `query` */
  method?: 'GET' | 'POST';
  /** URL parameters (settings, param_*, session_id, ...). */
  params?: Record<string, string>;
  headers?: Record<string, string>;
  /** Request body; when given, the SQL goes into the `query` URL parameter. */
  body?: Buffer | string;
  /** @default "/" */
  path?: string;
  /** Abort the request after this many ms (the client going away). */
  abortAfterMs?: number;
  /** Send no credentials at all. */
  anonymous?: boolean;
}

/** What came back. */
export interface Answer {
  status: number;
  /** X-ClickHouse-Exception-Code, or undefined on success. */
  code: string | undefined;
  headers: Record<string, string | string[] | undefined>;
  bytes: Buffer;
  text: string;
}

/** Sends one request; `sql` may be empty (then only `body` and `params` make the request). */
export function ch(sql: string, call: Call = {}): Promise<Answer> {
  const t = target();
  const method = call.method ?? 'POST';
  const url = new URL(call.path ?? '/', t.url);
  for (const [k, v] of Object.entries(call.params ?? {})) url.searchParams.set(k, v);
  let body: Buffer | string | undefined = call.body;
  if (sql !== '') {
    if (method === 'GET' || body !== undefined) url.searchParams.set('query', sql);
    else body = sql;
  }
  const headers: Record<string, string> = { ...call.headers };
  if (!call.anonymous && !headers['X-ClickHouse-User'] && !headers.Authorization) {
    headers.Authorization = `Basic ${Buffer.from(`${t.user}:${t.password}`).toString('base64')}`;
  }
  return new Promise<Answer>((resolve, reject) => {
    const req = request(url, { method, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('error', reject);
      res.on('end', () => {
        const bytes = Buffer.concat(chunks);
        const code = res.headers['x-clickhouse-exception-code'];
        resolve({ status: res.statusCode ?? 0, code: Array.isArray(code) ? code[0] : code, headers: res.headers, bytes, text: bytes.toString('utf8') });
      });
    });
    req.on('error', reject);
    if (call.abortAfterMs !== undefined) setTimeout(() => req.destroy(new Error('aborted by the test')), call.abortAfterMs);
    req.end(body);
  });
}

/** Runs SQL that must succeed and returns its text. */
export async function ok(sql: string, call: Call = {}): Promise<string> {
  const answer = await ch(sql, call);
  if (answer.status !== 200) throw new Error(`expected 200 for ${sql}, got ${answer.status}: ${answer.text}`);
  return answer.text;
}

/** A unique name so that cases can share a server: `db_${unique()}`. */
export function unique(prefix = 'c'): string {
  return `${prefix}_${Date.now().toString(36)}_${randomBytes(3).toString('hex')}`;
}

/** Polls `probe` until it returns true or `timeoutMs` passes. */
export async function waitFor(probe: () => Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await probe()) return;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** The exception text a server writes: `Code: N. DB::Exception: ... (NAME) (version ...)`. */
export function exceptionText(code: number, name: string): RegExp {
  return new RegExp(`^Code: ${code}\\. DB::Exception: [\\s\\S]*\\(${name}\\) \\(version [^)]+\\)\\n?$`);
}
