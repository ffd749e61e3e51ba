/**
 * A minimal Kafka Fetch client (one request per connection, Fetch v11, the last version before
 * the flexible encoding; Kafka 4 serves v4-v17, KafkaJS 2.2 itself uses v11) that returns a
 * partition's records as raw bytes. KafkaJS does not expose a batch's bytes and decodes a whole
 * partition response at once, so when its range consumer crashes on a batch it cannot decode,
 * this client re-reads the range: {@link RawRangeReader} decodes the good batches itself and
 * reports the batches that are permanently undecodable, with their bytes, for the dead letters.
 *
 * Wire format from the Kafka protocol guide: request = size int32, api_key int16 (1),
 * api_version int16, correlation_id int32, client_id string, then the Fetch v11 body; strings
 * are int16-length, arrays int32-count, records nullable int32-length bytes.
 */
import { connect as tcpConnect, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { createRequire } from 'node:module';
import type * as KafkaJS from 'kafkajs';
import type { Admin } from 'kafkajs';
import type { FetchedRecord } from './kafka-range.js';
import { RangeIncompleteError } from '../errors.js';
import { BatchDecodeError, codecNames, controlType, decodeRecords, splitBatches, type Decompress, type RawBatch } from './kafka-record-batch.js';

/** What one raw Fetch returned for the partition. */
export interface RawPartitionFetch {
  errorCode: number;
  highWatermark: number;
  lastStableOffset: number;
  /** The partition's log start offset (-1 when the broker did not say, e.g. with an error). */
  logStartOffset: number;
  /** Aborted transactions overlapping the fetched range (read_committed). */
  abortedTransactions: { producerId: bigint; firstOffset: number }[];
  /** The partition's record batches, back to back; empty when there is nothing at the offset. */
  records: Buffer;
}

/** Where and how to reach a broker. */
export interface BrokerAddress {
  host: string;
  port: number;
  /** TLS like KafkaJS's `ssl: true`. @default false */
  ssl?: boolean;
}

/** Options of one raw fetch. */
export interface RawFetchOptions {
  /** Largest records size the broker returns for the partition (it always returns the first batch whole). */
  partitionMaxBytes: number;
  /** Socket deadline, ms. @default 15000 */
  timeoutMs?: number;
  /** @default "streamwarden-raw-fetch" */
  clientId?: string;
}

class Writer {
  private readonly parts: Buffer[] = [];
  int8(v: number): this {
    const b = Buffer.alloc(1);
    b.writeInt8(v);
    this.parts.push(b);
    return this;
  }
  int16(v: number): this {
    const b = Buffer.alloc(2);
    b.writeInt16BE(v);
    this.parts.push(b);
    return this;
  }
  int32(v: number): this {
    const b = Buffer.alloc(4);
    b.writeInt32BE(v);
    this.parts.push(b);
    return this;
  }
  int64(v: number): this {
    const b = Buffer.alloc(8);
    b.writeBigInt64BE(BigInt(v));
    this.parts.push(b);
    return this;
  }
  string(v: string): this {
    const s = Buffer.from(v, 'utf8');
    this.int16(s.length);
    this.parts.push(s);
    return this;
  }
  build(): Buffer {
    const body = Buffer.concat(this.parts);
    const size = Buffer.alloc(4);
    size.writeInt32BE(body.length);
    return Buffer.concat([size, body]);
  }
}

class Reader {
  position = 0;
  constructor(private readonly buffer: Buffer) {}
  int16(): number {
    const v = this.buffer.readInt16BE(this.position);
    this.position += 2;
    return v;
  }
  int32(): number {
    const v = this.buffer.readInt32BE(this.position);
    this.position += 4;
    return v;
  }
  int64(): bigint {
    const v = this.buffer.readBigInt64BE(this.position);
    this.position += 8;
    return v;
  }
  string(): string {
    const length = this.int16();
    const v = this.buffer.toString('utf8', this.position, this.position + length);
    this.position += Math.max(0, length);
    return v;
  }
  bytes(): Buffer {
    const length = this.int32();
    if (length < 0) return Buffer.alloc(0);
    if (this.position + length > this.buffer.length) throw new RangeError(`records of ${length} bytes exceed the response`);
    const v = this.buffer.subarray(this.position, this.position + length);
    this.position += length;
    return v;
  }
}

/** Sends one request and resolves to the response body after the correlation id. */
function roundTrip(address: BrokerAddress, request: Buffer, correlationId: number, timeoutMs: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const socket: Socket = address.ssl ? tlsConnect({ host: address.host, port: address.port, servername: address.host }) : tcpConnect({ host: address.host, port: address.port });
    const chunks: Buffer[] = [];
    let received = 0;
    let expected = -1;
    const timer = setTimeout(() => fail(new Error(`raw fetch from ${address.host}:${address.port}: no complete response within ${timeoutMs} ms`)), timeoutMs);
    function fail(err: Error): void {
      clearTimeout(timer);
      socket.destroy();
      reject(err);
    }
    socket.once(address.ssl ? 'secureConnect' : 'connect', () => socket.write(request));
    socket.on('error', (err) => fail(new Error(`raw fetch from ${address.host}:${address.port}: ${err.message}`)));
    socket.on('close', () => fail(new Error(`raw fetch from ${address.host}:${address.port}: connection closed before the response was complete`)));
    socket.on('data', (chunk: Buffer) => {
      chunks.push(chunk);
      received += chunk.length;
      if (expected < 0 && received >= 4) expected = Buffer.concat(chunks).readInt32BE(0) + 4;
      if (expected >= 0 && received >= expected) {
        clearTimeout(timer);
        socket.removeAllListeners('close');
        socket.destroy();
        const whole = Buffer.concat(chunks, received);
        if (whole.readInt32BE(4) !== correlationId) reject(new Error(`raw fetch: response for correlation id ${whole.readInt32BE(4)}, expected ${correlationId}`));
        else resolve(whole.subarray(8, expected));
      }
    });
  });
}

let nextCorrelationId = 1;

/**
 * One Fetch v11 request for one partition at `offset`, read_committed (isolation level 1).
 * Throws on a connection failure or a malformed response; a partition error is returned as
 * `errorCode` (Kafka's error codes: 1 offset out of range, 6 not leader, ...).
 */
export async function rawFetch(address: BrokerAddress, topic: string, partition: number, offset: number, options: RawFetchOptions): Promise<RawPartitionFetch> {
  const correlationId = nextCorrelationId++ & 0x7fffffff;
  const request = new Writer()
    .int16(1) // api key: Fetch
    .int16(11)
    .int32(correlationId)
    .string(options.clientId ?? 'streamwarden-raw-fetch')
    .int32(-1) // replica id: a consumer
    .int32(100) // max wait ms
    .int32(1) // min bytes
    .int32(options.partitionMaxBytes)
    .int8(1) // read_committed
    .int32(0) // session id: no fetch session
    .int32(-1) // session epoch: full fetch
    .int32(1)
    .string(topic)
    .int32(1)
    .int32(partition)
    .int32(-1) // current leader epoch: unknown
    .int64(offset)
    .int64(-1) // log start offset: consumers send -1
    .int32(options.partitionMaxBytes)
    .int32(0) // forgotten topics
    .string('') // rack id
    .build();
  const body = new Reader(await roundTrip(address, request, correlationId, options.timeoutMs ?? 15_000));
  body.int32(); // throttle ms
  const topError = body.int16();
  body.int32(); // session id
  const topics = body.int32();
  for (let t = 0; t < topics; t++) {
    const name = body.string();
    const partitions = body.int32();
    for (let p = 0; p < partitions; p++) {
      const index = body.int32();
      const errorCode = body.int16();
      const highWatermark = Number(body.int64());
      const lastStableOffset = Number(body.int64());
      const logStartOffset = Number(body.int64());
      const abortedCount = body.int32();
      const abortedTransactions: RawPartitionFetch['abortedTransactions'] = [];
      for (let a = 0; a < abortedCount; a++) abortedTransactions.push({ producerId: body.int64(), firstOffset: Number(body.int64()) });
      body.int32(); // preferred read replica
      const records = body.bytes();
      if (name === topic && index === partition) return { errorCode: errorCode || topError, highWatermark, lastStableOffset, logStartOffset, abortedTransactions, records };
    }
  }
  throw new Error(`raw fetch: the response has no partition ${topic}[${partition}] (error code ${topError})`);
}

/** A record batch that cannot be read, however often it is fetched. */
export interface PoisonBatch {
  /** The offsets of the range it covers: `[from, to)`, inside the requested range. */
  from: number;
  to: number;
  baseOffset: number;
  /** The batch's last offset as its header claims (unreliable when `cause` is `crc_mismatch`). */
  lastOffset: number;
  recordCount: number;
  codec: string;
  cause: 'crc_mismatch' | 'undecodable_records';
  message: string;
  /** The whole stored batch, header included. */
  bytes: Buffer;
  /** The batch's base timestamp, epoch ms (0 when out of range). */
  timestamp: number;
}

/** What {@link RawRangeReader.read} returns. */
export interface RawRangeResult {
  /** Records of the readable batches in `[from, next)`, in offset order, aborted ones left out. */
  records: FetchedRecord[];
  /** Batches of `[from, next)` that are permanently undecodable. */
  poison: PoisonBatch[];
  /** First offset not covered. */
  next: number;
  bytes: number;
}

/**
 * Thrown when the raw reader cannot decide: this worker lacks the batch's codec, a batch header
 * is unreadable (its offset span is unknown), or the broker answered with an error. Retriable.
 */
export class RawReadError extends Error {
  constructor(
    message: string,
    /** True when a batch is known to be unreadable by this worker (codec missing, header unreadable), false for a fetch failure. */
    readonly undecodable = false,
  ) {
    super(message);
    this.name = 'RawReadError';
  }
}

/** Options of {@link RawRangeReader}. */
export interface RawRangeReaderOptions {
  /** TLS to the brokers (as the worker's `KAFKA_SSL`). @default false */
  ssl?: boolean;
  /** SASL is configured: the raw client does not speak it, so it refuses (retriably). @default false */
  sasl?: boolean;
  /**
   * Largest partition byte limit of one Fetch request. Each request asks for about the bytes the
   * rest of the range needs, from the partition's bytes per offset seen so far (1 MiB before the
   * first response), within `[64 KiB, partitionMaxBytes]`; the broker returns the first batch
   * whole whatever the limit (KIP-74). @default 8388608 (8 MiB)
   */
  partitionMaxBytes?: number;
}

/** Options of one {@link RawRangeReader.read}. */
export interface RawReadOptions {
  /**
   * Epoch ms. While the range reaches past the partition's last stable offset (an open
   * transaction; reads are read_committed), the reader polls until then; at the deadline it
   * returns what it holds (`next < to`), or throws {@link RangeIncompleteError} when it holds
   * nothing. @default 15 s from the call
   */
  deadline?: number;
  /** Aborts the wait (activity cancellation): the read rejects with the signal's reason. */
  signal?: AbortSignal;
}

/** Decompresses with KafkaJS's codec registry: the codecs this worker has, and no others. */
const kafkaJsDecompress: Decompress = async (codec, block) => {
  const { CompressionCodecs } = createRequire(import.meta.url)('kafkajs') as typeof KafkaJS;
  const factory = (CompressionCodecs as unknown as Record<number, (() => { decompress(b: Buffer): Promise<Buffer> }) | undefined>)[codec];
  if (!factory) throw new BatchDecodeError(`this worker has no ${codecNames[codec] ?? `id ${codec}`} codec`, true);
  return factory().decompress(block);
};

/** Kafka error codes after which the partition's leader is looked up again (protocol guide). */
const leaderErrors = new Set([
  3, // UNKNOWN_TOPIC_OR_PARTITION (metadata not yet propagated)
  6, // NOT_LEADER_OR_FOLLOWER
  74, // FENCED_LEADER_EPOCH
  75, // UNKNOWN_LEADER_EPOCH
]);
/** OFFSET_OUT_OF_RANGE: below the log start offset (records deleted) or past the log's end. */
const offsetOutOfRange = 1;
const defaultPartitionMaxBytes = 8 * 1024 * 1024;
const minimumRequestBytes = 64 * 1024;
const firstRequestBytes = 1024 * 1024;

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason ?? new Error('read aborted'));
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(signal?.reason ?? new Error('read aborted'));
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/**
 * Reads `[from, to)` of a partition from the raw Fetch responses of its leader, the worker's
 * primary range reader (issue 7: every landed batch is CRC-checked, as the Java consumer does
 * with `check.crcs=true`; KafkaJS does not check). Decodes every batch whose CRC-32C holds and
 * whose records read, drops aborted transactions and control records as KafkaJS's
 * read_committed consumer does (the Java consumer's rule: a transactional batch of a producer
 * with an aborted transaction starting at or before the batch is skipped until that producer's
 * abort marker), and returns every batch that is **permanently undecodable** as a
 * {@link PoisonBatch}: its stored CRC-32C does not match its bytes (corrupted at rest, on the
 * wire or in the producer), or its checksum holds but its records do not decompress or parse
 * with a codec this worker has (a broken producer). A batch whose codec this worker lacks is not
 * poison: that throws {@link RawReadError} (another worker may read it).
 *
 * Offsets below the partition's log start offset (retention, DeleteRecords) are skipped, so the
 * caller counts them as missing, as with KafkaJS. Partition leaders are cached per partition and
 * looked up again after a leadership error or a connection failure.
 */
export class RawRangeReader {
  private readonly leaders = new Map<string, Promise<BrokerAddress>>();
  /** Stored bytes per offset of each partition's last response (sizes the next request). */
  private readonly bytesPerOffset = new Map<string, number>();

  constructor(
    private readonly admin: () => Promise<Admin>,
    private readonly options: RawRangeReaderOptions = {},
    private readonly decompress: Decompress = kafkaJsDecompress,
  ) {}

  private leader(topic: string, partition: number): Promise<BrokerAddress> {
    const key = `${partition}/${topic}`;
    let address = this.leaders.get(key);
    if (!address) {
      address = this.lookUpLeader(topic, partition);
      this.leaders.set(key, address);
      address.catch(() => this.leaders.delete(key));
    }
    return address;
  }

  private async lookUpLeader(topic: string, partition: number): Promise<BrokerAddress> {
    const admin = await this.admin();
    const metadata = await admin.fetchTopicMetadata({ topics: [topic] });
    const leaderId = metadata.topics[0]?.partitions.find((p) => p.partitionId === partition)?.leader;
    const cluster = await admin.describeCluster();
    const broker = cluster.brokers.find((b) => b.nodeId === leaderId);
    if (!broker) throw new RawReadError(`raw fetch ${topic}[${partition}]: no leader in the cluster metadata (leader id ${String(leaderId)})`);
    return { host: broker.host, port: broker.port, ssl: this.options.ssl ?? false };
  }

  /** One Fetch from the (cached) leader; after a leadership error or a connection failure, once more from a fresh leader. */
  private async fetchFromLeader(topic: string, partition: number, offset: number, partitionMaxBytes: number): Promise<RawPartitionFetch> {
    const key = `${partition}/${topic}`;
    for (let attempt = 0; ; attempt++) {
      let response: RawPartitionFetch;
      try {
        response = await rawFetch(await this.leader(topic, partition), topic, partition, offset, { partitionMaxBytes });
      } catch (err) {
        this.leaders.delete(key);
        if (attempt === 0 && !(err instanceof RawReadError)) continue;
        throw err instanceof RawReadError ? err : new RawReadError(`raw fetch ${topic}[${partition}] at ${offset}: ${(err as Error).message}`);
      }
      if (!leaderErrors.has(response.errorCode)) return response;
      this.leaders.delete(key);
      if (attempt > 0) throw new RawReadError(`raw fetch ${topic}[${partition}] at ${offset}: broker error code ${response.errorCode} (leadership moved?)`);
    }
  }

  /** The partition's log start offset, from ListOffsets. */
  private async logStart(topic: string, partition: number): Promise<number> {
    const offsets = await (await this.admin()).fetchTopicOffsets(topic);
    const low = offsets.find((o) => o.partition === partition)?.low;
    if (low === undefined) throw new RawReadError(`raw fetch ${topic}[${partition}]: the partition is not in the topic's offsets`);
    return Number(low);
  }

  /** Partition byte limit of a request for `offsets` more offsets. */
  private requestBytes(key: string, offsets: number): number {
    const max = this.options.partitionMaxBytes ?? defaultPartitionMaxBytes;
    const perOffset = this.bytesPerOffset.get(key);
    // 10% and one small batch of slack, so the last batch of the range comes in the same response.
    const wanted = perOffset === undefined ? firstRequestBytes : Math.ceil(perOffset * offsets * 1.1) + 16 * 1024;
    return Math.max(Math.min(minimumRequestBytes, max), Math.min(max, wanted));
  }

  /**
   * Reads until `to` or until at least `maxBytes` of record keys and values are held (at least
   * one batch is always taken). Throws {@link RawReadError} when it cannot decide (retriable),
   * {@link RangeIncompleteError} when the deadline passes with nothing read.
   */
  async read(topic: string, partition: number, from: number, to: number, maxBytes: number, readOptions: RawReadOptions = {}): Promise<RawRangeResult> {
    if (this.options.sasl) throw new RawReadError(`raw fetch ${topic}[${partition}] at ${from}: the raw reader does not speak SASL`);
    const deadline = readOptions.deadline ?? Date.now() + 15_000;
    const key = `${partition}/${topic}`;
    const records: FetchedRecord[] = [];
    const poison: PoisonBatch[] = [];
    let next = from;
    let bytes = 0;
    const holding = (): boolean => records.length > 0 || poison.length > 0;
    while (next < to && (bytes < maxBytes || !holding())) {
      if (readOptions.signal?.aborted) throw readOptions.signal.reason ?? new Error('read aborted');
      const response = await this.fetchFromLeader(topic, partition, next, this.requestBytes(key, to - next));
      if (response.errorCode === offsetOutOfRange) {
        const low = await this.logStart(topic, partition);
        // Deleted below the log start offset: those offsets have no record (missing, as with KafkaJS).
        if (next < low) {
          next = Math.min(low, to);
          continue;
        }
        throw new RawReadError(`raw fetch ${topic}[${partition}] at ${next}: offset out of range (log start offset ${low}; the log is shorter than the range?)`);
      }
      if (response.errorCode !== 0) throw new RawReadError(`raw fetch ${topic}[${partition}] at ${next}: broker error code ${response.errorCode}`);
      const { batches, rest } = splitBatches(response.records, to);
      if (batches.length === 0) {
        if (rest && !rest.headerReadable) throw new RawReadError(`raw fetch ${topic}[${partition}] at ${next}: the batch header at offset ${String(rest.baseOffset)} cannot be read (magic or length out of range), so its offsets are unknown`, true);
        // Whole batches came, all at or past `to` (not cut): the range holds no more records.
        if (rest === null && response.records.length > 0) {
          next = to;
          continue;
        }
        if (response.records.length > 0) throw new RawReadError(`raw fetch ${topic}[${partition}] at ${next}: no whole batch in ${response.records.length} bytes`);
        // Nothing at `next` yet: an open transaction holds the last stable offset below the range
        // (read_committed), or the high watermark has not caught up. Wait, as a consumer would.
        if (Date.now() >= deadline) {
          if (holding()) break;
          throw new RangeIncompleteError(topic, partition, from, to, next);
        }
        await sleep(50, readOptions.signal);
        continue;
      }
      const first = batches[0]!;
      const last = batches[batches.length - 1]!;
      const stored = batches.reduce((n, b) => n + b.bytes.length, 0);
      this.bytesPerOffset.set(key, stored / Math.max(1, last.lastOffset + 1 - first.baseOffset));
      const pending = [...response.abortedTransactions].sort((a, b) => a.firstOffset - b.firstOffset);
      const aborted = new Set<bigint>();
      let progressed = false;
      for (const [i, batch] of batches.entries()) {
        if (next >= to || (bytes >= maxBytes && holding())) break;
        const following = batches[i + 1]?.baseOffset ?? null;
        // A corrupt header may claim any span: bound it by the next batch and the log's end.
        const claimedEnd = batch.lastOffset >= batch.baseOffset ? batch.lastOffset + 1 : batch.baseOffset + 1;
        const end = Math.min(claimedEnd, following ?? Infinity, response.highWatermark);
        if (end <= next) continue;
        while (pending.length > 0 && pending[0]!.firstOffset <= batch.lastOffset) aborted.add(pending.shift()!.producerId);
        const decoded = batch.crcValid ? await this.tryDecode(batch) : null;
        if (decoded === null || decoded instanceof BatchDecodeError) {
          const start = Math.max(batch.baseOffset, next);
          const stop = Math.min(end, to);
          poison.push(poisonOf(batch, start, stop, decoded));
          next = stop;
          progressed = true;
          continue;
        }
        if (batch.control) {
          for (const r of decoded) if (controlType(r) === 'abort') aborted.delete(batch.producerId);
        } else if (!(batch.transactional && aborted.has(batch.producerId))) {
          for (const r of decoded) {
            if (r.offset < next || r.offset >= to) continue;
            records.push(r);
            bytes += (r.key?.byteLength ?? 0) + (r.value?.byteLength ?? 0);
          }
        }
        next = Math.min(batch.lastOffset + 1, to);
        progressed = true;
      }
      if (!progressed) throw new RawReadError(`raw fetch ${topic}[${partition}] made no progress at ${next}`);
    }
    return { records, poison, next, bytes };
  }

  private async tryDecode(batch: RawBatch): Promise<FetchedRecord[] | BatchDecodeError> {
    try {
      return await decodeRecords(batch, this.decompress);
    } catch (err) {
      if (err instanceof BatchDecodeError && err.codecMissing) throw new RawReadError(`batch at offset ${batch.baseOffset}: ${err.message}`, true);
      if (err instanceof BatchDecodeError) return err;
      throw err;
    }
  }
}

function poisonOf(batch: RawBatch, from: number, to: number, error: BatchDecodeError | null): PoisonBatch {
  const timestamp = Number.isSafeInteger(batch.baseTimestamp) && batch.baseTimestamp >= 0 && batch.baseTimestamp < 8.64e15 ? batch.baseTimestamp : 0;
  return {
    from,
    to,
    baseOffset: batch.baseOffset,
    lastOffset: batch.lastOffset,
    recordCount: batch.recordCount,
    codec: codecNames[batch.codec] ?? `id ${batch.codec}`,
    cause: error ? 'undecodable_records' : 'crc_mismatch',
    message: error ? error.message : `the stored CRC-32C of the batch at offset ${batch.baseOffset} does not match its bytes`,
    bytes: Buffer.from(batch.bytes),
    timestamp,
  };
}
