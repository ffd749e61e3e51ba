/**
 * A server runs requests side by side: a short query or an insert does not wait for a long
 * query. A long query stops when killed (KILL QUERY ... SYNC reports it finished, its request gets
 * 394), when the client goes away with cancel_http_readonly_queries_on_client_close=1, or at
 * max_execution_time (159); either way the engine stops it (see {@link stopped}). A query_id already
 * running is refused (216). Order of completion is asserted, never durations.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ch, ok, target, unique, waitFor } from './client.js';

const db = unique('conc');

beforeAll(async () => {
  await ok(`CREATE DATABASE ${db}`);
  await ok(`CREATE TABLE ${db}.landing (x UInt32) ENGINE = MergeTree ORDER BY x`);
});
afterAll(async () => {
  await ch(`DROP DATABASE IF EXISTS ${db}`);
});

/** A query that keeps a core busy for minutes, recognisable by its marker. */
const heavy = (marker: string): string => `SELECT count() FROM numbers(100000000000) WHERE sipHash64(number, '${marker}') = 42`;

async function runningWith(marker: string): Promise<number> {
  const text = await ok(`SELECT count() FROM system.processes WHERE query LIKE '%${marker}%' AND query NOT LIKE '%system.processes%'`);
  return Number(text.trim());
}

/**
 * Whether the engine has stopped the query with this marker. On a server that means it left
 * system.processes. The embedded engine (chdb 3.4, ClickHouse 26.7) sometimes keeps a killed query
 * listed for good after KILL QUERY, marked is_cancelled = 1 and idle (its read_rows no longer
 * move, no CPU is used): for the embedded target such an entry also counts as stopped, and only
 * there. A query that was never cancelled is never counted as stopped.
 */
async function stopped(marker: string): Promise<boolean> {
  const sample = async (): Promise<{ listed: number; cancelled: number; rows: number }> => {
    const [listed = 0, cancelled = 0, rows = 0] = (await ok(
      `SELECT count(), countIf(is_cancelled = 1), sum(read_rows) FROM system.processes WHERE query LIKE '%${marker}%' AND query NOT LIKE '%system.processes%'`,
    )).trim().split('\t').map(Number);
    return { listed, cancelled, rows };
  };
  const first = await sample();
  if (first.listed === 0) return true;
  if (!target().embedded || first.cancelled < first.listed) return false;
  await new Promise((resolve) => setTimeout(resolve, 1000));
  const second = await sample();
  return second.listed === 0 || (second.cancelled === second.listed && second.rows === first.rows);
}

describe('concurrency and cancellation', () => {
  it('answers a short query and lands an insert while a long query runs', async () => {
    const order: string[] = [];
    const long = ch('SELECT sleep(3)', {}).then((a) => { order.push('long'); return a; });
    await new Promise((r) => setTimeout(r, 300));
    const short = ch('SELECT 1').then((a) => { order.push('short'); return a; });
    const insert = ch('', { params: { query: `INSERT INTO ${db}.landing FORMAT TSV` }, body: '1\n2\n' }).then((a) => { order.push('insert'); return a; });
    const [l, s, i] = await Promise.all([long, short, insert]);
    expect([l.status, s.status, i.status]).toEqual([200, 200, 200]);
    expect(order.at(-1)).toBe('long');
    expect(await ok(`SELECT count() FROM ${db}.landing`)).toBe('2\n');
  });

  it('refuses a second query with the query_id of a running one (216)', async () => {
    const id = unique('dup');
    const marker = unique('m');
    const long = ch(heavy(marker), { params: { query_id: id } });
    await waitFor(async () => (await runningWith(marker)) > 0, 10_000, 'the long query to start');
    const dup = await ch('SELECT 1', { params: { query_id: id } });
    expect(dup.status).toBe(500);
    expect(dup.code).toBe('216');
    expect(dup.text).toContain(`Query with id = ${id} is already running`);
    await ok(`KILL QUERY WHERE query_id = '${id}' SYNC`);
    expect((await long).code).toBe('394');
  });

  it('KILL QUERY ... SYNC stops a running query by its query_id', async () => {
    const id = unique('kill');
    const marker = unique('m');
    const long = ch(heavy(marker), { params: { query_id: id } });
    await waitFor(async () => (await runningWith(marker)) > 0, 10_000, 'the long query to start');
    const kill = await ok(`KILL QUERY WHERE query_id = '${id}' SYNC`);
    expect(kill).toMatch(new RegExp(`^finished\\t${id}\\t`));
    const killed = await long;
    expect(killed.status).toBe(500);
    expect(killed.code).toBe('394');
    expect(await stopped(marker)).toBe(true);
  });

  it('a client going away stops its query with cancel_http_readonly_queries_on_client_close=1', async () => {
    const marker = unique('m');
    const aborted = ch(heavy(marker), { params: { cancel_http_readonly_queries_on_client_close: '1' }, abortAfterMs: 1000 });
    await expect(aborted).rejects.toThrow(/aborted/);
    // The query would run for hours: stopping within the wait proves the cancel. The wait is
    // generous because CI runs this suite next to the integration suite on two cores.
    await waitFor(() => stopped(marker), 45_000, 'the aborted query to stop in the engine');
  });

  it('max_execution_time ends a query with 159 and frees the engine', async () => {
    const marker = unique('m');
    const answer = await ch(heavy(marker), { params: { max_execution_time: '1' } });
    expect(answer.status).toBe(408);
    expect(answer.code).toBe('159');
    await waitFor(() => stopped(marker), 15_000, 'the timed-out query to stop in the engine');
  });
});
