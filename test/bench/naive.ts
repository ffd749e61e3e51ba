/**
 * Baseline (c): the loop people write first. KafkaJS eachBatch -> validate every message -> insert
 * the valid rows and the rejects with @clickhouse/client (JSONEachRow) -> let KafkaJS commit. No
 * Temporal, no planned ranges, no de-duplication tokens, no lineage: what the platform's
 * durability costs is the difference between this and (a).
 */
import type { ClickHouseClient } from '@clickhouse/client';
import type { Kafka } from 'kafkajs';
import { buildRows } from '../../activities/ingest/ingest.js';
import type { FetchedRecord } from '../../activities/ingest/kafka-range.js';
import type { Deadline } from './deadline.js';
import { PartitionProgress, type TopicExtent } from './kafka-util.js';
import type { RateResult } from './raw-consume.js';

/** Largest accepted event, the pipeline's default, so both reject the same records. */
const maxEventBytes = 1024 * 1024;

/** Result of the naive loop: the rate, and how many inserts it took. */
export interface NaiveResult extends RateResult {
  /** eachBatch calls that inserted something. */
  batches: number;
  /** Valid rows inserted, as counted by the loop itself. */
  inserted: number;
  /** Dead-letter rows inserted, as counted by the loop itself. */
  rejected: number;
}

/**
 * Runs the naive loop over the whole topic into `warehouse` (bound to a fresh, migrated
 * database) and returns its rate. The same row building as the platform's landing step
 * (`buildRows`: validateEvent, row shapes, dead-letter reasons) so the comparison isolates the
 * orchestration, not the per-row work.
 */
export async function measureNaive(kafka: Kafka, warehouse: ClickHouseClient, topic: string, extent: TopicExtent, groupId: string, deadline: Deadline): Promise<NaiveResult> {
  const consumer = kafka.consumer({ groupId });
  const progress = new PartitionProgress(extent);
  let firstAt: number | null = null;
  let lastAt = 0;
  let batches = 0;
  let inserted = 0;
  let rejected = 0;
  let failure: unknown = null;
  try {
    await consumer.connect();
    await consumer.subscribe({ topic, fromBeginning: true });
    const startedAt = performance.now();
    await consumer.run({
      eachBatch: async ({ batch }) => {
        const n = batch.messages.length;
        if (n === 0) return;
        firstAt ??= performance.now();
        const records: FetchedRecord[] = batch.messages.map((m) => ({ offset: Number(m.offset), key: m.key, value: m.value, timestamp: Number(m.timestamp) }));
        const first = batch.firstOffset() ?? String(records[0]?.offset ?? 0);
        const id = `naive/${topic}/${batch.partition}/${first}-${BigInt(batch.lastOffset()) + 1n}`;
        const rows = buildRows(records, { pipelineId: 'naive', topic, partition: batch.partition, batchId: id, processorVersion: 'bench-naive', maxEventBytes });
        try {
          if (rows.events.length > 0) await warehouse.insert({ table: 'events', values: rows.events, format: 'JSONEachRow' });
          if (rows.deadLetters.length > 0) await warehouse.insert({ table: 'dead_letters', values: rows.deadLetters, format: 'JSONEachRow' });
        } catch (err) {
          // A naive loop would crash here; the bench records the cause and ends the measurement.
          failure = err;
          throw err;
        }
        batches += 1;
        inserted += rows.events.length;
        rejected += rows.deadLetters.length;
        progress.saw(batch.partition, batch.lastOffset(), n);
        lastAt = performance.now();
      },
    });
    await deadline.waitFor(
      'naive consume -> insert',
      async () => {
        if (failure !== null) throw new Error(`naive loop: insert failed: ${failure instanceof Error ? failure.message : String(failure)}`);
        return progress.done() ? true : undefined;
      },
      50,
      () => `${progress.read()}/${extent.total} read`,
    );
    const seconds = (lastAt - startedAt) / 1000;
    return { events: extent.total, seconds, perSecond: extent.total / seconds, firstEventMs: firstAt === null ? null : firstAt - startedAt, batches, inserted, rejected };
  } finally {
    await consumer.disconnect();
  }
}
