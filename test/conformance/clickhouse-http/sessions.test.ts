/**
 * HTTP sessions (https://clickhouse.com/docs/interfaces/http, "session_id"): temporary tables,
 * SET and USE last within a session and are invisible outside it; session_check=1 refuses an
 * unknown session (372); a session expires session_timeout seconds after its last request; a bad
 * timeout is refused (374); a second request while the session is busy is refused (373).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ch, exceptionText, ok, unique } from './client.js';

const db = unique('sess');

beforeAll(async () => {
  await ok(`CREATE DATABASE ${db}`);
});
afterAll(async () => {
  await ch(`DROP DATABASE IF EXISTS ${db}`);
});

const inSession = (session_id: string, extra: Record<string, string> = {}): { params: Record<string, string> } => ({ params: { session_id, ...extra } });

describe('HTTP sessions', () => {
  it('keeps a temporary table within its session only', async () => {
    const a = unique('sa');
    const b = unique('sb');
    await ok('CREATE TEMPORARY TABLE tmp_rows (x UInt8)', inSession(a));
    await ok('INSERT INTO tmp_rows VALUES (1), (2)', inSession(a));
    expect(await ok('SELECT sum(x) FROM tmp_rows', inSession(a))).toBe('3\n');
    const other = await ch('SELECT sum(x) FROM tmp_rows', inSession(b));
    expect(other.status).toBe(404);
    expect(other.code).toBe('60');
    const none = await ch('SELECT sum(x) FROM tmp_rows');
    expect(none.code).toBe('60');
  });

  it('a temporary table made without a session lasts one query', async () => {
    await ok('CREATE TEMPORARY TABLE tmp_once (x UInt8)');
    for (let i = 0; i < 4; i++) expect((await ch('SELECT * FROM tmp_once')).code).toBe('60');
  });

  it('keeps SET and USE for the session; URL settings last one request', async () => {
    const s = unique('set');
    await ok('SET max_block_size = 777', inSession(s));
    expect(await ok("SELECT getSetting('max_block_size')", inSession(s))).toBe('777\n');
    expect(await ok("SELECT getSetting('max_block_size')", inSession(s, { max_block_size: '555' }))).toBe('555\n');
    expect(await ok("SELECT getSetting('max_block_size')", inSession(s))).toBe('777\n');
    expect(await ok("SELECT getSetting('max_block_size')")).not.toBe('777\n');
    await ok(`USE ${db}`, inSession(s));
    expect(await ok('SELECT currentDatabase()', inSession(s))).toBe(`${db}\n`);
    expect(await ok('SELECT currentDatabase()')).toBe('default\n');
  });

  it('refuses an unknown session with session_check=1 (372)', async () => {
    const answer = await ch('SELECT 1', inSession(unique('nope'), { session_check: '1' }));
    expect(answer.status).toBe(500);
    expect(answer.code).toBe('372');
    expect(answer.text).toMatch(exceptionText(372, 'SESSION_NOT_FOUND'));
  });

  it('refuses an invalid session_timeout (374)', async () => {
    for (const timeout of ['abc', '-1', '999999']) {
      const answer = await ch('SELECT 1', inSession(unique('to'), { session_timeout: timeout }));
      expect(answer.code).toBe('374');
      expect(answer.text).toMatch(exceptionText(374, 'INVALID_SESSION_TIMEOUT'));
    }
  });

  it('ends a session after session_timeout seconds without requests', async () => {
    const s = unique('exp');
    await ok('CREATE TEMPORARY TABLE tmp_exp (x UInt8)', inSession(s, { session_timeout: '1' }));
    expect(await ok('SELECT count() FROM tmp_exp', inSession(s, { session_check: '1' }))).toBe('0\n');
    await new Promise((r) => setTimeout(r, 3500));
    const answer = await ch('SELECT 1', inSession(s, { session_check: '1' }));
    expect(answer.code).toBe('372');
  });

  it('refuses a second request while the session is busy (373)', async () => {
    const s = unique('busy');
    await ok('SELECT 1', inSession(s));
    const long = ch('SELECT sleep(2)', inSession(s));
    await new Promise((r) => setTimeout(r, 500));
    const second = await ch('SELECT 1', inSession(s));
    expect(second.status).toBe(500);
    expect(second.code).toBe('373');
    expect(second.text).toMatch(exceptionText(373, 'SESSION_IS_LOCKED'));
    expect((await long).status).toBe(200);
    expect(await ok('SELECT 2', inSession(s))).toBe('2\n');
  });
});
