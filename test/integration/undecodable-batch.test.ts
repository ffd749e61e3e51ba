/**
 * A record batch that can never be decoded becomes dead letters and the partition moves on
 * (issue 7, point 2). On a broker of the test's own (free ports), two of five batches are
 * corrupted in the segment file, as bit rot or a broken producer would leave them: one with a
 * stored CRC-32C that no longer matches, one whose CRC was recomputed over a gzip block that
 * does not inflate. Landing the range lands every record of the good batches exactly once, writes
 * one `undecodable_batch` dead letter per offset of the bad ones (the stored batch in `raw`, base
 * offset and record count in the detail), tiles lineage, and a re-plan with other steps adds no
 * row (merges stopped). The process is the same throughout. On the code before, the landing
 * failed with a retriable error on every attempt, so the partition never moved.
 */
import { closeSync, openSync, readFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { crc32c } from '@aws-crypto/crc32c';
import { MockActivityEnvironment } from '@temporalio/testing';
import { CompressionTypes } from 'kafkajs';
import { describe, expect, it } from 'vitest';
import { splitBatches } from '../../activities/ingest/kafka-record-batch.js';
import { planRange } from '../../schemas/ingest/batch-plan.js';
import { generateEvents } from '../../workers/generator.js';
import { usePrivateLanding } from '../support/private-landing.js';
import { recentStart, testConfig, uniqueId } from '../support/stack.js';

const config = testConfig();
const id = uniqueId('t');
// Awaited in the test: a broker that does not start fails the test, never skips it.
const setup = usePrivateLanding(config, id);
const pid = process.pid;

function run<A extends unknown[], R>(fn: (...args: A) => Promise<R>, ...args: A): Promise<R> {
  return new MockActivityEnvironment().run(fn, ...args) as Promise<R>;
}


describe('permanently undecodable record batches', () => {
  it('become undecodable_batch dead letters with their bytes; the good batches land once; a re-plan adds nothing', { timeout: 360_000 }, async () => {
    const env = await setup();
    const { broker, kafka, warehouse } = env;
    const rows = async <T>(query: string): Promise<T[]> => (await warehouse.query({ query, format: 'JSONEachRow' })).json<T>();
    const activities = env.activities({ processorVersion: 'undecodable' });
    const topic = `corrupt-${id}`;
    await run(activities.ensureTopic, { topic, partitions: 1 });
    const producer = kafka.producer();
    await producer.connect();
    const events = [...generateEvents({ count: 30, seed: 7, startTime: recentStart() })].map((r) => r.value);
    // Five sends, five batches of six: offsets 0-5, 6-11, 12-17, 18-23 (gzip) and 24-29 (none).
    for (let b = 0; b < 5; b++) {
      await producer.send({ topic, acks: -1, compression: b < 4 ? CompressionTypes.GZIP : CompressionTypes.None, messages: events.slice(b * 6, b * 6 + 6).map((value) => ({ value })) });
    }
    await producer.disconnect();

    // Corrupt batches 6-11 (stored CRC left as it was) and 18-23 (CRC recomputed) in the segment file.
    const segment = join(broker.logDir, `${topic}-0`, '00000000000000000000.log');
    const stored = splitBatches(readFileSync(segment)).batches;
    expect(stored.map((b) => [b.baseOffset, b.recordCount, b.crcValid])).toEqual([0, 6, 12, 18, 24].map((o) => [o, 6, true]));
    let position = 0;
    const positions = stored.map((b) => (position += b.bytes.length) - b.bytes.length);
    const fd = openSync(segment, 'r+');
    const originals = new Map<number, Buffer>();
    try {
      for (const [index, fixCrc] of [
        [1, false],
        [3, true],
      ] as const) {
        const batch = Buffer.from(stored[index]!.bytes);
        batch.fill(0, 61 + 12, 61 + 40); // inside the gzip stream, after its 10-byte header
        expect(() => gunzipSync(batch.subarray(61))).toThrow();
        if (fixCrc) batch.writeUInt32BE(crc32c(batch.subarray(21)), 17);
        writeSync(fd, batch, 0, batch.length, positions[index]!);
        originals.set(stored[index]!.baseOffset, batch);
      }
    } finally {
      closeSync(fd);
    }
    const afterCorruption = splitBatches(readFileSync(segment)).batches.map((b) => b.crcValid);
    expect(afterCorruption).toEqual([true, false, true, true, true]);

    const landed = await run(activities.landBatch, { plan: planRange('undecodable', topic, 0, 0, 30, 0, 4), maxEventBytes: 1 << 20 });
    expect(landed).toMatchObject({ valid: 18, rejected: 12, missing: 0, rejectCodes: { undecodable_batch: 12 } });
    expect(process.pid).toBe(pid);

    const good = [0, 2, 4].flatMap((b) => events.slice(b * 6, b * 6 + 6).map((e) => (JSON.parse(e) as { id: string }).id));
    const landedEvents = await rows<{ at: string; id: string }>(`SELECT toString(offset) AS at, toString(event_id) AS id FROM events WHERE pipeline = 'undecodable' ORDER BY offset`);
    expect(landedEvents.map((r) => [Number(r.at), r.id])).toEqual(good.map((g, k) => [[0, 1, 2, 3, 4, 5, 12, 13, 14, 15, 16, 17, 24, 25, 26, 27, 28, 29][k], g]));

    interface Dead {
      at: string;
      reason_code: string;
      reason_detail: string;
      raw: string;
      raw_encoding: string;
      raw_bytes: string;
    }
    const dead = await rows<Dead>(`SELECT toString(offset) AS at, reason_code, reason_detail, raw, raw_encoding, toString(raw_bytes) AS raw_bytes FROM dead_letters WHERE pipeline = 'undecodable' ORDER BY offset`);
    const deadOffsets = [...Array(6).keys()].flatMap((k) => [6 + k]).concat([...Array(6).keys()].map((k) => 18 + k));
    expect(dead.map((d) => Number(d.at))).toEqual(deadOffsets);
    expect(new Set(dead.map((d) => d.reason_code))).toEqual(new Set(['undecodable_batch']));
    for (const d of dead) {
      const detail = JSON.parse(d.reason_detail) as Record<string, unknown>;
      const base = Number(d.at) < 12 ? 6 : 18;
      expect(detail).toMatchObject({ baseOffset: String(base), lastOffset: String(base + 5), recordCount: 6, codec: 'gzip', cause: base === 6 ? 'crc_mismatch' : 'undecodable_records' });
      // Each landing step's first offset of the batch carries the stored batch (steps of 4: 6, 8, 18, 20).
      if ([6, 8, 18, 20].includes(Number(d.at))) {
        expect(d.raw_encoding).toBe('base64');
        expect(Buffer.from(d.raw, 'base64').equals(originals.get(base)!)).toBe(true);
        expect(Number(d.raw_bytes)).toBe(originals.get(base)!.length);
      } else {
        expect(d.raw).toBe('');
        expect(detail.rawAtOffset).toBe(String(Number(d.at) < 8 || (Number(d.at) >= 18 && Number(d.at) < 20) ? base : base + 2));
      }
    }
    const lineage = await rows<{ valid_count: string; rejected_count: string; missing_count: string }>(`SELECT valid_count, rejected_count, missing_count FROM lineage_batches WHERE pipeline = 'undecodable'`);
    expect(lineage.map((l) => [Number(l.valid_count), Number(l.rejected_count), Number(l.missing_count)])).toEqual([[18, 12, 0]]);

    // A re-plan of the same offsets with other steps (another worker's chunk size): nothing doubles.
    const again = await run(activities.landBatch, { plan: planRange('undecodable', topic, 0, 0, 30, 0, 7), maxEventBytes: 1 << 20 });
    expect(again).toMatchObject({ valid: 18, rejected: 12, alreadyLanded: 30, insertedEvents: 0 });
    const counts = await rows<{ events: string; dead: string }>(
      `SELECT (SELECT count() FROM events WHERE pipeline = 'undecodable') AS events, (SELECT count() FROM dead_letters WHERE pipeline = 'undecodable') AS dead`,
    );
    expect(counts.map((c) => [Number(c.events), Number(c.dead)])).toEqual([[18, 12]]);
    expect(process.pid).toBe(pid);
  });
});
