/**
 * The worker's cache of enrichment reference data: one snapshot per enrichment stage (a ClickHouse
 * table or dictionary, or a JSON Lines file), loaded on first use and reloaded when it is older than
 * the stage's `refreshMs`. Stages read the snapshot synchronously; a reload that fails keeps the
 * previous snapshot (and logs), so a reference table being rebuilt does not stop a pipeline; with no
 * snapshot at all the failure propagates and the batch is retried.
 */
import { readFile } from 'node:fs/promises';
import type { ClickHouseClient } from '@clickhouse/client';
import type { EnrichSpec, ReferenceRow, ReferenceSource } from '../../schemas/processing/stage.js';
import { silentLogger, type Logger } from '../logger.js';

interface Snapshot {
  readonly rows: ReadonlyMap<string, ReferenceRow>;
  readonly loadedAt: number;
}

/** Dependencies of {@link createReferenceCache}. */
export interface ReferenceCacheDeps {
  readonly warehouse: ClickHouseClient;
  readonly log?: Logger;
  /** Clock, epoch ms. @default Date.now */
  readonly now?: () => number;
}

/** The cache; `get` returns a fresh-enough snapshot for a stage's spec. */
export type ReferenceCache = ReturnType<typeof createReferenceCache>;

function sourceId(source: ReferenceSource): string {
  return JSON.stringify(source);
}

/** Builds a cache; one per worker process. */
export function createReferenceCache(deps: ReferenceCacheDeps) {
  const log = deps.log ?? silentLogger;
  const now = deps.now ?? Date.now;
  const snapshots = new Map<string, Snapshot>();
  const loading = new Map<string, Promise<Snapshot>>();

  async function load(source: ReferenceSource): Promise<Snapshot> {
    const rows = new Map<string, ReferenceRow>();
    if (source.kind === 'clickhouse') {
      const params: Record<string, string> = { table: source.table, key: source.keyColumn };
      source.columns.forEach((c, i) => (params[`c${i}`] = c));
      const cols = source.columns.map((_, i) => `{c${i}:Identifier}`).join(', ');
      const result = await deps.warehouse.query({
        query: `SELECT toString({key:Identifier}) AS __key${cols ? `, ${cols}` : ''} FROM {table:Identifier}`,
        query_params: params,
        format: 'JSONEachRow',
        // FINAL where the engine has it: the latest row of a ReplacingMergeTree key wins.
        clickhouse_settings: { final: 1 },
      });
      for (const r of await result.json<Record<string, unknown>>()) {
        const { __key, ...rest } = r;
        rows.set(String(__key), rest);
      }
    } else {
      const text = await readFile(source.path, 'utf8');
      for (const [i, line] of text.split('\n').entries()) {
        if (line.trim() === '') continue;
        let r: Record<string, unknown>;
        try {
          r = JSON.parse(line) as Record<string, unknown>;
        } catch {
          throw new Error(`${source.path}:${i + 1}: expected one JSON object per line`);
        }
        rows.set(String(r[source.keyColumn]), Object.fromEntries(source.columns.map((c) => [c, r[c]])));
      }
    }
    return { rows, loadedAt: now() };
  }

  return {
    /** A snapshot no older than `spec.refreshMs` (or the previous one if a reload fails). */
    async get(spec: EnrichSpec): Promise<ReadonlyMap<string, ReferenceRow>> {
      const id = sourceId(spec.source);
      const current = snapshots.get(id);
      if (current && now() - current.loadedAt < spec.refreshMs) return current.rows;
      let pending = loading.get(id);
      if (!pending) {
        pending = load(spec.source).finally(() => loading.delete(id));
        loading.set(id, pending);
      }
      try {
        const next = await pending;
        snapshots.set(id, next);
        return next.rows;
      } catch (err) {
        if (!current) throw err;
        log.warn('reference data reload failed; using the previous snapshot', { source: id, error: (err as Error).message });
        return current.rows;
      }
    },
  };
}
