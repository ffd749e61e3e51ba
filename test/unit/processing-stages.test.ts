import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { dedupe, deadLetter, defineProcessor, drop, emit, emptyContext, enrich, filter, map, route, runStages, stage, type StageContext } from '../../schemas/processing/index.js';
import { sipHash64String, sipKeyFromHex } from '../../schemas/processing/pseudonymise/siphash.js';
import { pseudonymise } from '../../schemas/processing/pseudonymise/stage.js';

interface Order {
  id: string;
  sku: string;
  qty: number;
  at: number;
}
const order = (id: string, sku: string, qty = 1, at = 0): Order => ({ id, sku, qty, at });

describe('stage library', () => {
  it('filter keeps matching events and drops the rest with the stage name', () => {
    const s = filter<Order>('big-only', (o) => o.qty > 1);
    expect(s.apply(order('1', 'a', 2), emptyContext())).toEqual(emit(order('1', 'a', 2)));
    expect(s.apply(order('2', 'a', 1), emptyContext())).toEqual(drop('filtered:big-only'));
  });

  it('filter and route read typed flags', () => {
    const ctx = emptyContext({ minQty: 3 });
    const s = filter<Order, { minQty: number }>('min', (o, c) => o.qty >= c.flags.minQty);
    expect(s.apply(order('1', 'a', 2), ctx).kind).toBe('drop');
    expect(s.apply(order('1', 'a', 3), ctx).kind).toBe('emit');
  });

  it('map transforms into the next shape', () => {
    const s = map<Order, { sku: string; total: number }>('total', (o) => ({ sku: o.sku, total: o.qty * 10 }));
    expect(s.apply(order('1', 'x', 3), emptyContext())).toEqual(emit({ sku: 'x', total: 30 }));
  });

  it('enrich joins with reference data and applies the declared miss behaviour', () => {
    const lookups = new Map([['catalog', new Map([['x', { team: 'shop', tier: 1 }]])]]);
    const ctx: StageContext = { ...emptyContext(), lookups };
    const make = (onMiss: 'keep' | 'drop' | 'dead_letter') =>
      enrich<Order, Order & { team: string | null }>('catalog', {
        source: { kind: 'clickhouse', table: 'catalog', keyColumn: 'sku', columns: ['team', 'tier'] },
        key: (o) => o.sku,
        join: (o, row) => ({ ...o, team: row ? String(row.team) : null }),
        onMiss,
      });
    expect(make('keep').apply(order('1', 'x'), ctx)).toEqual(emit({ ...order('1', 'x'), team: 'shop' }));
    expect(make('keep').apply(order('1', 'y'), ctx)).toEqual(emit({ ...order('1', 'y'), team: null }));
    expect(make('drop').apply(order('1', 'y'), ctx)).toEqual(drop('enrich_miss:catalog'));
    expect(make('dead_letter').apply(order('1', 'y'), ctx)).toEqual(deadLetter('enrich_miss', 'catalog: no reference row for key "y"'));
    expect(make('keep').enrich).toEqual({ source: { kind: 'clickhouse', table: 'catalog', keyColumn: 'sku', columns: ['team', 'tier'] }, refreshMs: 30_000, onMiss: 'keep' });
  });

  it('route addresses outputs; an empty list drops', () => {
    const s = route<Order>('split', (o) => (o.qty > 5 ? ['all', 'bulk'] : o.qty > 0 ? 'all' : []));
    expect(s.apply(order('1', 'a', 6), emptyContext())).toEqual(emit(order('1', 'a', 6), ['all', 'bulk']));
    expect(s.apply(order('1', 'a', 1), emptyContext())).toEqual(emit(order('1', 'a', 1), ['all']));
    expect(s.apply(order('1', 'a', 0), emptyContext())).toEqual(drop('unrouted:split'));
  });

  it('dedupe drops keys seen before the batch and repeats within the window inside the batch', () => {
    const s = dedupe<Order>('once', { key: (o) => o.id, time: (o) => o.at, windowMs: 1000 });
    const ctx: StageContext = { ...emptyContext(), seenBefore: new Map([['once', new Set(['old'])]]) };
    const out = s.applyBatch!([order('old', 'a'), order('n', 'a', 1, 0), order('n', 'a', 1, 500), order('n', 'a', 1, 5000), order('m', 'a')], ctx);
    expect(out.map((o) => o.kind)).toEqual(['drop', 'emit', 'drop', 'emit', 'emit']);
    expect(s.apply(order('old', 'a'), ctx)).toEqual(drop('duplicate:once'));
  });

  it('user stages have the same signature', () => {
    const s = stage<Order, Order>('reject-negative', (o) => (o.qty < 0 ? deadLetter('negative_qty', `qty ${o.qty}`) : emit(o)));
    expect(s.apply(order('1', 'a', -1), emptyContext())).toEqual(deadLetter('negative_qty', 'qty -1'));
  });

  it('pseudonymise: TypeScript SipHash-2-4 matches the paper\'s test vectors', () => {
    const key = sipKeyFromHex('07060504030201000f0e0d0c0b0a0908');
    expect(sipHash64String(key, '')).toBe('726fdb47dd0e0e31');
    const s = pseudonymise<{ t: string }>('p', { get: (e) => e.t, set: (e, t) => ({ ...e, t }), secret: 'k' });
    const ctx = { ...emptyContext(), secrets: { k: '07060504030201000f0e0d0c0b0a0908' } };
    expect(s.apply({ t: '' }, ctx)).toEqual(emit({ t: '726fdb47dd0e0e31' }));
    expect(() => s.apply({ t: '' }, emptyContext())).toThrow(/secret k is not configured/);
  });
});

describe('runStages', () => {
  const stages = [
    filter<Order>('positive', (o) => o.qty > 0),
    map<Order, Order>('explode', (o) => {
      if (o.sku === 'boom') throw new Error('cannot price boom');
      return o;
    }),
    route<Order>('split', (o) => (o.qty > 5 ? ['all', 'bulk'] : 'all')),
  ];

  it('gives every input event one fate, isolates a throwing stage to its event, keeps the order', async () => {
    const fates = await runStages(stages, [order('1', 'a', 1), order('2', 'boom', 2), order('3', 'b', 0), order('4', 'c', 9)], emptyContext());
    expect(fates).toEqual([
      { kind: 'emitted', index: 0, value: order('1', 'a', 1), outputs: ['all'] },
      { kind: 'dead_letter', index: 1, stage: 'explode', code: 'processing_error', message: 'cannot price boom' },
      { kind: 'dropped', index: 2, stage: 'positive', reason: 'filtered:positive' },
      { kind: 'emitted', index: 3, value: order('4', 'c', 9), outputs: ['all', 'bulk'] },
    ]);
  });

  it('falls back to per-event apply when applyBatch throws, so one bad event is isolated', async () => {
    const s = stage<Order, Order>(
      'batchy',
      (o) => {
        if (o.sku === 'bad') throw new Error('bad sku');
        return emit(o);
      },
      () => {
        throw new Error('batch failed');
      },
    );
    const fates = await runStages([s], [order('1', 'ok'), order('2', 'bad')], emptyContext());
    expect(fates.map((f) => f.kind)).toEqual(['emitted', 'dead_letter']);
  });

  it('calls beforeStage with the values entering each stage', async () => {
    const seen: [string, number][] = [];
    await runStages(stages, [order('1', 'a', 1), order('3', 'b', 0)], emptyContext(), (s, values) => void seen.push([s.name, values.length]));
    expect(seen).toEqual([['positive', 2], ['explode', 1], ['split', 1]]);
  });
});

describe('defineProcessor', () => {
  const spec = { name: 'orders-enriched', version: 1, description: 'x', input: { subject: 'orders', versions: [1] }, stages: [], outputs: { main: { schema: z.object({ a: z.string() }) } } };
  it('derives tables and defaults', () => {
    const p = defineProcessor(spec);
    expect(p.outputs.main!.table).toBe('orders_enriched_main');
    expect(p.breaker).toEqual({ failureRatio: 0.5, consecutiveBatches: 3, minEvents: 10 });
  });
  it('refuses a bad name, duplicate stage names, no outputs, a flag without default, an unsupported output field', () => {
    expect(() => defineProcessor({ ...spec, name: 'Orders' })).toThrow(/name: expected a lowercase name/);
    expect(() => defineProcessor({ ...spec, stages: [map('a', (x) => x), map('a', (x) => x)] })).toThrow(/the name a is used twice/);
    expect(() => defineProcessor({ ...spec, outputs: {} })).toThrow(/outputs: expected at least one output/);
    expect(() => defineProcessor({ ...spec, flags: z.object({ on: z.boolean() }) })).toThrow(/flags: every flag needs a default .*\(on\)/);
    expect(() => defineProcessor({ ...spec, outputs: { main: { schema: z.object({ n: z.object({ v: z.unknown() }) }) } } })).toThrow(/n\.v: unsupported kind any\/unknown/);
  });
});
