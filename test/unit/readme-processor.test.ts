// The README's processor test (section "Writing a processor"), run as written.
import { expect, it } from 'vitest';
import { emptyContext, runStages } from '../../schemas/processing/index.js';
import { ordersEnrichedV1 } from '../fixtures/processors/orders-enriched.js';

it('routes big orders to both outputs and keeps unknown products with a null line', async () => {
  const ctx = { ...emptyContext({ minQty: 1 }), lookups: new Map([['product-line', new Map([['s1', { line: 'tools' }]])]]) };
  const order = (sku: string, qty: number) => ({ id: sku, subject: 'orders', version: 1, time: '2026-11-30T10:00:00.000Z', key: sku, data: { sku, qty, price: 2, country: 'DE' } });
  const fates = await runStages(ordersEnrichedV1.stages, [order('s1', 500), order('s9', 1)], ctx);
  expect(fates.map((f) => f.kind === 'emitted' && [f.outputs, (f.value as { line: string | null }).line])).toEqual([[['all', 'big'], 'tools'], [['all'], null]]);
});
