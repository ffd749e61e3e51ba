/**
 * (u) The cost of the cross-batch duplicate-id check: the real `landBatch` activity, in this
 * process, lands the same offset ranges of the bench topic into two fresh databases, one with the
 * check off (`duplicateIdWindowMinutes: 0`) and one with the default 24 h window. Batches
 * alternate which database goes first, so broker caching and machine load fall on both sides
 * alike; the result is the ratio of the two rates from the same run. A measurement, not a test.
 */
import type { ClickHouseClient } from '@clickhouse/client';
import { MockActivityEnvironment } from '@temporalio/testing';
import type { Kafka } from 'kafkajs';
import { createIngestActivities, KafkaResources, type LandBatchResult } from '../../activities/ingest/ingest.js';
import { defaultDuplicateIdWindowMinutes } from '../../schemas/ingest/pipeline.js';
import { planRange } from '../../schemas/ingest/batch-plan.js';
import type { Deadline } from './deadline.js';
import type { TopicExtent } from './kafka-util.js';
import { landedCounts } from './warehouse-util.js';

/** What (u) measured. */
export interface DuplicateIdBench {
  /** Offsets landed into each database. */
  events: number;
  batches: number;
  /** Seconds spent in landBatch with the check off / on (sums over the batches). */
  offSeconds: number;
  onSeconds: number;
  offPerSecond: number;
  onPerSecond: number;
  /** on / off rate: 1.0 means the check costs nothing. */
  onOverOff: number;
  /** Rows in `events` of the checked database at the end (the lookup's table size). */
  onRows: number;
  /** duplicate_id dead letters found across batches (the generator writes unique ids: 0 expected). */
  repeats: number;
}

/** Options of {@link measureDuplicateIdCheck}. */
export interface DuplicateIdBenchOptions {
  /** At most this many offsets in total, taken from the start of each partition. @default 30000 */
  maxEvents?: number;
  /** Offsets per batch. @default 2000 (the pipeline's default batchMaxEvents) */
  batchEvents?: number;
  /** Offsets per landing step. @default 500 */
  stepEvents?: number;
}

/** Lands the same ranges with the duplicate-id check off and on; see the module comment. */
export async function measureDuplicateIdCheck(
  kafka: Kafka,
  off: ClickHouseClient,
  on: ClickHouseClient,
  topic: string,
  extent: TopicExtent,
  deadline: Deadline,
  options: DuplicateIdBenchOptions = {},
): Promise<DuplicateIdBench> {
  const maxEvents = options.maxEvents ?? 30_000;
  const batchEvents = options.batchEvents ?? 2000;
  const stepEvents = options.stepEvents ?? 500;
  const resources = new KafkaResources(kafka);
  const pipelineId = 'bench-dup';
  try {
    const actsOff = createIngestActivities({ kafka, warehouse: off, processorVersion: 'bench', resources });
    const actsOn = createIngestActivities({ kafka, warehouse: on, processorVersion: 'bench', resources });
    const partitions = [...extent.high.keys()].sort((a, b) => a - b);
    const share = Math.ceil(maxEvents / Math.max(1, partitions.length));
    const ranges: { partition: number; from: number; to: number }[] = [];
    for (const partition of partitions) {
      const low = Number(extent.low.get(partition) ?? 0n);
      const high = Math.min(Number(extent.high.get(partition) ?? 0n), low + share);
      for (let from = low; from < high; from += batchEvents) ranges.push({ partition, from, to: Math.min(high, from + batchEvents) });
    }
    // Round-robin over partitions, as the pipeline's partition workflows interleave.
    ranges.sort((a, b) => a.from - b.from || a.partition - b.partition);
    let offMs = 0;
    let onMs = 0;
    let events = 0;
    let repeats = 0;
    const land = async (acts: typeof actsOff, window: number, r: (typeof ranges)[number]): Promise<{ ms: number; result: LandBatchResult }> => {
      const began = performance.now();
      const plan = planRange(pipelineId, topic, r.partition, r.from, r.to, 0, stepEvents);
      const result = (await new MockActivityEnvironment().run(acts.landBatch, { plan, maxEventBytes: 1 << 20, duplicateIdWindowMinutes: window })) as LandBatchResult;
      return { ms: performance.now() - began, result };
    };
    for (const [i, r] of ranges.entries()) {
      deadline.check('(u) duplicate-id check');
      const order = i % 2 === 0 ? (['off', 'on'] as const) : (['on', 'off'] as const);
      for (const side of order) {
        const { ms, result } = side === 'off' ? await land(actsOff, 0, r) : await land(actsOn, defaultDuplicateIdWindowMinutes, r);
        if (side === 'off') offMs += ms;
        else {
          onMs += ms;
          repeats += result.rejectCodes.duplicate_id ?? 0;
        }
      }
      events += r.to - r.from;
    }
    const counts = await landedCounts(on);
    const offPerSecond = events / Math.max(1e-9, offMs / 1000);
    const onPerSecond = events / Math.max(1e-9, onMs / 1000);
    return { events, batches: ranges.length, offSeconds: offMs / 1000, onSeconds: onMs / 1000, offPerSecond, onPerSecond, onOverOff: onPerSecond / offPerSecond, onRows: counts.landed, repeats };
  } finally {
    await resources.close();
  }
}

/** One line for the printed report. */
export function formatDuplicateIdBench(u: DuplicateIdBench): string {
  const int = (n: number): string => Math.round(n).toLocaleString('en-US');
  return `(u) landBatch with the duplicate-id check off vs on (24 h window), same ranges, alternating: ${int(u.events)} offsets in ${u.batches} batches; off ${int(u.offPerSecond)}/s (${u.offSeconds.toFixed(2)} s), on ${int(u.onPerSecond)}/s (${u.onSeconds.toFixed(2)} s); on/off ${u.onOverOff.toFixed(3)}; ${int(u.onRows)} rows in events at the end, ${u.repeats} repeats found`;
}
