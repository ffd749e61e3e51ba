/**
 * Throughput of a 200k-row JSONEachRow insert through the embedded ClickHouse HTTP endpoint:
 * `npx tsx test/bench/clickhouse-http-insert.ts [rows]`. Prints rows/s for the streamed path, the
 * de-duplication-token path (one statement) and a prebuilt body sent with fetch (curl-like).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { createClient } from '@clickhouse/client';
import { startClickHouseHttp } from '../../infra/local/clickhouse/http.js';

const rows = Number(process.argv[2] ?? 200_000);
const dataPath = mkdtempSync(join(tmpdir(), 'ch-http-bench-'));
const server = await startClickHouseHttp({ port: 0, dataPath });
const client = createClient({ url: server.url });

function* events(offset: number): Generator<Record<string, unknown>> {
  for (let i = 0; i < rows; i++) {
    yield { topic: 'orders', partition: i % 6, offset: offset + i, at: '2026-01-01 00:00:00.000', body: `{"order":${i},"amount":${i % 977}.25,"currency":"EUR"}` };
  }
}

async function measure(label: string, run: () => Promise<unknown>): Promise<void> {
  const started = performance.now();
  await run();
  const seconds = (performance.now() - started) / 1000;
  console.log(`${label.padEnd(34)} ${rows} rows in ${seconds.toFixed(2)} s = ${Math.round(rows / seconds).toLocaleString('en')} rows/s`);
}

try {
  await client.command({
    query: `CREATE TABLE events (topic String, partition UInt32, offset UInt64, at DateTime64(3), body String)
            ENGINE = MergeTree ORDER BY (topic, partition, offset) SETTINGS non_replicated_deduplication_window = 1000`,
  });
  await measure('client.insert, streamed', () =>
    client.insert({ table: 'events', values: Readable.from(events(0)), format: 'JSONEachRow' }));
  await measure('client.insert, dedup token (1 stmt)', () =>
    client.insert({ table: 'events', values: Readable.from(events(rows)), format: 'JSONEachRow', clickhouse_settings: { insert_deduplication_token: 'bench/1' } }));
  const body = [...events(2 * rows)].map((r) => JSON.stringify(r)).join('\n');
  await measure('fetch, prebuilt body', async () => {
    const url = new URL(server.url);
    url.searchParams.set('query', 'INSERT INTO events FORMAT JSONEachRow');
    const res = await fetch(url, { method: 'POST', body });
    if (!res.ok) throw new Error(await res.text());
  });
  const rs = await client.query({ query: 'SELECT count() AS n FROM events', format: 'JSONEachRow' });
  console.log('rows in table:', (await rs.json<{ n: number }>())[0]?.n, 'expected', 3 * rows);
} finally {
  await client.close();
  await server.close();
  rmSync(dataPath, { recursive: true, force: true });
}
