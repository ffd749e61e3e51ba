/**
 * The processing runtime against a real ClickHouse: derived tables as DESCRIBE sees them, ADD
 * COLUMN for a new version and refusal of a retyped column, SipHash pseudonyms equal to ClickHouse's
 * own sipHash64Keyed, stage exceptions and output violations as dead-letter reasons while the rest
 * lands, a retried step landing once, enrichment picking up a reference-table change after its
 * refresh interval, and dedupe across batches.
 */
import type { ClickHouseClient } from '@clickhouse/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { createReferenceCache } from '../../activities/processing/reference-cache.js';
import { loadWasmSipHash } from '../../activities/processing/wasm-siphash.js';
import { createProcessingRuntime, type SourceEvent } from '../../activities/processing/runtime.js';
import { applyOutputTables, describeTable, OutputTableConflictError } from '../../activities/processing/tables.js';
import { migrate } from '../../infra/clickhouse/migrate.js';
import { createWarehouse } from '../../workers/connections.js';
import type { ValidEvent } from '../../schemas/contracts/envelope.js';
import { dedupe, defineProcessor, emit, enrich, map, stage } from '../../schemas/processing/index.js';
import { sipHash64String, sipKeyFromHex } from '../../schemas/processing/pseudonymise/siphash.js';
import { requestEnrichedV1, requestEnrichedV2 } from '../../schemas/processors/index.js';
import { stackEndpoints, testConfig, uniqueId } from '../support/stack.js';

const config = testConfig();
const db = uniqueId('proc');
let admin: ClickHouseClient;
let warehouse: ClickHouseClient;

async function rows<T>(query: string, params: Record<string, unknown> = {}): Promise<T[]> {
  const result = await warehouse.query({ query, query_params: params, format: 'JSONEachRow' });
  return result.json<T>();
}

beforeAll(async () => {
  const endpoints = stackEndpoints();
  admin = createWarehouse(config, endpoints, 'default');
  warehouse = createWarehouse(config, endpoints, db);
  await migrate(warehouse, db, { admin });
});

afterAll(async () => {
  await admin?.command({ query: 'DROP DATABASE IF EXISTS {db:Identifier}', query_params: { db } });
  await warehouse?.close();
  await admin?.close();
});

const allKinds = z.object({
  s: z.string(),
  e: z.enum(['a', 'b']),
  t: z.iso.datetime(),
  u8: z.int().min(0).max(200),
  i16: z.int().min(-1000).max(1000),
  i64: z.int(),
  f: z.number(),
  b: z.boolean(),
  opt: z.string().optional(),
  nul: z.int().min(0).max(10).nullable(),
  optEnum: z.enum(['x']).optional(),
  arr: z.array(z.string()),
  nested: z.object({ team: z.string(), deep: z.object({ tier: z.uint32() }) }),
  items: z.array(z.object({ sku: z.string(), qty: z.int().min(0).max(100) })),
});

const event = (offset: number, data: Record<string, unknown>, over: Partial<ValidEvent> = {}): SourceEvent => ({
  offset,
  subject: 'orders',
  contractVersion: 1,
  event: { id: `00000000-0000-4000-8000-${String(offset).padStart(12, '0')}`, subject: 'orders', version: 1, time: '2026-11-30T10:00:00.000Z', key: `k${offset}`, data, ...over },
});

describe('typed output tables', () => {
  it('DESCRIBE of a derived table matches the schema, lineage columns first', async () => {
    const p = defineProcessor({ name: 'all-kinds', version: 1, description: 'x', input: { subject: 'orders', versions: [1] }, stages: [], outputs: { main: { schema: allKinds } } });
    const [result] = await applyOutputTables(warehouse, p);
    expect(result).toEqual({ table: 'all_kinds_main', created: true, added: [] });
    const described = [...(await describeTable(warehouse, 'all_kinds_main')).entries()];
    expect(described.slice(0, 10).map(([n]) => n)).toEqual(['pipeline', 'batch_id', 'topic', 'partition', 'offset', 'subject', 'contract_version', 'processor', 'processor_version', 'ingested_at']);
    expect(Object.fromEntries(described.slice(10))).toEqual({
      s: 'String',
      e: 'LowCardinality(String)',
      t: "DateTime64(3, 'UTC')",
      u8: 'UInt8',
      i16: 'Int16',
      i64: 'Int64',
      f: 'Float64',
      b: 'Bool',
      opt: 'Nullable(String)',
      nul: 'Nullable(UInt8)',
      optEnum: 'LowCardinality(Nullable(String))',
      arr: 'Array(String)',
      nested_team: 'String',
      nested_deep_tier: 'UInt32',
      items: 'Array(Tuple(sku String, qty UInt8))',
    });
  });

  it('a new version adds columns with ALTER TABLE ADD COLUMN; a retyped column is refused with its path', async () => {
    await applyOutputTables(warehouse, requestEnrichedV1);
    const before = await describeTable(warehouse, 'request_enriched_requests');
    expect(before.has('protocol')).toBe(false);
    const applied = await applyOutputTables(warehouse, requestEnrichedV2);
    expect(applied.find((a) => a.table === 'request_enriched_requests')).toEqual({ table: 'request_enriched_requests', created: false, added: ['protocol', 'upstream_ms'] });
    const after = await describeTable(warehouse, 'request_enriched_requests');
    expect(after.get('protocol')).toBe('LowCardinality(String)');
    expect(after.get('upstream_ms')).toBe('Nullable(Float64)');
    const retyped = defineProcessor({ ...requestEnrichedV1, version: 3, outputs: { requests: { schema: z.object({ status: z.string() }), table: 'request_enriched_requests' } } });
    await expect(applyOutputTables(warehouse, retyped)).rejects.toThrow(OutputTableConflictError);
    await expect(applyOutputTables(warehouse, retyped)).rejects.toThrow(/status: table request_enriched_requests has column status UInt16, the version needs String/);
  });
});

describe('pseudonymise: TypeScript and WebAssembly SipHash-2-4 against ClickHouse sipHash64Keyed', () => {
  it('gives the same 64-bit value for every input', { timeout: 120_000 }, async () => {
    const keyHex = '0123456789abcdeffedcba9876543210';
    const key = sipKeyFromHex(keyHex);
    const inputs = ['', 'a', 'acme', 'tenant-0001', 'ünïcødé ✓', 'x'.repeat(7), 'y'.repeat(8), 'z'.repeat(9), 'w'.repeat(64), ...Array.from({ length: 200 }, (_, i) => `tenant-${i * 7919}`)];
    const reference = await rows<{ h: string }>(
      `SELECT lower(leftPad(hex(sipHash64Keyed(({k0:UInt64}, {k1:UInt64}), s)), 16, '0')) AS h FROM (SELECT arrayJoin({inputs:Array(String)}) AS s, rowNumberInAllBlocks() AS n) ORDER BY n`,
      { k0: BigInt(`0x${keyHex.slice(0, 16)}`).toString(), k1: BigInt(`0x${keyHex.slice(16)}`).toString(), inputs },
    );
    expect(inputs.map((s) => sipHash64String(key, s))).toEqual(reference.map((r) => r.h));
    // The WebAssembly implementation (built from infra/wasm/assembly/siphash.ts) on the same inputs.
    const wasm = await loadWasmSipHash();
    expect(wasm(keyHex, inputs)).toEqual(reference.map((r) => r.h));
  });
});

describe('processing runtime', () => {
  const scope = (processor: ReturnType<typeof defineProcessor>, from: number, flags: unknown = {}) => ({ pipelineId: 'p1', topic: 'orders', partition: 0, batchId: `p1/orders/0/${from}`, batchFrom: from, processor, flags });

  it('dead-letters a throwing stage with its name and an output violation with its path; the rest lands once', async () => {
    const p = defineProcessor({
      name: 'orders-priced',
      version: 1,
      description: 'x',
      input: { subject: 'orders', versions: [1] },
      stages: [
        map<{ sku: string; qty: number }, { sku: string; qty: number }>('price', (d) => {
          if (d.sku === 'boom') throw new Error('no price for boom');
          return d;
        }),
        map('wrap', (d: { sku: string; qty: number }) => ({ sku: d.sku, qty: d.qty })),
      ],
      outputs: { main: { schema: z.object({ sku: z.string(), qty: z.int().min(0).max(100) }) } },
    });
    // Stages get the whole validated event; unwrap data first.
    const unwrap = { ...p, stages: [map('data', (e: ValidEvent) => e.data), ...p.stages] } as typeof p;
    await applyOutputTables(warehouse, unwrap);
    const runtime = createProcessingRuntime({ warehouse });
    const events = [event(10, { sku: 'a', qty: 1 }), event(11, { sku: 'boom', qty: 1 }), event(12, { sku: 'b', qty: 500 }), event(13, { sku: 'c', qty: 3 }), event(14, { sku: 'd', qty: 1 }, { subject: 'other' })];
    events[4] = { ...events[4]!, subject: 'other' };
    const step = await runtime.process(scope(unwrap, 10), events);
    expect(step.failures.map((f) => [f.offset, f.code, f.message])).toEqual([
      [14, 'processor_input_mismatch', 'orders-priced v1 takes orders v1, got other v1'],
      [11, 'processing_error', 'price: no price for boom'],
      [12, 'output_violation', 'output main: qty: Too big: expected number to be <=100'],
    ]);
    expect(step.breakerFailures).toBe(2);
    await runtime.write(scope(unwrap, 10), step, 'p1/orders/0/10-15');
    await runtime.write(scope(unwrap, 10), step, 'p1/orders/0/10-15'); // a retried step
    const landed = await rows<{ offset: string; sku: string; processor: string; processor_version: number }>('SELECT offset, sku, processor, processor_version FROM orders_priced_main ORDER BY offset');
    expect(landed.map((r) => [Number(r.offset), r.sku, r.processor, Number(r.processor_version)])).toEqual([
      [10, 'a', 'orders-priced', 1],
      [13, 'c', 'orders-priced', 1],
    ]);
  });

  it('enrichment picks up a change to the reference table after its refresh interval', async () => {
    let clock = 1_000_000;
    const references = createReferenceCache({ warehouse, now: () => clock });
    const runtime = createProcessingRuntime({ warehouse, references });
    await warehouse.insert({ table: 'service_catalog', values: [{ service: 'checkout', team: 'payments', tier: 1 }], format: 'JSONEachRow' });
    const p = defineProcessor({
      name: 'svc-team',
      version: 1,
      description: 'x',
      input: { subject: 'orders', versions: [1] },
      stages: [
        enrich<ValidEvent, { service: string; team: string | null }>('catalog', {
          source: { kind: 'clickhouse', table: 'service_catalog', keyColumn: 'service', columns: ['team', 'tier'] },
          key: (e) => String((e.data as { service: string }).service),
          join: (e, row) => ({ service: String((e.data as { service: string }).service), team: row ? String(row.team) : null }),
          refreshMs: 5_000,
        }),
      ],
      outputs: { main: { schema: z.object({ service: z.string(), team: z.string().nullable() }) } },
    });
    const teamOf = async () => {
      const step = await runtime.process(scope(p, 0), [event(0, { service: 'checkout' })]);
      return step.rows.get('svc_team_main')![0]!.team;
    };
    expect(await teamOf()).toBe('payments');
    await new Promise((r) => setTimeout(r, 5)); // updated_at must be later
    await warehouse.insert({ table: 'service_catalog', values: [{ service: 'checkout', team: 'commerce', tier: 1 }], format: 'JSONEachRow' });
    clock += 4_000;
    expect(await teamOf()).toBe('payments'); // within the refresh interval: the cached snapshot
    clock += 1_500;
    expect(await teamOf()).toBe('commerce'); // after it: reloaded, the latest row wins
  });

  it('dedupe drops repeats of a key across batches within the window, and a retried batch decides the same', async () => {
    const p = defineProcessor({
      name: 'orders-once',
      version: 1,
      description: 'x',
      input: { subject: 'orders', versions: [1] },
      stages: [
        map('data', (e: ValidEvent) => ({ order: String((e.data as { order: string }).order), at: Date.parse(e.time) })),
        dedupe<{ order: string; at: number }>('once', { key: (o) => o.order, time: (o) => o.at, windowMs: 60_000 }),
      ],
      outputs: { main: { schema: z.object({ order: z.string() }) } },
    });
    await applyOutputTables(warehouse, p);
    const runtime = createProcessingRuntime({ warehouse });
    const batch1 = [event(0, { order: 'o1' }), event(1, { order: 'o2' }), event(2, { order: 'o1' })];
    const s1 = await runtime.process(scope(p, 0), batch1);
    await runtime.write(scope(p, 0), s1, 'once/0-3');
    const batch2 = [event(3, { order: 'o2' }), event(4, { order: 'o3' }), event(5, { order: 'o1' }, { time: '2026-11-30T11:00:00.000Z' })];
    const s2 = await runtime.process(scope(p, 3), batch2);
    await runtime.write(scope(p, 3), s2, 'once/3-6');
    const again = await runtime.process(scope(p, 3), batch2); // retry after the keys were recorded
    expect(again.emitted).toBe(s2.emitted);
    expect([s1.emitted, s1.dropped, s2.emitted, s2.dropped]).toEqual([2, 1, 2, 1]);
    const landed = await rows<{ offset: string }>('SELECT offset FROM orders_once_main ORDER BY offset');
    expect(landed.map((r) => Number(r.offset))).toEqual([0, 1, 4, 5]);
  });

  it('a user stage can dead-letter on purpose with its own code', async () => {
    const p = defineProcessor({
      name: 'orders-checked',
      version: 1,
      description: 'x',
      input: { subject: 'orders', versions: [1] },
      stages: [stage<ValidEvent, { qty: number }>('check', (e) => ((e.data as { qty: number }).qty < 0 ? { kind: 'dead_letter', code: 'negative_qty', message: 'qty < 0' } : emit({ qty: (e.data as { qty: number }).qty })))],
      outputs: { main: { schema: z.object({ qty: z.number() }) } },
    });
    const step = await createProcessingRuntime({ warehouse }).process(scope(p, 0), [event(0, { qty: -1 }), event(1, { qty: 2 })]);
    expect(step.failures.map((f) => [f.offset, f.code])).toEqual([[0, 'negative_qty']]);
    expect(step.breakerFailures).toBe(0);
  });
});
