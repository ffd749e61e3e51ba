/**
 * Reads exact offset ranges of Kafka partitions with KafkaJS, which has no manual assignment:
 * one long-lived consumer per topic and process, alone in its own throw-away group (so it owns
 * every partition and never rebalances with other workers), never committing, with every
 * partition paused. A fetch seeks the partition, resumes it, collects records of `[from, to)`
 * until it has them all, its byte cap or its deadline, and pauses the partition again.
 *
 * Records are immutable per offset, so whichever fetch response delivers an offset delivers the
 * right record; the collector only has to keep offsets increasing and inside the range. Offsets of
 * the range with no record (retention, compaction, transaction markers) are skipped, and the
 * caller sees them as `missing`.
 */
import { randomUUID } from 'node:crypto';
import type { Consumer, EachBatchPayload, Kafka, KafkaMessage } from 'kafkajs';
import { RangeIncompleteError, RangeReadError } from '../errors.js';

/** One record read from a partition. */
export interface FetchedRecord {
  offset: number;
  key: Buffer | null;
  value: Buffer | null;
  /** Kafka record timestamp, epoch milliseconds. */
  timestamp: number;
  /** Record headers (contract subject/version may travel here). */
  headers?: KafkaMessage['headers'];
}

/** What one fetch returns: records of `[from, next)` in offset order. */
export interface FetchResult {
  records: FetchedRecord[];
  /** First offset not covered by this result; `to` when the whole range was read. */
  next: number;
  /** Sum of key and value sizes of `records`. */
  bytes: number;
}

/** Options of {@link KafkaRangeFetcher.fetch}. */
export interface FetchOptions {
  /** Epoch ms after which an incomplete fetch fails with RangeIncompleteError. */
  deadline: number;
  /**
   * Byte cap of one result: once reached (and at least one record is held) the fetch returns
   * early with `next < to`. Keeps memory bounded whatever the range.
   */
  maxBytes: number;
  /** Aborts the wait (activity cancellation). */
  signal?: AbortSignal;
}

/** Options of {@link KafkaRangeFetcher}. */
export interface KafkaRangeFetcherOptions {
  /** Prefix of the private consumer groups. @default "streamwarden-range" */
  groupPrefix?: string;
  /** Longest wait of one broker fetch, ms. @default 200 */
  maxWaitTimeInMs?: number;
  /** Per-partition fetch size, bytes. @default 1048576 */
  maxBytesPerPartition?: number;
  log?: (line: string) => void;
}

interface ActiveRange {
  from: number;
  to: number;
  next: number;
  maxBytes: number;
  bytes: number;
  records: FetchedRecord[];
  done: () => void;
  /** Ends the fetch with an error (consumer crash, undecodable batch). */
  fail: (error: Error) => void;
}

function recordSize(m: KafkaMessage): number {
  return (m.key?.byteLength ?? 0) + (m.value?.byteLength ?? 0);
}

/** One topic's consumer and the ranges currently being collected on it. */
class TopicReader {
  readonly consumer: Consumer;
  readonly ready: Promise<void>;
  readonly active = new Map<number, ActiveRange>();
  /** Set when KafkaJS gave up on the consumer (a crash it will not restart from). */
  dead = false;
  /** Serialises fetches of the same partition. */
  readonly locks = new Map<number, Promise<void>>();

  constructor(
    kafka: Kafka,
    readonly topic: string,
    options: Required<Omit<KafkaRangeFetcherOptions, 'log'>>,
  ) {
    this.consumer = kafka.consumer({
      groupId: `${options.groupPrefix}-${randomUUID()}`,
      maxWaitTimeInMs: options.maxWaitTimeInMs,
      maxBytesPerPartition: options.maxBytesPerPartition,
      allowAutoTopicCreation: false,
      sessionTimeout: 30_000,
      heartbeatInterval: 3_000,
      // Never restarted in place after a crash: a restart re-joins the same group, whose member
      // from before a broker restart the coordinator keeps until its 30 s session expires, so
      // landing resumed ~30 s after Kafka was back (test/faults/kafka-outage.test.ts). A crashed
      // reader is marked dead and the next fetch replaces it with a consumer in a new group.
      retry: { retries: 5, initialRetryTime: 200, maxRetryTime: 2000, restartOnFailure: () => Promise.resolve(false) },
    });
    this.consumer.on(this.consumer.events.START_BATCH_PROCESS, (e) => this.onFilteredBatch(e.payload));
    // A crash (broker gone, a batch KafkaJS cannot decode) ends every fetch in flight with that
    // error at once, instead of leaving it to its deadline; the reader is replaced on the next
    // fetch (restartOnFailure is off).
    this.consumer.on(this.consumer.events.CRASH, (e) => {
      if (!e.payload.restart) this.dead = true;
      const error = e.payload.error;
      for (const [partition, range] of [...this.active]) {
        this.active.delete(partition);
        range.fail(new RangeReadError(this.topic, partition, range.next, error));
      }
    });
    // Emitted inside run() before the first fetch, and again after any rebalance: park every
    // assigned partition that no fetch is waiting on.
    this.consumer.on(this.consumer.events.GROUP_JOIN, (e) => {
      const assigned = e.payload.memberAssignment[this.topic] ?? [];
      const idle = assigned.filter((p) => !this.active.has(p));
      if (idle.length > 0) this.safely(() => this.consumer.pause([{ topic: this.topic, partitions: idle }]));
    });
    this.ready = this.start();
  }

  private async start(): Promise<void> {
    await this.consumer.connect();
    await this.consumer.subscribe({ topic: this.topic, fromBeginning: true });
    await this.consumer.run({
      // Nothing is ever committed, but the in-memory position must advance past each batch;
      // otherwise the next fetch returns the same batch again and the range stalls.
      autoCommit: false,
      eachBatchAutoResolve: true,
      eachBatch: async (payload) => {
        this.onBatch(payload);
        return Promise.resolve();
      },
    });
  }

  /**
   * Runs a consumer call from a timer or an event handler. KafkaJS throws from seek/pause/resume
   * once a crashed consumer has disconnected; thrown there, the error would be uncaught and end
   * the worker process. The crash itself is reported through the CRASH handler.
   */
  safely(call: () => void): boolean {
    try {
      call();
      return true;
    } catch {
      return false;
    }
  }

  private onBatch({ batch }: EachBatchPayload): void {
    const range = this.active.get(batch.partition);
    if (!range) {
      this.safely(() => this.consumer.pause([{ topic: this.topic, partitions: [batch.partition] }]));
      return;
    }
    let stoppedEarly = false;
    for (const m of batch.messages) {
      const offset = Number(m.offset);
      if (offset < range.next) continue;
      if (offset >= range.to) {
        range.next = range.to;
        break;
      }
      const size = recordSize(m);
      if (range.records.length > 0 && range.bytes + size > range.maxBytes) {
        range.next = offset;
        stoppedEarly = true;
        break;
      }
      range.records.push({ offset, key: m.key, value: m.value, timestamp: Number(m.timestamp), headers: m.headers });
      range.bytes += size;
      range.next = offset + 1;
    }
    if (!stoppedEarly) {
      // Trailing control records or compacted offsets still count as covered.
      const last = Number(batch.lastOffset());
      if (Number.isFinite(last) && last + 1 > range.next) range.next = Math.min(last + 1, range.to);
    }
    if (stoppedEarly || range.next >= range.to) this.finish(batch.partition, range);
  }

  /** Batches made only of control records / aborted messages never reach eachBatch. */
  private onFilteredBatch(payload: { topic: string; partition: number; batchSize: number; lastOffset: string }): void {
    if (payload.topic !== this.topic || payload.batchSize !== 0) return;
    const range = this.active.get(payload.partition);
    if (!range) return;
    const last = Number(payload.lastOffset);
    if (Number.isFinite(last) && last + 1 > range.next) range.next = Math.min(last + 1, range.to);
    if (range.next >= range.to) this.finish(payload.partition, range);
  }

  finish(partition: number, range: ActiveRange): void {
    if (this.active.get(partition) !== range) return;
    this.active.delete(partition);
    this.safely(() => this.consumer.pause([{ topic: this.topic, partitions: [partition] }]));
    range.done();
  }
}

/**
 * Range reads over long-lived consumers, one per topic. Create one per worker process; call
 * {@link close} at shutdown.
 */
export class KafkaRangeFetcher {
  private readonly readers = new Map<string, TopicReader>();
  private readonly options: Required<Omit<KafkaRangeFetcherOptions, 'log'>>;
  private readonly log: (line: string) => void;

  constructor(
    private readonly kafka: Kafka,
    options: KafkaRangeFetcherOptions = {},
  ) {
    this.options = {
      groupPrefix: options.groupPrefix ?? 'streamwarden-range',
      maxWaitTimeInMs: options.maxWaitTimeInMs ?? 200,
      maxBytesPerPartition: options.maxBytesPerPartition ?? 1024 * 1024,
    };
    this.log = options.log ?? (() => undefined);
  }

  private async reader(topic: string): Promise<TopicReader> {
    let reader = this.readers.get(topic);
    if (reader?.dead) {
      // Replace a consumer KafkaJS will not restart; fetches in flight on it time out and retry.
      this.log(`range consumer for ${topic} crashed for good, replacing it`);
      this.readers.delete(topic);
      void reader.consumer.disconnect().catch(() => undefined);
      reader = undefined;
    }
    if (!reader) {
      reader = new TopicReader(this.kafka, topic, this.options);
      this.readers.set(topic, reader);
      try {
        await reader.ready;
      } catch (err) {
        this.readers.delete(topic);
        await reader.consumer.disconnect().catch(() => undefined);
        throw err;
      }
    }
    await reader.ready;
    return reader;
  }

  /**
   * Reads records of `[from, to)` from one partition: all of them, or fewer when the byte cap is
   * hit (then `next < to` and the caller fetches again from `next`). Throws RangeIncompleteError
   * at the deadline.
   */
  async fetch(topic: string, partition: number, from: number, to: number, options: FetchOptions): Promise<FetchResult> {
    if (to <= from) return { records: [], next: from, bytes: 0 };
    const reader = await this.reader(topic);
    const previous = reader.locks.get(partition) ?? Promise.resolve();
    let release!: () => void;
    const mine = new Promise<void>((resolve) => (release = resolve));
    const chained = previous.then(() => mine);
    reader.locks.set(partition, chained);
    await previous;
    try {
      return await this.collect(reader, partition, from, to, options);
    } finally {
      release();
      if (reader.locks.get(partition) === chained) reader.locks.delete(partition);
    }
  }

  private async collect(reader: TopicReader, partition: number, from: number, to: number, options: FetchOptions): Promise<FetchResult> {
    let timer: NodeJS.Timeout | undefined;
    let onAbort: (() => void) | undefined;
    const range: ActiveRange = { from, to, next: from, maxBytes: options.maxBytes, bytes: 0, records: [], done: () => undefined, fail: () => undefined };
    let failure: Error | null = null;
    const finished = new Promise<'done' | 'deadline' | 'aborted' | 'failed'>((resolve) => {
      range.done = () => resolve('done');
      range.fail = (error) => {
        failure = error;
        resolve('failed');
      };
      timer = setTimeout(() => resolve('deadline'), Math.max(0, options.deadline - Date.now()));
      onAbort = () => resolve('aborted');
      options.signal?.addEventListener('abort', onAbort, { once: true });
    });
    reader.active.set(partition, range);
    // Insurance against a seek lost in a consumer restart or rebalance: when nothing arrives for
    // a while, seek again from where the range stands (records are filtered by offset anyway).
    let seen = range.next;
    const watchdog = setInterval(() => {
      if (range.next === seen && reader.active.get(partition) === range) {
        this.log(`range ${reader.topic}[${partition}] idle at ${range.next}, seeking again`);
        reader.safely(() => {
          reader.consumer.seek({ topic: reader.topic, partition, offset: String(range.next) });
          reader.consumer.resume([{ topic: reader.topic, partitions: [partition] }]);
        });
      }
      seen = range.next;
    }, 3_000);
    try {
      try {
        reader.consumer.seek({ topic: reader.topic, partition, offset: String(from) });
        reader.consumer.resume([{ topic: reader.topic, partitions: [partition] }]);
      } catch (err) {
        // KafkaJS refuses seek while a crashed consumer restarts ("consumer#run must be called
        // first"): a read failure of this range like any other, not a bare library error.
        throw new RangeReadError(reader.topic, partition, from, err);
      }
      const outcome = await finished;
      if (outcome === 'aborted') throw options.signal?.reason ?? new Error('fetch aborted');
      if (outcome === 'failed') throw failure ?? new Error('fetch failed');
      if (outcome === 'deadline' && range.records.length === 0 && range.next < to) {
        throw new RangeIncompleteError(reader.topic, partition, from, to, range.next);
      }
      // At the deadline, a partial result is still progress: the caller continues from `next`.
      return { records: range.records, next: range.next, bytes: range.bytes };
    } finally {
      clearInterval(watchdog);
      clearTimeout(timer);
      if (onAbort) options.signal?.removeEventListener('abort', onAbort);
      if (reader.active.get(partition) === range) reader.active.delete(partition);
      reader.safely(() => reader.consumer.pause([{ topic: reader.topic, partitions: [partition] }]));
    }
  }

  /** Disconnects every consumer. */
  async close(): Promise<void> {
    const readers = [...this.readers.values()];
    this.readers.clear();
    await Promise.allSettled(readers.map((r) => r.consumer.disconnect()));
  }
}
