/**
 * Row building of a landing step (pure): valid events become `events` rows with lineage and the
 * contract's defaults applied; everything else becomes a dead letter with its reason and the raw
 * bytes kept exactly (text when UTF-8, base64 otherwise); a repeated event id is a duplicate.
 */
import { describe, expect, it } from 'vitest';
import { buildRows, markEarlierLandings, toClickHouseTime, type LandedId } from '../../activities/ingest/ingest.js';
import type { FetchedRecord } from '../../activities/ingest/kafka-range.js';
import { parseDurationSeconds } from '../../workers/cli/generate.js';

const ctx = { pipelineId: 'p', topic: 't', partition: 2, batchId: 'p/t/2/10-16', processorVersion: '9.9.9', maxEventBytes: 2048 };
const event = (id: string, extra: Record<string, unknown> = {}) =>
  JSON.stringify({
    id,
    subject: 'request-telemetry',
    version: 1,
    time: '2026-03-01T10:00:00.123+01:00',
    key: 'tenant-7',
    data: { service: 'checkout', route: '/cart', method: 'GET', status: 200, duration_ms: 12.5, region: 'eu-west-1', tenant_id: 'tenant-7', ...extra },
  });
const record = (offset: number, value: Buffer | null): FetchedRecord => ({ offset, key: Buffer.from('tenant-7'), value, timestamp: Date.UTC(2026, 2, 1, 9) });
const idA = '3b241101-e2bb-4255-8caf-4136c566a962';

describe('buildRows', () => {
  it('splits valid events from rejects, with lineage on every row', () => {
    const records = [
      record(10, Buffer.from(event(idA))),
      record(11, Buffer.from(event(idA))),
      record(12, Buffer.from([0xff, 0xfe, 0x00])),
      record(13, null),
      record(14, Buffer.from(event('6ec0bd7f-11c0-43da-975e-2a8ad9ebae0b', { status: 999 }))),
      record(15, Buffer.from('x'.repeat(4096))),
      record(16, Buffer.alloc(0)),
    ];
    const { events, deadLetters } = buildRows(records, ctx);
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({
      pipeline: 'p',
      batch_id: 'p/t/2/10-16',
      topic: 't',
      partition: 2,
      offset: 10,
      event_id: idA,
      subject: 'request-telemetry',
      event_key: 'tenant-7',
      event_time: '2026-03-01 09:00:00.123',
      kafka_timestamp: '2026-03-01 09:00:00.000',
      processor_version: '9.9.9',
    });
    // Defaults of the contract are applied to what lands.
    expect(JSON.parse(events[0]!.data)).toMatchObject({ bytes_in: 0, bytes_out: 0 });
    expect(deadLetters.map((d) => [d.offset, d.reason_code])).toEqual([
      [11, 'duplicate_id'],
      [12, 'malformed_json'],
      // A tombstone (null value) and an empty value are told apart.
      [13, 'tombstone'],
      [14, 'contract_violation'],
      [15, 'oversized'],
      [16, 'malformed_json'],
    ]);
    const [dup, binary, , violation] = deadLetters;
    expect(JSON.parse(dup!.reason_detail)).toMatchObject({ firstOffset: '10' });
    expect(binary).toMatchObject({ raw: Buffer.from([0xff, 0xfe, 0x00]).toString('base64'), raw_encoding: 'base64', raw_bytes: 3 });
    expect(violation).toMatchObject({ subject: 'request-telemetry', contract_version: 1, raw_encoding: 'utf8', message_key: 'tenant-7' });
    expect(JSON.parse(violation!.reason_detail).issues[0].path).toBe('data.status');
    expect(deadLetters.every((d) => d.batch_id === 'p/t/2/10-16' && d.processor_version === '9.9.9')).toBe(true);
  });

  it('is pure: the same records give the same rows (a retried step inserts the same block)', () => {
    const records = [record(1, Buffer.from(event(idA))), record(2, Buffer.from('{'))];
    expect(buildRows(records, ctx)).toEqual(buildRows(records, ctx));
  });

  it('formats times for ClickHouse in UTC', () => {
    expect(toClickHouseTime('2026-01-01T00:00:00Z')).toBe('2026-01-01 00:00:00.000');
    expect(toClickHouseTime(0)).toBe('1970-01-01 00:00:00.000');
  });
});

describe('generate CLI durations', () => {
  it('parses units and rejects junk', () => {
    expect(parseDurationSeconds('--x', '20s')).toBe(20);
    expect(parseDurationSeconds('--x', '2m')).toBe(120);
    expect(parseDurationSeconds('--x', '500ms')).toBe(0.5);
    expect(parseDurationSeconds('--x', '15')).toBe(15);
    expect(() => parseDurationSeconds('--incident-at', 'soon')).toThrow('--incident-at: expected a duration like 20s');
  });
});

describe('markEarlierLandings (duplicate ids across batches)', () => {
  const idB = '9f0e4a52-1c3d-4e5f-8a7b-0c1d2e3f4a5b';
  // Event time of every generated event: 2026-03-01 09:00:00.123 UTC.
  const landed = (over: Partial<LandedId>): LandedId => ({ id: idA, topic: 't', partition: 0, offset: '3', batchId: 'p/t/0/0-5', eventTime: '2026-03-01 08:00:00.123', ...over });
  const records = [record(10, Buffer.from(event(idA))), record(11, Buffer.from(event(idB))), record(12, Buffer.from(event(idA.toUpperCase())))];
  const built = () => buildRows(records, ctx);
  const hour = 3_600_000;

  it('moves an id landed earlier within the window to the dead letters, pointing at it; in-step repeats follow', () => {
    const out = markEarlierLandings(built(), records, [landed({})], 2 * hour);
    expect(out.events.map((e) => e.offset)).toEqual([11]);
    expect(out.valid.map((v) => v.id)).toEqual([idB]);
    expect(out.repeats).toBe(1);
    expect(out.deadLetters.map((d) => [d.offset, d.reason_code, JSON.parse(d.reason_detail)])).toEqual([
      [10, 'duplicate_id', { id: idA, firstTopic: 't', firstPartition: 0, firstOffset: '3', firstBatchId: 'p/t/0/0-5', firstEventTime: '2026-03-01 08:00:00.123', scope: 'pipeline' }],
      // Offset 12 repeats offset 10 in the step, but 10 did not land: it points where A landed.
      [12, 'duplicate_id', { id: idA, firstTopic: 't', firstPartition: 0, firstOffset: '3', firstBatchId: 'p/t/0/0-5', firstEventTime: '2026-03-01 08:00:00.123', scope: 'pipeline' }],
    ]);
    // The raw record is kept exactly.
    expect(out.deadLetters[0]).toMatchObject({ raw: event(idA), raw_encoding: 'utf8', subject: 'request-telemetry', batch_id: 'p/t/2/10-16' });
  });

  it('ignores landings outside the window (either side) and the same source position landed before', () => {
    for (const l of [landed({ eventTime: '2026-03-01 06:59:59.122' }), landed({ eventTime: '2026-03-01 11:00:00.124' }), landed({ topic: 't', partition: 2, offset: '10' })]) {
      const out = markEarlierLandings(built(), records, [l], 2 * hour);
      expect(out.events.map((e) => e.offset), JSON.stringify(l)).toEqual([10, 11]);
      expect(out.repeats).toBe(0);
    }
    // Exactly at the window's edge it counts.
    expect(markEarlierLandings(built(), records, [landed({ eventTime: '2026-03-01 07:00:00.123' })], 2 * hour).repeats).toBe(1);
  });

  it('names the first landing in the order given, and is pure', () => {
    const list = [landed({ partition: 1, offset: '40' }), landed({ partition: 0, offset: '3' })];
    const a = markEarlierLandings(built(), records, list, hour * 24);
    const b = markEarlierLandings(built(), records, list, hour * 24);
    expect(a).toEqual(b);
    expect(JSON.parse(a.deadLetters[0]!.reason_detail)).toMatchObject({ firstPartition: 1, firstOffset: '40' });
  });
});
