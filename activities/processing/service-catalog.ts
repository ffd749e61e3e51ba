/**
 * The demo's reference data: which team owns each service of the synthetic stream and its tier.
 * `npm start` seeds `service_catalog` with it when the table is empty; people edit the table with
 * plain INSERTs afterwards (the latest row of a service wins) and the enrichment picks the change up
 * after its refresh interval.
 */
import type { ClickHouseClient } from '@clickhouse/client';

/** Service -> team and tier of the demo. `inventory` is left out on purpose: a miss (kept with nulls). */
export const demoServiceCatalog: readonly { service: string; team: string; tier: number }[] = [
  { service: 'api-gateway', team: 'edge', tier: 1 },
  { service: 'checkout', team: 'commerce', tier: 1 },
  { service: 'payments', team: 'commerce', tier: 1 },
  { service: 'auth', team: 'identity', tier: 1 },
  { service: 'search', team: 'discovery', tier: 2 },
  { service: 'catalog', team: 'discovery', tier: 2 },
  { service: 'recommendations', team: 'discovery', tier: 3 },
];

/** Inserts the demo rows when the table is empty; returns how many rows it inserted. */
export async function seedServiceCatalog(warehouse: ClickHouseClient): Promise<number> {
  const result = await warehouse.query({ query: 'SELECT count() AS n FROM service_catalog', format: 'JSONEachRow' });
  const [row] = await result.json<{ n: string | number }>();
  if (Number(row?.n ?? 0) > 0) return 0;
  await warehouse.insert({ table: 'service_catalog', values: [...demoServiceCatalog], format: 'JSONEachRow', clickhouse_settings: { insert_deduplication_token: 'service_catalog/demo-seed', insert_deduplicate: 1 } });
  return demoServiceCatalog.length;
}
