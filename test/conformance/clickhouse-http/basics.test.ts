/**
 * What a ClickHouse server documents for plain use of the HTTP interface
 * (https://clickhouse.com/docs/interfaces/http): ping, GET and POST queries, formats and their
 * Content-Type, the X-ClickHouse-* headers, inserts with the rows in the body, errors.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ch, exceptionText, ok, unique } from './client.js';

const db = unique('basics');

beforeAll(async () => {
  await ok(`CREATE DATABASE ${db}`);
  await ok(`CREATE TABLE ${db}.t (id UInt32, name String) ENGINE = MergeTree ORDER BY id`);
});
afterAll(async () => {
  await ch(`DROP DATABASE IF EXISTS ${db}`);
});

describe('HTTP interface basics', () => {
  it('answers /ping and GET / with Ok.', async () => {
    for (const path of ['/ping', '/']) {
      const answer = await ch('', { method: 'GET', path, anonymous: true });
      expect(answer.status).toBe(200);
      expect(answer.text).toBe('Ok.\n');
    }
  });

  it('runs a GET query in TabSeparated with the documented headers', async () => {
    const answer = await ch('SELECT 1 AS x, \'a\tb\' AS s', { method: 'GET', params: { query_id: unique('q') } });
    expect(answer.status).toBe(200);
    expect(answer.text).toBe('1\ta\\tb\n');
    expect(answer.code).toBeUndefined();
    expect(answer.headers['content-type']).toBe('text/tab-separated-values; charset=UTF-8');
    expect(answer.headers['x-clickhouse-format']).toBe('TabSeparated');
    expect(answer.headers['x-clickhouse-timezone']).toEqual(expect.any(String));
    const summary = JSON.parse(answer.headers['x-clickhouse-summary'] as string) as Record<string, string>;
    expect(Object.keys(summary)).toEqual(expect.arrayContaining(['read_rows', 'read_bytes', 'written_rows', 'written_bytes', 'result_rows']));
  });

  it('echoes query_id, and makes one when none is sent', async () => {
    const id = unique('qid');
    expect((await ch('SELECT 1', { params: { query_id: id } })).headers['x-clickhouse-query-id']).toBe(id);
    expect((await ch('SELECT 1')).headers['x-clickhouse-query-id']).toMatch(/\S+/);
  });

  it('uses default_format, and FORMAT in the query wins over it', async () => {
    const json = await ch('SELECT 1 AS x', { params: { default_format: 'JSONEachRow' } });
    expect(json.text).toBe('{"x":1}\n');
    expect(json.headers['content-type']).toBe('application/json; charset=UTF-8');
    const csv = await ch('SELECT 1 AS x, \'y\' AS y FORMAT CSVWithNames', { params: { default_format: 'JSONEachRow' } });
    expect(csv.text).toBe('"x","y"\n1,"y"\n');
    expect(csv.headers['x-clickhouse-format']).toBe('CSVWithNames');
    expect(csv.headers['content-type']).toBe('text/csv; charset=UTF-8; header=present');
  });

  it('inserts rows sent in the body after the query in the URL, in several formats', async () => {
    await ok('', { params: { query: `INSERT INTO ${db}.t FORMAT TabSeparated` }, body: '1\tone\n2\ttwo\n' });
    await ok('', { params: { query: `INSERT INTO ${db}.t FORMAT JSONEachRow` }, body: '{"id":3,"name":"three"}\n' });
    await ok('', { params: { query: `INSERT INTO ${db}.t (id, name) FORMAT CSV` }, body: '4,"four"\n' });
    await ok(`INSERT INTO ${db}.t VALUES (5, 'five')`);
    expect(await ok(`SELECT id, name FROM ${db}.t ORDER BY id`)).toBe('1\tone\n2\ttwo\n3\tthree\n4\tfour\n5\tfive\n');
  });

  it('reports errors with the status, the exception code header and the server text', async () => {
    const unknown = await ch(`SELECT * FROM ${db}.no_such_table`);
    expect(unknown.status).toBe(404);
    expect(unknown.code).toBe('60');
    expect(unknown.text).toMatch(exceptionText(60, 'UNKNOWN_TABLE'));
    expect(unknown.headers['content-type']).toBe('text/plain; charset=UTF-8');
    const syntax = await ch('SELEC 1');
    expect(syntax.status).toBe(400);
    expect(syntax.code).toBe('62');
    expect(syntax.text).toMatch(exceptionText(62, 'SYNTAX_ERROR'));
  });

  it('refuses several statements in one request, accepts a trailing semicolon', async () => {
    const multi = await ch('SELECT 1; SELECT 2');
    expect(multi.status).toBe(400);
    expect(multi.code).toBe('62');
    expect(multi.text).toContain('Multi-statements are not allowed');
    expect(await ok("SELECT 'a;b';")).toBe('a;b\n');
  });

  it('serves /play, a page for running SQL in a browser', async () => {
    const page = await ch('', { method: 'GET', path: '/play', anonymous: true });
    expect(page.status).toBe(200);
    expect(page.headers['content-type']).toMatch(/^text\/html/);
    expect(page.text).toMatch(/<textarea/i);
  });

  it('answers 404 for a path it has no handler for', async () => {
    const answer = await ch('', { method: 'GET', path: '/no/such/handler' });
    expect(answer.status).toBe(404);
  });
});
