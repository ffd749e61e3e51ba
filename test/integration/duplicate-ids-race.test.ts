/**
 * Duplicate event ids racing across partitions (issue 7, point 6): two partitions land the same
 * new ids at the same moment. The old lookup (`duplicateIdCheck: 'lookup'`) reads `events` before
 * inserting, so both steps see nothing and both land every id; the claims check
 * (`event_id_claims`, the default) lands each id exactly once and dead-letters the other copy as
 * `duplicate_id` pointing at the winner's offset. The race is made certain, not hoped for: the
 * warehouse client the activities use holds both steps at the named insert until both reached it
 * (a barrier around the real client; the SQL runs unchanged). First, the block-number properties
 * of the embedded ClickHouse that the claims check rests on are checked directly.
 * Real broker, real ClickHouse, the real landing activity; merges stopped so counts cannot pass by
 * luck (count() without FINAL).
 */
import { MockActivityEnvironment } from '@temporalio/testing';
import type { ClickHouseClient } from '@clickhouse/client';
import { Partitioners, type Kafka, type Producer } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createIngestActivities, KafkaResources, type IngestDeps, type LandBatchInput } from '../../activities/ingest/ingest.js';
import { cp, mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadMigrations, migrate, migrationsDir } from '../../infra/clickhouse/migrate.js';
import { planRange } from '../../schemas/ingest/batch-plan.js';
import { createKafka, createWarehouse } from '../../workers/connections.js';
import { recentStart, stackEndpoints, testConfig, uniqueId } from '../support/stack.js';

const config = testConfig();
const id = uniqueId('t');
const topic = `dupids-race-${id}`;
const rounds = 8;
const perRound = 10;
let kafka: Kafka;
let producer: Producer;
let admin: ClickHouseClient;
let warehouse: ClickHouseClient;
let resources: KafkaResources;

const T = recentStart();
const uuid = (n: number) => `5a1e7c00-2b1f-4c5d-8e7f-${String(n).padStart(12, '0')}`;
const telemetry = { service: 'checkout', route: '/orders/:id', method: 'GET', status: 200, duration_ms: 40, region: 'eu-west-1', tenant_id: 'acme' };
const event = (n: number) => JSON.stringify({ id: uuid(n), subject: 'request-telemetry', version: 1, time: new Date(T + n * 1000).toISOString(), key: 'acme', data: telemetry });
/** Round r holds offsets [r * perRound, (r + 1) * perRound) of both partitions, with the same ids. */
const records = Array.from({ length: rounds * perRound }, (_, n) => event(n));

function run<A extends unknown[], R>(fn: (...args: A) => Promise<R>, ...args: A): Promise<R> {
  return new MockActivityEnvironment().run(fn, ...args) as Promise<R>;
}

async function rows<T>(query: string, params: Record<string, unknown> = {}): Promise<T[]> {
  return (await warehouse.query({ query, query_params: params, format: 'JSONEachRow' })).json<T>();
}

/**
 * The real client, except that an insert into `table` waits until `parties` inserts into it are
 * waiting, then all go at once: the steps have done every read that precedes that insert.
 */
function racing(client: ClickHouseClient, table: string, parties: number): ClickHouseClient {
  let waiting: (() => void)[] = [];
  return new Proxy(client, {
    get(target, prop, receiver) {
      if (prop !== 'insert') return Reflect.get(target, prop, receiver) as unknown;
      return async (params: Parameters<ClickHouseClient['insert']>[0]) => {
        if (params.table === table) {
          await new Promise<void>((release) => {
            waiting.push(release);
            if (waiting.length === parties) {
              for (const r of waiting) r();
              waiting = [];
            }
          });
        }
        return target.insert(params);
      };
    },
  });
}

/** Lands round `r` of both partitions at once; `generation` > 0 is a replay of the same offsets. */
async function landRound(deps: Pick<IngestDeps, 'duplicateIdCheck'>, barrierTable: string, pipeline: string, r: number, generation = 0): Promise<void> {
  const acts = createIngestActivities({ kafka, warehouse: racing(warehouse, barrierTable, 2), processorVersion: 'race-test', resources, ...deps });
  const input = (partition: number): LandBatchInput => ({ plan: planRange(pipeline, topic, partition, r * perRound, (r + 1) * perRound, generation, perRound), maxEventBytes: 1 << 20 });
  await Promise.all([run(acts.landBatch, input(0)), run(acts.landBatch, input(1))]);
}

async function counts(pipeline: string): Promise<{ events: number; ids: number; dead: number }> {
  const [c] = await rows<{ events: string; ids: string; dead: string }>(
    `SELECT (SELECT count() FROM events WHERE pipeline = {p:String}) AS events,
            (SELECT uniqExact(event_id) FROM events WHERE pipeline = {p:String}) AS ids,
            (SELECT count() FROM dead_letters WHERE pipeline = {p:String}) AS dead`,
    { p: pipeline },
  );
  return { events: Number(c!.events), ids: Number(c!.ids), dead: Number(c!.dead) };
}

beforeAll(async () => {
  const endpoints = stackEndpoints();
  kafka = createKafka(config, endpoints, `-${id}`);
  admin = createWarehouse(config, endpoints, 'default');
  warehouse = createWarehouse(config, endpoints, id);
  await migrate(warehouse, id, { admin });
  for (const table of ['events', 'dead_letters', 'event_id_claims']) await warehouse.command({ query: 'SYSTEM STOP MERGES {db:Identifier}.{t:Identifier}', query_params: { db: id, t: table } });
  resources = new KafkaResources(kafka);
  await run(createIngestActivities({ kafka, warehouse, processorVersion: 'race-test', resources }).ensureTopic, { topic, partitions: 2 });
  producer = kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner });
  await producer.connect();
  for (const partition of [0, 1]) await producer.send({ topic, messages: records.map((value) => ({ key: 'acme', value, partition })) });
});

afterAll(async () => {
  for (const table of ['events', 'dead_letters', 'event_id_claims']) await warehouse?.command({ query: 'SYSTEM START MERGES {db:Identifier}.{t:Identifier}', query_params: { db: id, t: table } }).catch(() => undefined);
  await producer?.disconnect();
  await resources?.close();
  await admin?.command({ query: 'DROP DATABASE IF EXISTS {db:Identifier}', query_params: { db: id } });
  await Promise.all([admin?.close(), warehouse?.close()]);
});

describe('block numbers of the embedded ClickHouse (what the claims check rests on)', () => {
  interface Probe { k: string; block: string }
  const probe = 'claims_probe';
  const insert = (values: { n: number }[], token?: string) =>
    warehouse.insert({ table: probe, values, format: 'JSONEachRow', clickhouse_settings: { insert_deduplicate: 1, async_insert: 0, ...(token ? { insert_deduplication_token: token } : {}) } });
  const blocks = async (): Promise<Map<number, number>> => new Map((await rows<Probe>(`SELECT toString(n) AS k, toString(_block_number) AS block FROM ${probe}`)).map((p) => [Number(p.k), Number(p.block)]));

  beforeAll(async () => {
    // The settings of event_id_claims (migration 036) on a table of its own.
    await warehouse.command({ query: `CREATE TABLE ${probe} (n UInt64) ENGINE = MergeTree ORDER BY n SETTINGS enable_block_number_column = 1, non_replicated_deduplication_window = 1000` });
  });

  it('one insert is one block; a de-duplicated retry keeps its block; OPTIMIZE FINAL keeps every row its block', async () => {
    await insert(Array.from({ length: 500 }, (_, n) => ({ n })), 'first');
    await insert([{ n: 1000 }], 'second');
    // The retry of the first insert (same token) after another insert: dropped, block kept.
    await insert(Array.from({ length: 500 }, (_, n) => ({ n })), 'first');
    const before = await blocks();
    expect(before.size).toBe(501);
    expect(new Set([...before].filter(([n]) => n < 500).map(([, b]) => b)).size).toBe(1);
    expect(before.get(1000)).toBeGreaterThan(before.get(0)!);
    const [{ count }] = (await rows<{ count: string }>(`SELECT count() AS count FROM ${probe}`)) as [{ count: string }];
    expect(Number(count)).toBe(501);
    await warehouse.command({ query: `OPTIMIZE TABLE ${probe} FINAL` });
    const [{ parts }] = (await rows<{ parts: string }>('SELECT count() AS parts FROM system.parts WHERE database = {db:String} AND table = {t:String} AND active', { db: id, t: probe })) as [{ parts: string }];
    expect(Number(parts)).toBe(1);
    expect(await blocks()).toEqual(before);
  });

  it('under concurrent writers, a row a writer did not see right after its own insert has a higher block than the writer\'s own', async () => {
    const writers = 8;
    for (let round = 0; round < 5; round++) {
      const base = 10_000 + round * 100;
      const seen = await Promise.all(
        Array.from({ length: writers }, async (_, w) => {
          await insert([{ n: base + w }]);
          const visible = await rows<Probe>(`SELECT toString(n) AS k, toString(_block_number) AS block FROM ${probe} WHERE n >= {lo:UInt64} AND n < {hi:UInt64}`, { lo: base, hi: base + 100 });
          return new Set(visible.map((v) => Number(v.k)));
        }),
      );
      const all = await blocks();
      seen.forEach((visible, w) => {
        const own = all.get(base + w)!;
        expect(visible.has(base + w)).toBe(true);
        for (let other = 0; other < writers; other++) {
          if (visible.has(base + other)) continue;
          expect(all.get(base + other)!).toBeGreaterThan(own);
        }
      });
    }
  });
});

describe('duplicate ids racing on two partitions', () => {
  it('with the old lookup, every racing id lands twice', async () => {
    const pipeline = 'lookup';
    for (let r = 0; r < rounds; r++) await landRound({ duplicateIdCheck: 'lookup' }, 'events', pipeline, r);
    expect(await counts(pipeline)).toEqual({ events: 2 * rounds * perRound, ids: rounds * perRound, dead: 0 });
  });

  it('with claims, each id lands exactly once and the other copy points at it; retries and a replay add nothing', async () => {
    const pipeline = 'claims';
    for (let r = 0; r < rounds; r++) await landRound({ duplicateIdCheck: 'claims' }, 'event_id_claims', pipeline, r);
    const expected = { events: rounds * perRound, ids: rounds * perRound, dead: rounds * perRound };
    expect(await counts(pipeline)).toEqual(expected);
    const landed = await rows<{ id: string; partition: number; offset: string }>('SELECT lower(toString(event_id)) AS id, partition, toString(offset) AS offset FROM events WHERE pipeline = {p:String}', { p: pipeline });
    const winner = new Map(landed.map((l) => [l.id, `${l.partition}/${l.offset}`]));
    const dead = await rows<{ partition: number; offset: string; reason_code: string; reason_detail: string }>('SELECT partition, toString(offset) AS offset, reason_code, reason_detail FROM dead_letters WHERE pipeline = {p:String}', { p: pipeline });
    for (const d of dead) {
      const detail = JSON.parse(d.reason_detail) as { id: string; firstTopic: string; firstPartition: number; firstOffset: string; scope: string };
      expect(d.reason_code).toBe('duplicate_id');
      expect(detail).toMatchObject({ firstTopic: topic, scope: 'pipeline' });
      expect(`${detail.firstPartition}/${detail.firstOffset}`).toBe(winner.get(detail.id.toLowerCase()));
      // The loser is the other partition's copy of the same offset.
      expect(`${1 - Number(d.partition)}/${d.offset}`).toBe(winner.get(detail.id.toLowerCase()));
    }
    // Retries of every round (same plans, racing again), then a replay (generation 1) of every round.
    for (let r = 0; r < rounds; r++) await landRound({ duplicateIdCheck: 'claims' }, 'event_id_claims', pipeline, r);
    for (let r = 0; r < rounds; r++) await landRound({ duplicateIdCheck: 'claims' }, 'event_id_claims', pipeline, r, 1);
    expect(await counts(pipeline)).toEqual(expected);
    expect(new Map((await rows<{ id: string; partition: number; offset: string }>('SELECT lower(toString(event_id)) AS id, partition, toString(offset) AS offset FROM events WHERE pipeline = {p:String}', { p: pipeline })).map((l) => [l.id, `${l.partition}/${l.offset}`]))).toEqual(winner);
  });
});

describe('a step that cannot see its own claim', () => {
  it('fails retriably (claim_missing) before inserting anything; the retry lands', async () => {
    const pipeline = 'lost-claim';
    // The real client, except that the claims insert is acknowledged without being written (a
    // write lost on its way, as on a replica that does not have it yet).
    const losing = new Proxy(warehouse, {
      get(target, prop, receiver) {
        if (prop !== 'insert') return Reflect.get(target, prop, receiver) as unknown;
        return (params: Parameters<ClickHouseClient['insert']>[0]) => (params.table === 'event_id_claims' ? Promise.resolve({ executed: true, query_id: '', summary: undefined, response_headers: {} }) : target.insert(params));
      },
    });
    const input: LandBatchInput = { plan: planRange(pipeline, topic, 0, 0, perRound, 0, perRound), maxEventBytes: 1 << 20 };
    const lost = run(createIngestActivities({ kafka, warehouse: losing, processorVersion: 'race-test', resources }).landBatch, input);
    await expect(lost).rejects.toMatchObject({ code: 'claim_missing', retriable: true });
    await expect(lost).rejects.toThrow(/expected the step's own claims of 10 event id\(s\) in event_id_claims right after inserting them/);
    expect(await counts(pipeline)).toEqual({ events: 0, ids: 0, dead: 0 });
    await run(createIngestActivities({ kafka, warehouse, processorVersion: 'race-test', resources }).landBatch, input);
    expect(await counts(pipeline)).toEqual({ events: perRound, ids: perRound, dead: 0 });
  });
});

describe('migration 036 on a database with landed events', () => {
  it('backfills a claim per landed event, once; a racing copy of a backfilled id then points at the landed row', async () => {
    const db = `${id}_bf`;
    const dir = await mkdtemp(join(tmpdir(), 'migrations-'));
    const client = createWarehouse(config, stackEndpoints(), db);
    try {
      // The database as it was before 036, with round 0 of partition 0 landed by the old lookup.
      for (const f of await readdir(migrationsDir)) if (f.endsWith('.sql') && f < '036') await cp(join(migrationsDir, f), join(dir, f));
      await migrate(client, db, { admin, dir });
      const acts = (check: IngestDeps['duplicateIdCheck']) => createIngestActivities({ kafka, warehouse: client, processorVersion: 'race-test', resources, duplicateIdCheck: check });
      const plan = (partition: number): LandBatchInput => ({ plan: planRange('backfill', topic, partition, 0, perRound, 0, perRound), maxEventBytes: 1 << 20 });
      await run(acts('lookup').landBatch, plan(0));
      // Upgrade: 036 applies, then its statements once more (two processes starting at once).
      expect((await migrate(client, db, { admin })).applied).toContain('036_event_id_claims.sql');
      const claims = async () => (await (await client.query({ query: 'SELECT partition, toString(offset) AS offset, batch_id FROM event_id_claims ORDER BY partition, offset', format: 'JSONEachRow' })).json<{ partition: number; offset: string; batch_id: string }>());
      const backfilled = await claims();
      expect(backfilled).toEqual(Array.from({ length: perRound }, (_, o) => ({ partition: 0, offset: String(o), batch_id: `backfill/${topic}/0/0-${perRound}` })));
      const m036 = (await loadMigrations()).find((m) => m.version === 36)!;
      for (const statement of m036.statements) await client.command({ query: statement });
      expect(await claims()).toEqual(backfilled);
      // The other partition's copies of the same ids, with claims: duplicates of the landed rows.
      const result = await run(acts('claims').landBatch, plan(1));
      expect(result).toMatchObject({ valid: 0, rejected: perRound, rejectCodes: { duplicate_id: perRound } });
      const dead = await (await client.query({ query: 'SELECT toString(offset) AS offset, reason_detail FROM dead_letters ORDER BY offset', format: 'JSONEachRow' })).json<{ offset: string; reason_detail: string }>();
      expect(dead.map((d) => [d.offset, (JSON.parse(d.reason_detail) as { firstPartition: number; firstOffset: string }).firstPartition, (JSON.parse(d.reason_detail) as { firstOffset: string }).firstOffset])).toEqual(
        Array.from({ length: perRound }, (_, o) => [String(o), 0, String(o)]),
      );
    } finally {
      await admin.command({ query: 'DROP DATABASE IF EXISTS {db:Identifier}', query_params: { db } });
      await client.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
});
