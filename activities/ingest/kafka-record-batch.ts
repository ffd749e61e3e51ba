/**
 * Kafka's on-disk and on-wire record batch format (magic 2), read from the raw bytes of a Fetch
 * response, for the cases KafkaJS cannot help with: it never exposes a batch's bytes, and it
 * decodes a whole partition response at once, so one batch it cannot decode makes every batch
 * of that response unreadable through it.
 *
 * Layout (Kafka protocol guide, "Record Batch"): baseOffset int64, batchLength int32,
 * partitionLeaderEpoch int32, magic int8, crc uint32 (CRC-32C of everything from attributes to
 * the end of the batch), attributes int16 (bits 0-2 codec, 3 timestamp type, 4 transactional,
 * 5 control), lastOffsetDelta int32, baseTimestamp int64, maxTimestamp int64, producerId int64,
 * producerEpoch int16, baseSequence int32, records count int32 (byte 57), records (compressed as
 * one block when the codec is not none). Records: length varint, attributes int8, timestampDelta
 * varlong, offsetDelta varint, key and value as varint-length bytes (-1 = null), headers as a
 * varint count of (varint-length string key, varint-length bytes value); varints are zigzag.
 */
import { crc32c } from '@aws-crypto/crc32c';
import type { FetchedRecord } from './kafka-range.js';

/** Bytes before the records of a magic-2 batch; the records count is its last field (byte 57). */
export const batchHeaderBytes = 61;

/** Offset of the `attributes` field: the CRC covers the batch from here to its end. */
const crcStart = 21;

/** Names of the codec ids of the attributes' low three bits (Kafka's CompressionType). */
export const codecNames = ['none', 'gzip', 'snappy', 'lz4', 'zstd'] as const;

/** One record batch as stored, with what its header says and whether its checksum holds. */
export interface RawBatch {
  baseOffset: number;
  /** baseOffset + lastOffsetDelta: the batch's last offset, as its header claims. */
  lastOffset: number;
  /** Records count (byte 57); fewer than the offset span after compaction. */
  recordCount: number;
  magic: number;
  /** Codec id (attributes bits 0-2): 0 none, 1 gzip, 2 snappy, 3 lz4, 4 zstd. */
  codec: number;
  /** True for LogAppendTime batches: every record's timestamp is `maxTimestamp`. */
  logAppendTime: boolean;
  transactional: boolean;
  control: boolean;
  baseTimestamp: number;
  maxTimestamp: number;
  producerId: bigint;
  /** True when the stored CRC-32C equals the CRC-32C of the batch's bytes. */
  crcValid: boolean;
  /** The whole batch, header included (a view into the response, not a copy). */
  bytes: Buffer;
}

/** What {@link splitBatches} found in a partition's records bytes. */
export interface SplitResult {
  batches: RawBatch[];
  /**
   * Set when bytes remain that are not a whole magic-2 batch: a truncated trailing batch (the
   * normal end of a size-capped response, `headerReadable` true) or a header that cannot be read
   * (magic other than 2, a length out of bounds).
   */
  rest: { position: number; baseOffset: number | null; headerReadable: boolean } | null;
}

/**
 * Cuts the `records` bytes of one partition of a Fetch response into batches and checks each
 * one's CRC-32C (the Java consumer's `check.crcs=true`). Never throws: a header it cannot read
 * ends the walk with `rest` set.
 *
 * `until` (an offset, @default no limit): the walk stops, `rest` null, at the first batch whose
 * base offset is at or past it, so a reader of `[from, until)` neither cuts nor checksums the
 * batches the broker sent beyond its range.
 */
export function splitBatches(records: Buffer, until = Infinity): SplitResult {
  const batches: RawBatch[] = [];
  let position = 0;
  while (position < records.length) {
    if (records.length - position < 17) return { batches, rest: { position, baseOffset: null, headerReadable: true } };
    const baseOffset = Number(records.readBigInt64BE(position));
    if (baseOffset >= until) return { batches, rest: null };
    const batchLength = records.readInt32BE(position + 8);
    const magic = records.readInt8(position + 16);
    if (magic !== 2 || batchLength < batchHeaderBytes - 12) return { batches, rest: { position, baseOffset, headerReadable: false } };
    const end = position + 12 + batchLength;
    if (end > records.length) return { batches, rest: { position, baseOffset, headerReadable: true } };
    const bytes = records.subarray(position, end);
    const attributes = bytes.readInt16BE(21);
    batches.push({
      baseOffset,
      lastOffset: baseOffset + bytes.readInt32BE(23),
      recordCount: bytes.readInt32BE(57),
      magic,
      codec: attributes & 0x07,
      logAppendTime: (attributes & 0x08) !== 0,
      transactional: (attributes & 0x10) !== 0,
      control: (attributes & 0x20) !== 0,
      baseTimestamp: Number(bytes.readBigInt64BE(27)),
      maxTimestamp: Number(bytes.readBigInt64BE(35)),
      producerId: bytes.readBigInt64BE(43),
      crcValid: bytes.readUInt32BE(17) === crc32c(bytes.subarray(crcStart)),
      bytes,
    });
    position = end;
  }
  return { batches, rest: null };
}

/** Thrown by {@link decodeRecords} when a batch's records cannot be read. */
export class BatchDecodeError extends Error {
  constructor(
    message: string,
    /** True when this worker lacks the batch's codec (another worker may have it): not the batch's fault. */
    readonly codecMissing: boolean,
  ) {
    super(message);
    this.name = 'BatchDecodeError';
  }
}

/** A decompressor for one codec id; resolves to the records block. */
export type Decompress = (codec: number, block: Buffer) => Promise<Buffer>;

/** Sequential reader of the record fields. Throws RangeError past the end. */
class Cursor {
  position = 0;
  constructor(private readonly buffer: Buffer) {}

  private need(n: number): void {
    if (n < 0 || this.position + n > this.buffer.length) throw new RangeError(`record field of ${n} bytes at ${this.position} is outside the ${this.buffer.length}-byte block`);
  }

  /**
   * Zigzag varint or varlong (they share the encoding), decoded as a JavaScript number: exact up
   * to 2^53 in magnitude, which covers every length, offset delta and count (int32) and any sane
   * timestamp delta. Numbers, not BigInt: this runs for several fields of every record.
   */
  varint(): number {
    let value = 0;
    let multiplier = 1;
    for (let i = 0; i < 10; i++) {
      this.need(1);
      const byte = this.buffer[this.position++]!;
      value += (byte & 0x7f) * multiplier;
      if ((byte & 0x80) === 0) return value % 2 === 0 ? value / 2 : -(value + 1) / 2;
      multiplier *= 128;
    }
    throw new RangeError(`varint longer than 10 bytes at ${this.position}`);
  }

  int8(): number {
    this.need(1);
    return this.buffer.readInt8(this.position++);
  }

  /** Varint-length bytes, null for length -1; a copy, so no view keeps the response alive. */
  bytes(): Buffer | null {
    const length = this.varint();
    if (length === -1) return null;
    this.need(length);
    const out = Buffer.from(this.buffer.subarray(this.position, this.position + length));
    this.position += length;
    return out;
  }

  get remaining(): number {
    return this.buffer.length - this.position;
  }
}

/**
 * The records of one batch, as KafkaJS would deliver them (offset, key, value, timestamp, headers
 * with repeated keys as arrays). Throws {@link BatchDecodeError}: `codecMissing` when `decompress`
 * has no codec for the batch, otherwise the stored bytes are not a readable batch.
 */
export async function decodeRecords(batch: RawBatch, decompress: Decompress): Promise<FetchedRecord[]> {
  let block = batch.bytes.subarray(batchHeaderBytes);
  if (batch.codec !== 0) {
    try {
      block = await decompress(batch.codec, block);
    } catch (err) {
      if (err instanceof BatchDecodeError) throw err;
      throw new BatchDecodeError(`${codecNames[batch.codec] ?? `codec ${batch.codec}`} block of the batch at offset ${batch.baseOffset} does not decompress: ${(err as Error).message}`, false);
    }
  }
  const cursor = new Cursor(block);
  const records: FetchedRecord[] = [];
  try {
    for (let i = 0; i < batch.recordCount; i++) {
      const length = cursor.varint();
      const start = cursor.position;
      cursor.int8(); // record attributes: unused
      const timestampDelta = cursor.varint();
      const offsetDelta = cursor.varint();
      const key = cursor.bytes();
      const value = cursor.bytes();
      const headerCount = cursor.varint();
      const headers: Record<string, Buffer | Buffer[] | undefined> = {};
      for (let h = 0; h < headerCount; h++) {
        const name = cursor.bytes()?.toString('utf8') ?? '';
        const headerValue = cursor.bytes() ?? Buffer.alloc(0);
        const existing = headers[name];
        headers[name] = existing === undefined ? headerValue : Array.isArray(existing) ? [...existing, headerValue] : [existing, headerValue];
      }
      if (cursor.position - start !== length) throw new RangeError(`record ${i} is ${cursor.position - start} bytes, its length field says ${length}`);
      records.push({
        offset: batch.baseOffset + offsetDelta,
        key,
        value,
        timestamp: batch.logAppendTime ? batch.maxTimestamp : batch.baseTimestamp + timestampDelta,
        headers,
      });
    }
    if (cursor.remaining !== 0) throw new RangeError(`${cursor.remaining} bytes after the batch's ${batch.recordCount} records`);
  } catch (err) {
    throw new BatchDecodeError(`records of the batch at offset ${batch.baseOffset} cannot be read: ${(err as Error).message}`, false);
  }
  return records;
}

/** Type of the single record of a control batch: a transaction's end marker. */
export function controlType(record: FetchedRecord): 'abort' | 'commit' | 'other' {
  // Control record key: version int16, type int16 (0 abort, 1 commit).
  if (!record.key || record.key.length < 4) return 'other';
  const type = record.key.readInt16BE(2);
  return type === 0 ? 'abort' : type === 1 ? 'commit' : 'other';
}
