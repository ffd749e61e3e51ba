/**
 * Every landed record batch is CRC-32C checked (issue 7), as the Java consumer does with
 * `check.crcs=true`. On a broker of the test's own, stopped cleanly (so its restart does not
 * recover, and so re-check, the log), two of five stored batches are corrupted in the segment file
 * the way bit rot leaves them while every record still parses: one hex digit of an event id
 * flipped inside a record value of an uncompressed batch, and one byte of the gzip header's MTIME
 * flipped in a gzip batch (it still inflates to the same records). Their stored CRCs no longer
 * match. After the restart:
 * - the KafkaJS reader (`rangeReader: 'kafkajs'`, the reader before this change, still used under
 *   SASL) lands all 30 records, the altered event id included: the corruption lands silently;
 * - the default reader (raw Fetch, CRC-checked) turns the offsets of both corrupted batches into
 *   `undecodable_batch` dead letters with cause `crc_mismatch` and the stored batch in `raw`, lands
 *   the 18 other records exactly once (counts without FINAL, merges stopped; a re-plan with other
 *   steps adds nothing), and the worker process is the same throughout.
 */
import { closeSync, openSync, readFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { MockActivityEnvironment } from '@temporalio/testing';
import { CompressionTypes } from 'kafkajs';
import { describe, expect, it } from 'vitest';
import type { LandBatchResult } from '../../activities/ingest/ingest.js';
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


/** Another hex digit in place of `c` (so a UUID stays a UUID). */
function flipHex(c: string): string {
  return (parseInt(c, 16) ^ 1).toString(16);
}

describe('CRC-32C checked reads', () => {
  it('KafkaJS lands corrupted batches silently; the default reader makes them crc_mismatch dead letters and lands the rest once', { timeout: 480_000 }, async () => {
    const env = await setup();
    const { broker, kafka, warehouse } = env;
    const rows = async <T>(query: string, params: Record<string, unknown>): Promise<T[]> => (await warehouse.query({ query, query_params: params, format: 'JSONEachRow' })).json<T>();
    const topic = `crc-${id}`;
    await run(env.activities().ensureTopic, { topic, partitions: 1 });
    const producer = kafka.producer();
    await producer.connect();
    const events = [...generateEvents({ count: 30, seed: 11, startTime: recentStart() })].map((r) => r.value);
    const ids = events.map((e) => (JSON.parse(e) as { id: string }).id);
    // Five sends, five batches of six: 0-5 none, 6-11 none, 12-17 gzip, 18-23 gzip, 24-29 none.
    const codecs = [CompressionTypes.None, CompressionTypes.None, CompressionTypes.GZIP, CompressionTypes.GZIP, CompressionTypes.None];
    for (const [b, compression] of codecs.entries()) {
      await producer.send({ topic, acks: -1, compression, messages: events.slice(b * 6, b * 6 + 6).map((value) => ({ value })) });
    }
    await producer.disconnect();

    // Stopped cleanly: an unclean start would recover the segment, checking (and cutting at) CRCs.
    await broker.halt();
    const segment = join(broker.logDir, `${topic}-0`, '00000000000000000000.log');
    const stored = splitBatches(readFileSync(segment)).batches;
    expect(stored.map((b) => [b.baseOffset, b.recordCount, b.codec, b.crcValid])).toEqual([0, 6, 12, 18, 24].map((o, b) => [o, 6, b === 2 || b === 3 ? 1 : 0, true]));
    let position = 0;
    const positions = stored.map((b) => (position += b.bytes.length) - b.bytes.length);
    // Batch 6-11: the first hex digit of the event id inside the value of offset 8.
    const plain = Buffer.from(stored[1]!.bytes);
    const at = plain.indexOf(Buffer.from(`"${ids[8]!}"`));
    expect(at).toBeGreaterThan(61);
    const alteredId = flipHex(ids[8]![0]!) + ids[8]!.slice(1);
    plain.write(alteredId[0]!, at + 1, 'latin1');
    // Batch 18-23: a byte of the gzip header's MTIME (bytes 4-7 of the gzip stream); inflates the same.
    const gzipped = Buffer.from(stored[3]!.bytes);
    expect(gzipped.subarray(61, 63).toString('hex')).toBe('1f8b');
    gzipped[61 + 5] = gzipped[61 + 5]! ^ 0xff;
    expect(gunzipSync(gzipped.subarray(61)).equals(gunzipSync(stored[3]!.bytes.subarray(61)))).toBe(true);
    const corrupted = new Map([
      [6, plain],
      [18, gzipped],
    ]);
    const fd = openSync(segment, 'r+');
    try {
      writeSync(fd, plain, 0, plain.length, positions[1]!);
      writeSync(fd, gzipped, 0, gzipped.length, positions[3]!);
    } finally {
      closeSync(fd);
    }
    expect(splitBatches(readFileSync(segment)).batches.map((b) => b.crcValid)).toEqual([true, false, true, false, true]);
    await broker.restart();
    // The restart kept the corrupted bytes (no recovery truncated the log at them).
    expect(splitBatches(readFileSync(segment)).batches.map((b) => [b.baseOffset, b.crcValid])).toEqual([
      [0, true],
      [6, false],
      [12, true],
      [18, false],
      [24, true],
    ]);

    // The old behaviour: KafkaJS checks no CRC, so every record lands, the altered id included.
    const viaKafkaJs = await run(env.activities({ rangeReader: 'kafkajs' }).landBatch, { plan: planRange('crc-kafkajs', topic, 0, 0, 30, 0, 4), maxEventBytes: 1 << 20 });
    expect(viaKafkaJs).toMatchObject({ valid: 30, rejected: 0, missing: 0 });
    const unchecked = await rows<{ at: string; id: string }>('SELECT toString(offset) AS at, toString(event_id) AS id FROM events WHERE pipeline = {p:String} ORDER BY offset', { p: 'crc-kafkajs' });
    expect(unchecked.map((r) => [Number(r.at), r.id])).toEqual(ids.map((eventId, offset) => [offset, offset === 8 ? alteredId : eventId]));
    expect(process.pid).toBe(pid);

    // The default reader checks every batch's CRC-32C.
    const activities = env.activities();
    const landed: LandBatchResult = await run(activities.landBatch, { plan: planRange('crc-raw', topic, 0, 0, 30, 0, 4), maxEventBytes: 1 << 20 });
    expect(landed).toMatchObject({ valid: 18, rejected: 12, missing: 0, rejectCodes: { undecodable_batch: 12 } });
    const good = [0, 1, 2, 3, 4, 5, 12, 13, 14, 15, 16, 17, 24, 25, 26, 27, 28, 29];
    const checked = await rows<{ at: string; id: string }>('SELECT toString(offset) AS at, toString(event_id) AS id FROM events WHERE pipeline = {p:String} ORDER BY offset', { p: 'crc-raw' });
    expect(checked.map((r) => [Number(r.at), r.id])).toEqual(good.map((offset) => [offset, ids[offset]]));

    interface Dead {
      at: string;
      reason_code: string;
      reason_detail: string;
      raw: string;
      raw_encoding: string;
      raw_bytes: string;
    }
    const dead = await rows<Dead>(
      'SELECT toString(offset) AS at, reason_code, reason_detail, raw, raw_encoding, toString(raw_bytes) AS raw_bytes FROM dead_letters WHERE pipeline = {p:String} ORDER BY offset',
      { p: 'crc-raw' },
    );
    expect(dead.map((d) => Number(d.at))).toEqual([6, 7, 8, 9, 10, 11, 18, 19, 20, 21, 22, 23]);
    for (const d of dead) {
      const base = Number(d.at) < 12 ? 6 : 18;
      expect(d.reason_code).toBe('undecodable_batch');
      expect(JSON.parse(d.reason_detail)).toMatchObject({ baseOffset: String(base), lastOffset: String(base + 5), recordCount: 6, codec: base === 6 ? 'none' : 'gzip', cause: 'crc_mismatch' });
      // The first offset of the batch in each landing step (steps of 4: 6, 8, 18, 20) carries the stored batch.
      if ([6, 8, 18, 20].includes(Number(d.at))) {
        expect(d.raw_encoding).toBe('base64');
        expect(Buffer.from(d.raw, 'base64').equals(corrupted.get(base)!)).toBe(true);
        expect(Number(d.raw_bytes)).toBe(corrupted.get(base)!.length);
      } else {
        expect(d.raw).toBe('');
      }
    }

    // Exactly once: a re-plan of the same offsets with other steps adds no row.
    const again = await run(activities.landBatch, { plan: planRange('crc-raw', topic, 0, 0, 30, 0, 7), maxEventBytes: 1 << 20 });
    expect(again).toMatchObject({ valid: 18, rejected: 12, alreadyLanded: 30, insertedEvents: 0 });
    const counts = await rows<{ events: string; dead: string }>(
      'SELECT (SELECT count() FROM events WHERE pipeline = {p:String}) AS events, (SELECT count() FROM dead_letters WHERE pipeline = {p:String}) AS dead',
      { p: 'crc-raw' },
    );
    expect(counts.map((c) => [Number(c.events), Number(c.dead)])).toEqual([[18, 12]]);
    expect(process.pid).toBe(pid);
  });
});
