/**
 * (r) The cost of CRC-checked reads: the two range readers of the landing path read the same
 * offset ranges of the bench topic, in this process, through one KafkaResources: the raw Fetch
 * reader (the default: every batch's CRC-32C verified, records decoded by the platform) and the
 * KafkaJS range consumer (no CRC check; only used under SASL now). Each range is read whole, in
 * byte-capped chunks as a landing step reads it; ranges rotate which reader goes first, so broker
 * caching and machine load fall on both alike. The result is the ratio of the two rates from the
 * same run, and whether both returned the same records. A measurement, not a test.
 *
 * `npm run bench:readers` runs it alone on a fresh topic (`--events N`, default 100000;
 * `--partitions N`, default 3; `--deadline-min M`, default 10); `npm run bench` runs it as (r)
 * unless `--skip readers`.
 */
import { createHash } from 'node:crypto';
import { parseArgs } from 'node:util';
import type { Kafka } from 'kafkajs';
import { KafkaResources } from '../../activities/ingest/ingest.js';
import type { FetchedRecord } from '../../activities/ingest/kafka-range.js';
import { ensureStack } from '../../infra/local/stack.js';
import { loadConfig } from '../../schemas/config.js';
import { createKafka } from '../../workers/connections.js';
import { Deadline } from './deadline.js';
import { topicExtent, type TopicExtent } from './kafka-util.js';
import { produceEvents } from './produce.js';

/** What (r) measured. */
export interface RangeReaderBench {
  /** Offsets read by each reader. */
  offsets: number;
  ranges: number;
  /** Records each reader returned (the same when `sameRecords`). */
  records: number;
  /** Seconds spent reading, summed over the ranges. */
  rawSeconds: number;
  kafkajsSeconds: number;
  rawPerSecond: number;
  kafkajsPerSecond: number;
  /** raw / KafkaJS rate: above 1.0 the CRC-checked raw reader is faster. */
  rawOverKafkajs: number;
  /** Batches the raw reader found undecodable (0 expected on the bench topic). */
  poisonBatches: number;
  /** Both readers returned the same offsets, keys, values and timestamps for every range. */
  sameRecords: boolean;
}

/** Options of {@link measureRangeReaders}. */
export interface RangeReaderBenchOptions {
  /** At most this many offsets in total, from the start of each partition. @default 60000 */
  maxEvents?: number;
  /** Offsets per range (a landing step). @default 2000 */
  rangeEvents?: number;
  /** Byte cap of one read, as the landing's chunkMaxBytes. @default 8 MiB */
  chunkMaxBytes?: number;
}

function digest(records: readonly FetchedRecord[]): string {
  const hash = createHash('sha256');
  for (const r of records) {
    hash.update(`${r.offset}/${r.timestamp}/`);
    hash.update(r.key ?? Buffer.alloc(0));
    hash.update('/');
    hash.update(r.value ?? Buffer.alloc(0));
  }
  return hash.digest('hex');
}

/** Reads the same ranges with both readers, alternating which goes first; see the module comment. */
export async function measureRangeReaders(kafka: Kafka, topic: string, extent: TopicExtent, deadline: Deadline, options: RangeReaderBenchOptions = {}): Promise<RangeReaderBench> {
  const maxEvents = options.maxEvents ?? 60_000;
  const rangeEvents = options.rangeEvents ?? 2000;
  const chunkMaxBytes = options.chunkMaxBytes ?? 8 * 1024 * 1024;
  const resources = new KafkaResources(kafka);
  try {
    const partitions = [...extent.high.keys()].sort((a, b) => a - b);
    const share = Math.ceil(maxEvents / Math.max(1, partitions.length));
    const ranges: { partition: number; from: number; to: number }[] = [];
    for (const partition of partitions) {
      const low = Number(extent.low.get(partition) ?? 0n);
      const high = Math.min(Number(extent.high.get(partition) ?? 0n), low + share);
      for (let from = low; from < high; from += rangeEvents) ranges.push({ partition, from, to: Math.min(high, from + rangeEvents) });
    }
    ranges.sort((a, b) => a.from - b.from || a.partition - b.partition);
    /** Reads `[from, to)` whole with one reader, as a landing step does. */
    const readRange = async (reader: 'raw' | 'kafkajs', r: (typeof ranges)[number]): Promise<{ ms: number; records: FetchedRecord[]; poison: number }> => {
      const began = performance.now();
      const records: FetchedRecord[] = [];
      let poison = 0;
      for (let next = r.from; next < r.to; ) {
        const chunk: { records: FetchedRecord[]; next: number; poison?: unknown[] } =
          reader === 'raw'
            ? await resources.rawReader.read(topic, r.partition, next, r.to, chunkMaxBytes, { deadline: Date.now() + 60_000 })
            : await resources.fetcher.fetch(topic, r.partition, next, r.to, { deadline: Date.now() + 60_000, maxBytes: chunkMaxBytes });
        if (chunk.next <= next) throw new Error(`(r) ${reader} reader made no progress at ${topic}[${r.partition}] ${next}`);
        records.push(...chunk.records);
        poison += chunk.poison?.length ?? 0;
        next = chunk.next;
      }
      return { ms: performance.now() - began, records, poison };
    };
    // One untimed read each first: connections, the KafkaJS consumer's group join, leader lookups.
    if (ranges[0]) {
      await readRange('kafkajs', ranges[0]);
      await readRange('raw', ranges[0]);
    }
    let rawMs = 0;
    let kafkajsMs = 0;
    let offsets = 0;
    let records = 0;
    let poisonBatches = 0;
    let sameRecords = true;
    for (const [i, r] of ranges.entries()) {
      deadline.check('(r) range readers');
      const order = i % 2 === 0 ? (['raw', 'kafkajs'] as const) : (['kafkajs', 'raw'] as const);
      const seen: Partial<Record<'raw' | 'kafkajs', string>> = {};
      for (const reader of order) {
        const read = await readRange(reader, r);
        seen[reader] = digest(read.records);
        if (reader === 'raw') {
          rawMs += read.ms;
          poisonBatches += read.poison;
          records += read.records.length;
        } else kafkajsMs += read.ms;
      }
      if (seen.raw !== seen.kafkajs) sameRecords = false;
      offsets += r.to - r.from;
    }
    const rawPerSecond = offsets / Math.max(1e-9, rawMs / 1000);
    const kafkajsPerSecond = offsets / Math.max(1e-9, kafkajsMs / 1000);
    return { offsets, ranges: ranges.length, records, rawSeconds: rawMs / 1000, kafkajsSeconds: kafkajsMs / 1000, rawPerSecond, kafkajsPerSecond, rawOverKafkajs: rawPerSecond / kafkajsPerSecond, poisonBatches, sameRecords };
  } finally {
    await resources.close();
  }
}

/** One line for the printed report. */
export function formatRangeReaderBench(r: RangeReaderBench): string {
  const int = (n: number): string => Math.round(n).toLocaleString('en-US');
  return `(r) range readers on the same ranges, alternating: ${int(r.offsets)} offsets in ${r.ranges} ranges; raw CRC-checked ${int(r.rawPerSecond)}/s (${r.rawSeconds.toFixed(2)} s), KafkaJS ${int(r.kafkajsPerSecond)}/s (${r.kafkajsSeconds.toFixed(2)} s); raw/KafkaJS ${r.rawOverKafkajs.toFixed(3)}; same records: ${r.sameRecords ? 'yes' : 'NO'}; ${r.poisonBatches} undecodable batches`;
}

async function main(): Promise<number> {
  const { values } = parseArgs({ options: { events: { type: 'string' }, partitions: { type: 'string' }, 'deadline-min': { type: 'string' } }, strict: true });
  const events = Number(values.events ?? 100_000);
  const partitions = Number(values.partitions ?? 3);
  const minutes = Number(values['deadline-min'] ?? 10);
  if (![events, partitions, minutes].every((n) => Number.isInteger(n) && n > 0)) throw new Error('--events, --partitions and --deadline-min take positive whole numbers');
  const config = loadConfig();
  const deadline = new Deadline(minutes * 60_000);
  const endpoints = await ensureStack(config, { log: (line) => console.log(`[stack] ${line}`) });
  const kafka = createKafka(config, endpoints, '-bench');
  const admin = kafka.admin();
  await admin.connect();
  const topic = `bench-readers-${Date.now().toString(36)}`;
  try {
    await admin.createTopics({ topics: [{ topic, numPartitions: partitions, replicationFactor: 1 }], waitForLeaders: true });
    await produceEvents(kafka, topic, partitions, events, 0.02, deadline);
    const extent = await topicExtent(admin, topic);
    const result = await measureRangeReaders(kafka, topic, extent, deadline, { maxEvents: events });
    console.log(formatRangeReaderBench(result));
    return result.sameRecords && result.poisonBatches === 0 ? 0 : 1;
  } finally {
    await admin.deleteTopics({ topics: [topic] }).catch(() => undefined);
    await admin.disconnect();
  }
}

if (process.argv[1]?.endsWith('range-readers.ts')) {
  main().then(
    (code) => process.exit(code),
    (err: unknown) => {
      console.error(err instanceof Error ? (err.stack ?? err.message) : err);
      process.exit(1);
    },
  );
}
