/**
 * The raw record-batch reader's pure parts: batch cutting with its CRC-32C verdict (the check
 * value of CRC-32C is the RFC 3720 one), a truncated tail versus an unreadable header, records
 * with null keys and repeated header keys, and the dead-letter rows of an undecodable batch. The
 * decoding itself is checked differentially against KafkaJS on batches of the Java producer at
 * every codec and with transactions (test/integration/codecs.test.ts).
 */
import { crc32c } from '@aws-crypto/crc32c';
import { describe, expect, it } from 'vitest';
import { undecodableBatchRows, undecodableRawCapBytes } from '../../activities/ingest/ingest.js';
import { controlType, decodeRecords, splitBatches, BatchDecodeError } from '../../activities/ingest/kafka-record-batch.js';

/** Zigzag varint, as the Kafka protocol writes it. */
function varint(n: number): Buffer {
  let v = BigInt(n);
  v = (v << 1n) ^ (v >> 63n);
  const out: number[] = [];
  do {
    let byte = Number(v & 0x7fn);
    v >>= 7n;
    if (v !== 0n) byte |= 0x80;
    out.push(byte);
  } while (v !== 0n);
  return Buffer.from(out);
}

function bytesField(b: Buffer | null): Buffer {
  return b === null ? varint(-1) : Buffer.concat([varint(b.length), b]);
}

/** One uncompressed magic-2 batch at `base` holding `records` (offset deltas 0..n-1). */
function batch(base: number, records: { key: Buffer | null; value: Buffer | null; headers?: [string, string][]; timestampDelta?: number }[], timestamp = 1_700_000_000_000): Buffer {
  const body = Buffer.concat(
    records.map((r, i) => {
      const inner = Buffer.concat([
        Buffer.from([0]),
        varint(r.timestampDelta ?? i * 10), // timestamp delta
        varint(i),
        bytesField(r.key),
        bytesField(r.value),
        varint(r.headers?.length ?? 0),
        ...(r.headers ?? []).flatMap(([k, v]) => [bytesField(Buffer.from(k)), bytesField(Buffer.from(v))]),
      ]);
      return Buffer.concat([varint(inner.length), inner]);
    }),
  );
  const header = Buffer.alloc(61);
  header.writeBigInt64BE(BigInt(base), 0);
  header.writeInt32BE(61 - 12 + body.length, 8);
  header.writeInt32BE(0, 12);
  header.writeInt8(2, 16);
  header.writeInt16BE(0, 21);
  header.writeInt32BE(records.length - 1, 23);
  header.writeBigInt64BE(BigInt(timestamp), 27);
  header.writeBigInt64BE(BigInt(timestamp + 10 * (records.length - 1)), 35);
  header.writeBigInt64BE(-1n, 43);
  header.writeInt16BE(-1, 51);
  header.writeInt32BE(-1, 53);
  header.writeInt32BE(records.length, 57);
  const whole = Buffer.concat([header, body]);
  whole.writeUInt32BE(crc32c(whole.subarray(21)), 17);
  return whole;
}

const none = (): Promise<Buffer> => Promise.reject(new Error('no codec expected'));

describe('record batches from raw bytes', () => {
  it('CRC-32C is the standard one (check value of "123456789")', () => {
    expect(crc32c(Buffer.from('123456789'))).toBe(0xe3069283);
  });

  it('cuts batches, checks each CRC, reads records with null keys and repeated header keys', async () => {
    const a = batch(10, [{ key: null, value: Buffer.from('{"a":1}') }, { key: Buffer.from('k'), value: null, headers: [['h', 'x'], ['h', 'y'], ['g', '']] }]);
    const b = batch(12, [{ key: null, value: Buffer.from('z') }]);
    const corrupt = Buffer.from(b);
    corrupt.writeUInt8(corrupt.readUInt8(corrupt.length - 1) ^ 0xff, corrupt.length - 1);
    const { batches, rest } = splitBatches(Buffer.concat([a, corrupt, b.subarray(0, 30)]));
    expect(rest).toEqual({ position: a.length + b.length, baseOffset: 12, headerReadable: true });
    expect(batches.map((x) => [x.baseOffset, x.lastOffset, x.recordCount, x.crcValid])).toEqual([
      [10, 11, 2, true],
      [12, 12, 1, false],
    ]);
    const records = await decodeRecords(batches[0]!, none);
    expect(records.map((r) => [r.offset, r.key?.toString() ?? null, r.value?.toString() ?? null, r.timestamp])).toEqual([
      [10, null, '{"a":1}', 1_700_000_000_000],
      [11, 'k', null, 1_700_000_000_010],
    ]);
    expect(records[1]!.headers).toEqual({ h: [Buffer.from('x'), Buffer.from('y')], g: Buffer.from('') });
  });

  it('stops before the first batch at or past the range end: it is neither cut nor checksummed', () => {
    const a = batch(0, [{ key: null, value: Buffer.from('a') }]);
    const b = batch(1, [{ key: null, value: Buffer.from('b') }]);
    const corrupt = Buffer.from(b);
    corrupt.writeUInt8(corrupt.readUInt8(corrupt.length - 1) ^ 0xff, corrupt.length - 1);
    expect(splitBatches(Buffer.concat([a, corrupt]), 1)).toEqual({ batches: [expect.objectContaining({ baseOffset: 0, crcValid: true })], rest: null });
    expect(splitBatches(Buffer.concat([a, corrupt]), 2).batches.map((x) => x.crcValid)).toEqual([true, false]);
  });

  it('decodes varints as numbers: negative, multi-byte and beyond 32 bits', async () => {
    const deltas = [-1, -64, 300, 2 ** 40 + 3, -(2 ** 45)];
    const parsed = splitBatches(batch(7, deltas.map((timestampDelta) => ({ key: null, value: Buffer.alloc(200, 1), timestampDelta })), 2 ** 46)).batches[0]!;
    const records = await decodeRecords(parsed, none);
    expect(records.map((r) => [r.offset, r.timestamp, r.value?.length])).toEqual(deltas.map((d, i) => [7 + i, 2 ** 46 + d, 200]));
  });

  it('an unreadable header ends the walk; a record block that does not parse is a BatchDecodeError, not a crash', async () => {
    const bad = batch(0, [{ key: null, value: Buffer.from('v') }]);
    bad.writeInt8(1, 16);
    expect(splitBatches(bad).rest).toEqual({ position: 0, baseOffset: 0, headerReadable: false });
    const short = batch(0, [{ key: null, value: Buffer.from('v') }]);
    short.writeInt32BE(3, 57); // claims 3 records, holds 1
    short.writeUInt32BE(crc32c(short.subarray(21)), 17);
    const [parsed] = splitBatches(short).batches;
    await expect(decodeRecords(parsed!, none)).rejects.toBeInstanceOf(BatchDecodeError);
  });

  it('control records tell abort from commit', () => {
    const key = (type: number): Buffer => Buffer.from([0, 0, 0, type]);
    expect(controlType({ offset: 0, key: key(0), value: null, timestamp: 0 })).toBe('abort');
    expect(controlType({ offset: 0, key: key(1), value: null, timestamp: 0 })).toBe('commit');
  });

  it('an undecodable batch gives one dead letter per offset of its span; the first carries the bytes, capped', () => {
    const bytes = Buffer.alloc(undecodableRawCapBytes + 10, 7);
    const rows = undecodableBatchRows(
      { from: 5, to: 8, baseOffset: 4, lastOffset: 9, recordCount: 6, codec: 'gzip', cause: 'crc_mismatch', message: 'm', bytes, timestamp: 0 },
      { pipelineId: 'p', topic: 't', partition: 0, batchId: 'b', processorVersion: 'v' },
    );
    expect(rows.map((r) => [r.offset, r.reason_code, r.raw_bytes, r.raw.length > 0])).toEqual([
      [5, 'undecodable_batch', bytes.length, true],
      [6, 'undecodable_batch', 0, false],
      [7, 'undecodable_batch', 0, false],
    ]);
    expect(Buffer.from(rows[0]!.raw, 'base64').length).toBe(undecodableRawCapBytes);
    expect(JSON.parse(rows[0]!.reason_detail)).toMatchObject({ baseOffset: '4', lastOffset: '9', recordCount: 6, rawTruncated: true, rawAtOffset: '5' });
    expect(JSON.parse(rows[2]!.reason_detail)).toMatchObject({ rawAtOffset: '5' });
  });
});
