/**
 * A snapshot of a pipeline's progress as people want to see it: rows landed and dead-lettered
 * (ClickHouse), consumer lag (Kafka high watermarks minus the offsets the pipeline committed to its
 * consumer group) and open alerts (Temporal visibility). Used by `npm start`'s live line and
 * `platform status`.
 */
import type { ClickHouseClient } from '@clickhouse/client';
import type { Client } from '@temporalio/client';
import type { Admin } from 'kafkajs';
import { alertWorkflowType } from '../schemas/alerting/alert.js';

/** One reading of a pipeline's progress. */
export interface PipelineSnapshot {
  /** Rows in `events` for the pipeline. */
  landed: number;
  /** Rows in `dead_letters` for the pipeline. */
  deadLettered: number;
  /** Sum over partitions of high watermark minus committed offset; null when the topic is unknown. */
  lag: number | null;
  /** Per-partition lag. */
  lagByPartition: Record<number, number>;
  /** Running alert workflows of this pipeline (incidents not resolved). */
  openAlerts: number;
  /** Reading time, epoch ms. */
  at: number;
}

/** Where to read a pipeline's progress from. */
export interface SnapshotSources {
  warehouse: ClickHouseClient;
  admin: Admin;
  temporal: Client;
  pipelineId: string;
  topic: string;
  consumerGroup: string;
}

/** Takes one snapshot; each source is read independently so one failing source shows as missing, not as an error. */
export async function pipelineSnapshot(src: SnapshotSources): Promise<PipelineSnapshot> {
  const [counts, lag, openAlerts] = await Promise.all([
    src.warehouse
      .query({
        query: `SELECT
                  (SELECT count() FROM events WHERE pipeline = {p:String}) AS landed,
                  (SELECT count() FROM dead_letters WHERE pipeline = {p:String}) AS dead`,
        query_params: { p: src.pipelineId },
        format: 'JSONEachRow',
      })
      .then((r) => r.json<{ landed: string; dead: string }>())
      .then((rows) => ({ landed: Number(rows[0]?.landed ?? 0), dead: Number(rows[0]?.dead ?? 0) })),
    consumerLag(src.admin, src.topic, src.consumerGroup).catch(() => null),
    src.temporal.workflow
      // The pipeline id is validated by its schema (a-z, 0-9, - and _), so it is safe inside the visibility query.
      .count(`WorkflowType = '${alertWorkflowType}' AND ExecutionStatus = 'Running' AND Pipeline = '${src.pipelineId}'`)
      .then((c) => c.count)
      .catch(() => 0),
  ]);
  return {
    landed: counts.landed,
    deadLettered: counts.dead,
    lag: lag ? Object.values(lag).reduce((a, b) => a + b, 0) : null,
    lagByPartition: lag ?? {},
    openAlerts,
    at: Date.now(),
  };
}

/** High watermark minus committed offset per partition (an uncommitted partition counts from its low watermark). */
export async function consumerLag(admin: Admin, topic: string, groupId: string): Promise<Record<number, number>> {
  const [watermarks, committed] = await Promise.all([admin.fetchTopicOffsets(topic), admin.fetchOffsets({ groupId, topics: [topic] })]);
  const done = new Map<number, number>();
  for (const p of committed[0]?.partitions ?? []) done.set(p.partition, Number(p.offset));
  const lag: Record<number, number> = {};
  for (const w of watermarks) {
    const high = Number(w.high);
    const at = done.get(w.partition) ?? -1;
    lag[w.partition] = Math.max(0, high - (at >= 0 ? at : Number(w.low)));
  }
  return lag;
}
