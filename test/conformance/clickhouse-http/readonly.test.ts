/**
 * Read-only rules (https://clickhouse.com/docs/operations/settings/permissions-for-queries): a GET
 * request is readonly=2 (reads, and setting changes), `readonly=1` refuses writes and every setting
 * change, `readonly=2` refuses writes. Refusals are 164 READONLY, and nothing is written.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ch, exceptionText, ok, unique } from './client.js';

const db = unique('ro');

beforeAll(async () => {
  await ok(`CREATE DATABASE ${db}`);
  await ok(`CREATE TABLE ${db}.t (x UInt8) ENGINE = MergeTree ORDER BY x`);
});
afterAll(async () => {
  await ch(`DROP DATABASE IF EXISTS ${db}`);
});

async function tableExists(name: string): Promise<boolean> {
  return (await ok(`EXISTS TABLE ${db}.${name}`)).trim() === '1';
}

describe('read-only requests', () => {
  it('refuses CREATE TABLE sent with GET, saying that GET implies readonly', async () => {
    const answer = await ch(`CREATE TABLE ${db}.by_get (x UInt8) ENGINE = Memory`, { method: 'GET' });
    expect(answer.status).toBe(500);
    expect(answer.code).toBe('164');
    expect(answer.text).toMatch(exceptionText(164, 'READONLY'));
    expect(answer.text).toContain('method GET implies readonly');
    expect(await tableExists('by_get')).toBe(false);
  });

  it('refuses INSERT sent with GET', async () => {
    const answer = await ch(`INSERT INTO ${db}.t VALUES (1)`, { method: 'GET' });
    expect(answer.code).toBe('164');
    expect(await ok(`SELECT count() FROM ${db}.t`)).toBe('0\n');
  });

  it('lets GET read and change settings for the query (readonly=2)', async () => {
    const answer = await ch("SELECT getSetting('max_block_size')", { method: 'GET', params: { max_block_size: '1234' } });
    expect(answer.status).toBe(200);
    expect(answer.text).toBe('1234\n');
  });

  it('refuses writes with readonly=1 on POST, and any setting change', async () => {
    const create = await ch(`CREATE TABLE ${db}.by_ro1 (x UInt8) ENGINE = Memory`, { params: { readonly: '1' } });
    expect(create.code).toBe('164');
    expect(create.text).toMatch(exceptionText(164, 'READONLY'));
    expect(await tableExists('by_ro1')).toBe(false);
    const insert = await ch('', { params: { readonly: '1', query: `INSERT INTO ${db}.t FORMAT TSV` }, body: '1\n' });
    expect(insert.code).toBe('164');
    const setting = await ch('SELECT 1', { params: { readonly: '1', max_block_size: '1234' } });
    expect(setting.code).toBe('164');
    expect(setting.text).toContain("Cannot modify 'max_block_size' setting in readonly mode");
    expect(await ok('SELECT 1', { params: { readonly: '1' } })).toBe('1\n');
    expect(await ok(`SELECT count() FROM ${db}.t`)).toBe('0\n');
  });

  it('refuses writes with readonly=2 but lets settings change', async () => {
    const create = await ch(`CREATE TABLE ${db}.by_ro2 (x UInt8) ENGINE = Memory`, { params: { readonly: '2' } });
    expect(create.code).toBe('164');
    expect(await tableExists('by_ro2')).toBe(false);
    expect(await ok("SELECT getSetting('max_block_size')", { params: { readonly: '2', max_block_size: '4321' } })).toBe('4321\n');
  });

  it('still writes with POST and no readonly', async () => {
    await ok(`INSERT INTO ${db}.t VALUES (7)`);
    expect(await ok(`SELECT x FROM ${db}.t`)).toBe('7\n');
  });
});
