/**
 * Row building of a landing step (pure): valid events become `events` rows with lineage and the
 * contract's defaults applied; everything else becomes a dead letter with its reason and the raw
 * bytes kept exactly (text when UTF-8, base64 otherwise); a repeated event id is a duplicate.
 */
import { describe, expect, it } from 'vitest';
import { buildRows, toClickHouseTime } from '../../activities/ingest/ingest.js';
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
