/**
 * The embedded ClickHouse HTTP endpoint, driven the way the platform drives ClickHouse: the
 * official @clickhouse/client, plus raw HTTP as curl and Grafana send it. The endpoint runs in
 * this test process on an OS-assigned port and a temporary data directory.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { ClickHouseError, ClickHouseLogLevel, createClient, TupleParam, type ClickHouseClient, type ClickHouseSettings } from '@clickhouse/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startClickHouseHttp, type ClickHouseHttpServer } from '../../infra/local/clickhouse/http.js';
import { uniqueId } from '../support/stack.js';

let server: ClickHouseHttpServer;
let client: ClickHouseClient;
let dataPath: string;
const db = uniqueId('t');

function sql(query: string, init: RequestInit & { params?: Record<string, string> } = {}): Promise<Response> {
  const url = new URL('/', server.url);
  for (const [k, v] of Object.entries(init.params ?? {})) url.searchParams.set(k, v);
  return fetch(url, { method: 'POST', body: query, ...init });
}

async function count(table: string): Promise<number> {
  const rs = await client.query({ query: `SELECT count() AS n FROM ${table}`, format: 'JSONEachRow' });
  const [row] = await rs.json<{ n: string | number }>();
  return Number(row!.n);
}

beforeAll(async () => {
  dataPath = mkdtempSync(join(tmpdir(), 'ch-http-test-'));
  server = await startClickHouseHttp({ port: 0, dataPath });
  // Failures are provoked on purpose below; the client would log each one.
  client = createClient({ url: server.url, username: 'default', password: '', database: db, log: { level: ClickHouseLogLevel.OFF } });
  const admin = createClient({ url: server.url });
  await admin.command({ query: `CREATE DATABASE ${db}` });
  await admin.close();
  await client.command({
    query: `CREATE TABLE events (id UInt64, name String, at DateTime64(3, 'UTC'), tags Array(String))
            ENGINE = MergeTree ORDER BY id SETTINGS non_replicated_deduplication_window = 1000`,
  });
});

afterAll(async () => {
  await client?.close();
  await server?.close();
  if (dataPath) rmSync(dataPath, { recursive: true, force: true });
});

describe('embedded ClickHouse HTTP endpoint', () => {
  it('answers ping like a server', async () => {
    expect(await client.ping()).toEqual({ success: true });
    const res = await fetch(new URL('/ping', server.url));
    expect(res.status).toBe(200);
    expect(await res.text()).toBe('Ok.\n');
    expect(await (await fetch(server.url)).text()).toBe('Ok.\n');
  });

  it('inserts many JSONEachRow rows through client.insert and reads them back', async () => {
    const rows = Array.from({ length: 20_000 }, (_, i) => ({
      id: i, name: `n${i}`, at: new Date(Date.UTC(2024, 0, 1) + i).toISOString(), tags: [`t${i % 7}`],
    }));
    const result = await client.insert({ table: 'events', values: rows, format: 'JSONEachRow', clickhouse_settings: { date_time_input_format: 'best_effort' } });
    expect(result.summary?.written_rows).toBe('20000');
    expect(await count('events')).toBe(20_000);
    const rs = await client.query({ query: 'SELECT sum(id) AS s, uniqExact(tags[1]) AS u FROM events', format: 'JSONEachRow' });
    expect(await rs.json()).toEqual([{ s: (19_999 * 20_000) / 2, u: 7 }]);
  });

  it('streams a Readable insert in TabSeparated', async () => {
    await client.command({ query: 'CREATE TABLE tsv_in (k UInt32, v String) ENGINE = MergeTree ORDER BY k' });
    const lines = Array.from({ length: 5000 }, (_, i) => `${i}\tv\\t${i}\n`);
    await client.insert({ table: 'tsv_in', values: Readable.from(lines, { objectMode: false }), format: 'TabSeparated' });
    const rs = await client.query({ query: 'SELECT count() AS n, any(v) LIKE \'v\t%\' AS tab FROM tsv_in', format: 'JSONEachRow' });
    expect(await rs.json()).toEqual([{ n: 5000, tab: 1 }]);
  });

  it('streams a body larger than one engine chunk (150k rows, ~14 MB) into one table', async () => {
    await client.command({ query: 'CREATE TABLE big (id UInt64, payload String) ENGINE = MergeTree ORDER BY id' });
    const pad = 'x'.repeat(64);
    function* rows(): Generator<{ id: number; payload: string }> {
      for (let id = 0; id < 150_000; id++) yield { id, payload: `${pad}${id}` };
    }
    const result = await client.insert({ table: 'big', values: Readable.from(rows()), format: 'JSONEachRow' });
    expect(result.summary?.written_rows).toBe('150000');
    const rs = await client.query({ query: 'SELECT count() AS n, uniqExact(id) AS u, max(id) AS m FROM big', format: 'JSONEachRow' });
    expect(await rs.json()).toEqual([{ n: 150_000, u: 150_000, m: 149_999 }]);
  });

  it('binds query parameters of several types server-side', async () => {
    const rs = await client.query({
      query: `SELECT {s:String} AS s, {u:UInt64} AS u, {t:DateTime64(3, 'UTC')} AS t, {a:Array(String)} AS a,
                     {n:Nullable(String)} AS n, {m:Map(String, UInt8)} AS m, {tp:Tuple(String, UInt8)} AS tp`,
      format: 'JSONEachRow',
      query_params: {
        s: "it's a \\ back\tslash",
        u: '18446744073709551615',
        t: new Date('2024-05-06T07:08:09.123Z'),
        a: ["O'Brien", 'plain', 'back\\slash'],
        n: null,
        m: { "k'1": 1 },
        tp: new TupleParam(['back\\slash', 7]),
      },
      clickhouse_settings: { output_format_json_quote_64bit_integers: 1 },
    });
    expect(await rs.json()).toEqual([{
      s: "it's a \\ back\tslash", u: '18446744073709551615', t: '2024-05-06 07:08:09.123',
      a: ["O'Brien", 'plain', 'back\\slash'], n: null, m: { "k'1": 1 }, tp: ['back\\slash', 7],
    }]);
    const filtered = await client.query({
      query: 'SELECT id FROM events WHERE id IN {ids:Array(UInt64)} AND name != {skip:String} ORDER BY id',
      format: 'JSONEachRow',
      query_params: { ids: [3, 5, 8], skip: 'n5' },
    });
    expect(await filtered.json()).toEqual([{ id: 3 }, { id: 8 }]);
  });

  it('serves JSON, JSONEachRow, JSONCompactEachRow, TabSeparated, CSV and Pretty', async () => {
    const query = 'SELECT id, name FROM events WHERE id < 2 ORDER BY id';
    const json = await (await client.query({ query, format: 'JSON' })).json<{ id: number; name: string }>();
    expect(json.meta).toEqual([{ name: 'id', type: 'UInt64' }, { name: 'name', type: 'String' }]);
    expect(json.data).toEqual([{ id: 0, name: 'n0' }, { id: 1, name: 'n1' }]);
    expect(await (await client.query({ query, format: 'JSONCompactEachRow' })).json()).toEqual([[0, 'n0'], [1, 'n1']]);
    expect(await (await client.query({ query, format: 'TabSeparated' })).text()).toBe('0\tn0\n1\tn1\n');
    const csv = await sql(`${query} FORMAT CSV`, { params: { database: db } });
    expect(csv.headers.get('x-clickhouse-format')).toBe('CSV');
    expect(csv.headers.get('content-type')).toMatch(/^text\/csv/);
    expect(await csv.text()).toBe('0,"n0"\n1,"n1"\n');
    const pretty = await (await sql(`${query} FORMAT Pretty`, { params: { database: db } })).text();
    expect(pretty).toContain('n1');
    // No FORMAT and no default_format: TabSeparated, like the server.
    const plain = await sql(query, { params: { database: db } });
    expect(plain.headers.get('x-clickhouse-format')).toBe('TabSeparated');
    expect(await plain.text()).toBe('0\tn0\n1\tn1\n');
    const byDefault = await sql(query, { params: { database: db, default_format: 'JSONEachRow' } });
    expect(await byDefault.text()).toBe('{"id":0,"name":"n0"}\n{"id":1,"name":"n1"}\n');
  });

  it('answers a result of many blocks as one document in the formats that have a prefix or suffix', async () => {
    // 3 blocks of at most 1,000 rows. A server writes one JSON document, one header line and one
    // XML root however many blocks the result has; streaming block by block wrote one of each per block.
    const query = 'SELECT number AS n, toString(number) AS s FROM numbers(2500) SETTINGS max_block_size = 1000';
    const json = await (await client.query({ query, format: 'JSON' })).json<{ n: string; s: string }>();
    expect(json.rows).toBe(2500);
    expect(json.data.map((r) => Number(r.n))).toEqual(Array.from({ length: 2500 }, (_, i) => i));
    const viaSqlFormat = JSON.parse(await (await sql(query.replace(' SETTINGS', ' FORMAT JSONCompact SETTINGS'))).text()) as { rows: number; data: unknown[] };
    expect(viaSqlFormat.rows).toBe(2500);
    expect(viaSqlFormat.data).toHaveLength(2500);
    const csv = (await (await sql(query, { params: { default_format: 'CSVWithNames' } })).text()).trimEnd().split('\n');
    expect(csv.filter((line) => line === '"n","s"')).toHaveLength(1);
    expect(csv).toHaveLength(2501);
    const tsv = (await (await sql(query, { params: { default_format: 'TSVWithNamesAndTypes' } })).text()).trimEnd().split('\n');
    expect(tsv.slice(0, 2)).toEqual(['n\ts', 'UInt64\tString']);
    expect(tsv).toHaveLength(2502);
    const xml = await (await sql(query, { params: { default_format: 'XML' } })).text();
    expect(xml.match(/<result>/g)).toHaveLength(1);
    // Row formats still stream (and concatenate) block by block.
    expect((await (await sql(query, { params: { default_format: 'JSONEachRow' } })).text()).trimEnd().split('\n')).toHaveLength(2500);
  });

  it('raises ClickHouseError with the server code and message, and keeps serving', async () => {
    const failure = await client.query({ query: 'SELECT * FROM no_such_table', format: 'JSONEachRow' }).catch((e: unknown) => e);
    expect(failure).toBeInstanceOf(ClickHouseError);
    expect((failure as ClickHouseError).code).toBe('60');
    expect((failure as ClickHouseError).type).toBe('UNKNOWN_TABLE');
    expect((failure as ClickHouseError).message).toContain('no_such_table');
    const syntax = await client.command({ query: 'SELEC 1' }).catch((e: unknown) => e);
    expect((syntax as ClickHouseError).code).toBe('62');
    // chdb alone would read a bare expression as a SELECT; a server does not.
    const bare = await client.command({ query: '1 + 1' }).catch((e: unknown) => e);
    expect((bare as ClickHouseError).code).toBe('62');
    const res = await sql('SELECT * FROM no_such_table', { params: { database: db } });
    expect(res.status).toBe(404);
    expect(res.headers.get('x-clickhouse-exception-code')).toBe('60');
    expect(await res.text()).toMatch(/^Code: 60\. DB::Exception: .*no_such_table.*\(UNKNOWN_TABLE\)/);
    expect(await count('events')).toBe(20_000);
  });

  it('de-duplicates a retried insert carrying the same insert_deduplication_token', async () => {
    await client.command({
      query: `CREATE TABLE landed (k UInt64, v String) ENGINE = MergeTree ORDER BY k
              SETTINGS non_replicated_deduplication_window = 1000`,
    });
    const batch = Array.from({ length: 1000 }, (_, k) => ({ k, v: `first-${k}` }));
    const insert = (values: object[], token: string): Promise<unknown> =>
      client.insert({ table: 'landed', values, format: 'JSONEachRow', clickhouse_settings: { insert_deduplication_token: token } });
    await insert(batch, 'pipeline/topic/0/0-1000');
    await insert(batch, 'pipeline/topic/0/0-1000');
    expect(await count('landed')).toBe(1000);
    // The token, not the content, identifies the batch.
    await insert(batch.map((r) => ({ ...r, v: 'changed' })), 'pipeline/topic/0/0-1000');
    expect(await count('landed')).toBe(1000);
    await insert(batch.slice(0, 10), 'pipeline/topic/0/1000-1010');
    expect(await count('landed')).toBe(1010);
  });

  it('lands a token insert larger than one engine chunk completely, once', async () => {
    await client.command({
      query: `CREATE TABLE landed_big (k UInt64, v String) ENGINE = MergeTree ORDER BY k
              SETTINGS non_replicated_deduplication_window = 1000`,
    });
    const pad = 'y'.repeat(80);
    function* rows(): Generator<{ k: number; v: string }> {
      for (let k = 0; k < 120_000; k++) yield { k, v: pad };
    }
    const insert = (): Promise<unknown> => client.insert({
      table: 'landed_big', values: Readable.from(rows()), format: 'JSONEachRow',
      clickhouse_settings: { insert_deduplication_token: 'pipeline/topic/1/0-120000' },
    });
    await insert();
    await insert();
    expect(await count('landed_big')).toBe(120_000);
  });

  it('applies settings from URL parameters to that query only', async () => {
    const setting = async (settings: Record<string, string | number>): Promise<string> => {
      const rs = await client.query({ query: "SELECT toString(getSetting('max_threads')) AS v", format: 'JSONEachRow', clickhouse_settings: settings });
      return (await rs.json<{ v: string }>())[0]!.v;
    };
    const before = await setting({});
    expect(await setting({ max_threads: 1 })).toBe('1');
    expect(await setting({})).toBe(before);
    const unknown = await client.query({ query: 'SELECT 1', clickhouse_settings: { no_such_setting: 1 } as ClickHouseSettings }).catch((e: unknown) => e);
    expect((unknown as ClickHouseError).code).toBe('115');
    expect(await setting({})).toBe(before);
    // Without a session, SET and USE last for their own request, as on a server.
    await client.command({ query: 'SET max_threads = 1' });
    await client.command({ query: 'USE system' });
    expect(await setting({})).toBe(before);
    expect(await count('events')).toBe(20_000);
  });

  it('refuses multi-statements like the server, and accepts a trailing semicolon', async () => {
    const multi = await client.command({ query: "SELECT 1; SELECT ';'" }).catch((e: unknown) => e);
    expect(multi).toBeInstanceOf(ClickHouseError);
    expect((multi as ClickHouseError).code).toBe('62');
    expect((multi as ClickHouseError).message).toContain('Multi-statements are not allowed');
    const single = await sql("SELECT 'a;b' AS s; -- done", { params: { default_format: 'JSONEachRow' } });
    expect(await single.text()).toBe('{"s":"a;b"}\n');
  });

  it('keeps 20 concurrent queries and inserts independent', async () => {
    await client.command({ query: 'CREATE TABLE conc (worker UInt32, i UInt32) ENGINE = MergeTree ORDER BY (worker, i)' });
    const work = Array.from({ length: 20 }, async (_, w) => {
      if (w % 2 === 0) {
        await client.insert({ table: 'conc', values: Array.from({ length: 100 + w }, (_, i) => ({ worker: w, i })), format: 'JSONEachRow' });
        return { w, n: 100 + w };
      }
      const rs = await client.query({
        query: 'SELECT {w:UInt32} AS w, count() AS n FROM numbers({n:UInt32})',
        format: 'JSONEachRow',
        query_params: { w, n: 1000 * w },
        clickhouse_settings: w % 3 === 0 ? { max_threads: 1 } : {},
      });
      const [row] = await rs.json<{ w: number; n: number }>();
      return { w: row!.w, n: Number(row!.n) };
    });
    const failing = client.query({ query: 'SELECT * FROM missing_in_the_middle' }).then(() => 'ok', (e: ClickHouseError) => e.code);
    const results = await Promise.all(work);
    expect(await failing).toBe('60');
    expect(results).toEqual(Array.from({ length: 20 }, (_, w) => ({ w, n: w % 2 === 0 ? 100 + w : 1000 * w })));
    const rs = await client.query({ query: 'SELECT worker, count() AS n FROM conc GROUP BY worker ORDER BY worker', format: 'JSONEachRow' });
    expect(await rs.json()).toEqual(Array.from({ length: 10 }, (_, i) => ({ worker: 2 * i, n: 100 + 2 * i })));
  });

  it('echoes the query_id and reports a summary', async () => {
    const queryId = `qid-${uniqueId()}`;
    const rs = await client.query({ query: 'SELECT 1 AS x', format: 'JSONEachRow', query_id: queryId });
    expect(rs.query_id).toBe(queryId);
    expect(rs.response_headers['x-clickhouse-query-id']).toBe(queryId);
    expect(await rs.json()).toEqual([{ x: 1 }]);
    const res = await sql('SELECT 1', { params: { query_id: 'curl-id' } });
    expect(res.headers.get('x-clickhouse-query-id')).toBe('curl-id');
    expect(JSON.parse(res.headers.get('x-clickhouse-summary')!)).toMatchObject({ read_rows: expect.any(String), written_rows: '0' });
  });

  it('accepts gzip request bodies, multipart query parameters and serves Native as bytes', async () => {
    const gzipClient = createClient({
      url: server.url, database: db, compression: { request: true, response: true }, use_multipart_params: true,
      log: { level: ClickHouseLogLevel.OFF },
    });
    try {
      await gzipClient.command({ query: 'CREATE TABLE zipped (k UInt64, v String) ENGINE = MergeTree ORDER BY k' });
      await gzipClient.insert({ table: 'zipped', values: [{ k: 1, v: 'a' }, { k: 2, v: "it's" }], format: 'JSONEachRow' });
      const rs = await gzipClient.query({
        query: 'SELECT k FROM zipped WHERE v IN {vs:Array(String)} AND k > {min:UInt8}',
        format: 'JSONEachRow',
        query_params: { vs: ["it's", 'b'], min: 0 },
      });
      expect(await rs.json()).toEqual([{ k: 2 }]);
    } finally {
      await gzipClient.close();
    }
    const native = await sql('SELECT toUInt64(0) AS z', { params: { default_format: 'Native' } });
    expect(native.headers.get('x-clickhouse-format')).toBe('Native');
    const bytes = new Uint8Array(await native.arrayBuffer());
    // Native: 1 column, 1 row, name "z", type "UInt64", then eight zero bytes.
    expect([...bytes.slice(0, 3)]).toEqual([1, 1, 1]);
    expect([...bytes.slice(-8)]).toEqual([0, 0, 0, 0, 0, 0, 0, 0]);
  });

  it('works for curl-style requests: GET, query in body, URL query plus streamed body, basic auth', async () => {
    const get = await fetch(`${server.url}/?query=${encodeURIComponent('SELECT 40 + 2')}`);
    expect(await get.text()).toBe('42\n');
    const insert = await sql('{"k":1,"v":"x"}\n{"k":2,"v":"y"}\n', {
      params: { query: 'INSERT INTO landed_curl FORMAT JSONEachRow', database: db },
    });
    expect(insert.status).toBe(404);
    await client.command({ query: 'CREATE TABLE landed_curl (k UInt64, v String) ENGINE = MergeTree ORDER BY k' });
    const ok = await sql('{"k":1,"v":"x"}\n{"k":2,"v":"y"}\n', {
      params: { query: 'INSERT INTO landed_curl FORMAT JSONEachRow', database: db },
      headers: { Authorization: `Basic ${Buffer.from('default:').toString('base64')}` },
    });
    expect(ok.status).toBe(200);
    expect(JSON.parse(ok.headers.get('x-clickhouse-summary')!).written_rows).toBe('2');
    const csv = await sql('3,"z"\n', { params: { query: 'INSERT INTO landed_curl FORMAT CSV', database: db } });
    expect(csv.status).toBe(200);
    const inline = await sql(`INSERT INTO ${db}.landed_curl FORMAT JSONEachRow\n{"k":4,"v":"w"}\n`);
    expect(inline.status).toBe(200);
    // Column lists the insert API cannot take go in as SQL text with the body appended.
    const except = await sql('5\n', { params: { query: 'INSERT INTO landed_curl (* EXCEPT (v)) FORMAT TSV', database: db } });
    expect(except.status).toBe(200);
    expect(await count('landed_curl')).toBe(5);
    const wrongUser = await sql('SELECT 1', { headers: { 'X-ClickHouse-User': 'mallory' } });
    expect(wrongUser.status).toBe(403);
    expect(wrongUser.headers.get('x-clickhouse-exception-code')).toBe('516');
  });

  it('checks the password when one is configured', async () => {
    const guarded = await startClickHouseHttp({ port: 0, dataPath, password: 's3cret' }).catch((e: unknown) => e);
    // chdb binds one data path per process; a second endpoint on the same path gets its own connection.
    expect(guarded).not.toBeInstanceOf(Error);
    const other = guarded as ClickHouseHttpServer;
    try {
      const denied = createClient({ url: other.url, password: 'wrong', log: { level: ClickHouseLogLevel.OFF } });
      const failure = await denied.query({ query: 'SELECT 1' }).catch((e: unknown) => e);
      expect((failure as ClickHouseError).code).toBe('516');
      await denied.close();
      const allowed = createClient({ url: other.url, password: 's3cret' });
      expect(await (await allowed.query({ query: 'SELECT 7 AS n', format: 'JSONEachRow' })).json()).toEqual([{ n: 7 }]);
      await allowed.close();
    } finally {
      await other.close();
    }
  });
});
