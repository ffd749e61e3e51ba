/**
 * (u) The cost of the cross-batch duplicate-id check: the real `landBatch` activity, in this
 * process, lands the same offset ranges of the bench topic into three fresh databases: the check
 * off (`duplicateIdWindowMinutes: 0`), the old lookup of `events` (`duplicateIdCheck: 'lookup'`)
 * and the claims check (`event_id_claims`, the default), both with the default 24 h window. The
 * order of the three rotates per batch, so broker caching and machine load fall on all sides
 * alike; the result is the ratios of the rates from the same run. A measurement, not a test.
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

/** The three ways (u) lands the same ranges. */
export const duplicateIdSides = ['off', 'lookup', 'claims'] as const;
/** One of {@link duplicateIdSides}. */
export type DuplicateIdSide = (typeof duplicateIdSides)[number];

/** What (u) measured. */
export interface DuplicateIdBench {
  /** Offsets landed into each database. */
  events: number;
  batches: number;
  /** Per side: seconds spent in landBatch (sums over the batches) and the rate, offsets/s. */
  seconds: Record<DuplicateIdSide, number>;
  perSecond: Record<DuplicateIdSide, number>;
  /** Rate ratios: 1.0 means the check costs nothing. */
  lookupOverOff: number;
  claimsOverOff: number;
  claimsOverLookup: number;
  /** Rows in `events` of the claims database at the end (the lookup's table size). */
  claimsRows: number;
  /** duplicate_id dead letters found across batches per checked side (the generator writes unique ids: 0 expected). */
  repeats: { lookup: number; claims: number };
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

/** Lands the same ranges with the duplicate-id check off, by lookup and by claims; see the module comment. */
export async function measureDuplicateIdCheck(
  kafka: Kafka,
  warehouses: Record<DuplicateIdSide, ClickHouseClient>,
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
    const acts = {
      off: createIngestActivities({ kafka, warehouse: warehouses.off, processorVersion: 'bench', resources }),
      lookup: createIngestActivities({ kafka, warehouse: warehouses.lookup, processorVersion: 'bench', resources, duplicateIdCheck: 'lookup' }),
      claims: createIngestActivities({ kafka, warehouse: warehouses.claims, processorVersion: 'bench', resources, duplicateIdCheck: 'claims' }),
    };
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
    const ms: Record<DuplicateIdSide, number> = { off: 0, lookup: 0, claims: 0 };
    const repeats = { lookup: 0, claims: 0 };
    let events = 0;
    const land = async (side: DuplicateIdSide, r: (typeof ranges)[number]): Promise<{ ms: number; result: LandBatchResult }> => {
      const began = performance.now();
      const plan = planRange(pipelineId, topic, r.partition, r.from, r.to, 0, stepEvents);
      const window = side === 'off' ? 0 : defaultDuplicateIdWindowMinutes;
      const result = (await new MockActivityEnvironment().run(acts[side].landBatch, { plan, maxEventBytes: 1 << 20, duplicateIdWindowMinutes: window })) as LandBatchResult;
      return { ms: performance.now() - began, result };
    };
    for (const [i, r] of ranges.entries()) {
      deadline.check('(u) duplicate-id check');
      // Rotate which side goes first (and second) batch by batch.
      const order = duplicateIdSides.map((_, k) => duplicateIdSides[(i + k) % duplicateIdSides.length]!);
      for (const side of order) {
        const landed = await land(side, r);
        ms[side] += landed.ms;
        if (side !== 'off') repeats[side] += landed.result.rejectCodes.duplicate_id ?? 0;
      }
      events += r.to - r.from;
    }
    const counts = await landedCounts(warehouses.claims);
    const rate = (side: DuplicateIdSide): number => events / Math.max(1e-9, ms[side] / 1000);
    const perSecond = { off: rate('off'), lookup: rate('lookup'), claims: rate('claims') };
    return {
      events,
      batches: ranges.length,
      seconds: { off: ms.off / 1000, lookup: ms.lookup / 1000, claims: ms.claims / 1000 },
      perSecond,
      lookupOverOff: perSecond.lookup / perSecond.off,
      claimsOverOff: perSecond.claims / perSecond.off,
      claimsOverLookup: perSecond.claims / perSecond.lookup,
      claimsRows: counts.landed,
      repeats,
    };
  } finally {
    await resources.close();
  }
}

/** One line for the printed report. */
export function formatDuplicateIdBench(u: DuplicateIdBench): string {
  const int = (n: number): string => Math.round(n).toLocaleString('en-US');
  const side = (name: DuplicateIdSide): string => `${name} ${int(u.perSecond[name])}/s (${u.seconds[name].toFixed(2)} s)`;
  return (
    `(u) landBatch with the duplicate-id check off / lookup / claims (24 h window), same ranges, rotating order: ${int(u.events)} offsets in ${u.batches} batches; ` +
    `${side('off')}, ${side('lookup')}, ${side('claims')}; lookup/off ${u.lookupOverOff.toFixed(3)}, claims/off ${u.claimsOverOff.toFixed(3)}, claims/lookup ${u.claimsOverLookup.toFixed(3)}; ` +
    `${int(u.claimsRows)} rows in events at the end, repeats found: lookup ${u.repeats.lookup}, claims ${u.repeats.claims}`
  );
}
