/**
 * The outage tracker and the classifier of "dependency unreachable" errors (issue 7, point 7):
 * real client errors from a closed port (the ClickHouse client, KafkaJS) are attributed to the
 * right dependency, other failures are not; an outage is one start line and one end line with the
 * count of failed operations, however many operations fail while it lasts.
 */
import { ClickHouseLogLevel, createClient } from '@clickhouse/client';
import { createRequire } from 'node:module';
import { Kafka, KafkaJSGroupCoordinatorNotFound, logLevel, type KafkaJSProtocolError } from 'kafkajs';
import { describe, expect, it } from 'vitest';
import { classifyOutage, isKafkaConnectionLog, OutageTracker } from '../../workers/observability/outages.js';

/** KafkaJS's own protocol error for a Kafka error code (what a broker response turns into). */
const { createErrorFromCode } = createRequire(import.meta.url)('kafkajs/src/protocol/error') as { createErrorFromCode: (code: number) => KafkaJSProtocolError };
import { freePort } from '../support/observability.js';

interface Line {
  level: string;
  message: string;
  meta?: Record<string, unknown>;
}

function capture(): { lines: Line[]; log: { debug: (m: string, x?: Record<string, unknown>) => void; info: (m: string, x?: Record<string, unknown>) => void; warn: (m: string, x?: Record<string, unknown>) => void; error: (m: string, x?: Record<string, unknown>) => void } } {
  const lines: Line[] = [];
  const at = (level: string) => (message: string, meta?: Record<string, unknown>) => void lines.push({ level, message, ...(meta ? { meta } : {}) });
  return { lines, log: { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') } };
}

describe('classifyOutage', () => {
  it('attributes real connection errors to their dependency, and nothing else', async () => {
    const [chPort, kafkaPort] = [await freePort(), await freePort()];
    const targets = { clickhouseUrl: `http://127.0.0.1:${chPort}`, kafkaBrokers: [`127.0.0.1:${kafkaPort}`], temporalAddress: '127.0.0.1:1' };

    const ch = createClient({ url: targets.clickhouseUrl, log: { level: ClickHouseLogLevel.OFF } });
    const chError = await ch.query({ query: 'SELECT 1' }).then(() => null, (e: unknown) => e);
    await ch.close();
    expect(classifyOutage(chError, targets)).toBe('clickhouse');

    const kafka = new Kafka({ clientId: 'outage-test', brokers: targets.kafkaBrokers, logLevel: logLevel.NOTHING, retry: { retries: 0 }, connectionTimeout: 500 });
    const admin = kafka.admin();
    const kafkaError = await admin.connect().then(() => null, (e: unknown) => e);
    await admin.disconnect().catch(() => undefined);
    expect(classifyOutage(kafkaError, targets)).toBe('kafka');

    expect(classifyOutage(new Error('Code: 60. DB::Exception: Table t.events does not exist'), targets)).toBeNull();
    expect(classifyOutage(new TypeError("Cannot read properties of undefined (reading 'x')"), targets)).toBeNull();
    // A gRPC UNAVAILABLE from the Temporal client (the shape @grpc/grpc-js gives it).
    expect(classifyOutage(Object.assign(new Error('14 UNAVAILABLE: No connection established'), { code: 14, details: 'No connection established', metadata: {} }), targets)).toBe('temporal');
    // Wrapped: the cause decides.
    expect(classifyOutage(new Error('landing failed', { cause: chError }), targets)).toBe('clickhouse');
    // A group coordinator that is not serving yet after a broker restart (what commitProgress meets).
    expect(classifyOutage(new (KafkaJSGroupCoordinatorNotFound as unknown as new (message: string) => Error)('Failed to find group coordinator'), targets)).toBe('kafka');
    expect(classifyOutage(createErrorFromCode(14), targets)).toBe('kafka');
    expect(classifyOutage(createErrorFromCode(3), targets)).toBeNull();
    expect(isKafkaConnectionLog(`Response OffsetCommit(key: 8, version: 5) ${createErrorFromCode(14).message}`)).toBe(true);
    expect(isKafkaConnectionLog('Response OffsetCommit(key: 8, version: 5) The group member needs to have a valid member id before actually entering a consumer group')).toBe(false);
  });
});

describe('OutageTracker', () => {
  it('one start line, one end line with duration and retried count, however many failures', async () => {
    const { lines, log } = capture();
    let up = false;
    const tracker = new OutageTracker({ log, probeEveryMs: 20, probes: { clickhouse: async () => { if (!up) throw new Error('down'); } } });
    tracker.failed('clickhouse', new Error('connect ECONNREFUSED 127.0.0.1:1\n  a long dump'));
    for (let i = 0; i < 9; i += 1) tracker.failed('clickhouse', new Error('connect ECONNREFUSED 127.0.0.1:1'));
    tracker.noticed('clickhouse', new Error('client log line'));
    tracker.succeeded('clickhouse'); // the probe decides, not one lucky operation
    await new Promise((r) => setTimeout(r, 100));
    expect(tracker.inOutage('clickhouse')).toBe(true);
    up = true;
    await new Promise((r) => setTimeout(r, 100));
    expect(tracker.inOutage('clickhouse')).toBe(false);
    expect(lines.map((l) => l.message)).toEqual(['dependency outage started', 'dependency outage ended']);
    expect(lines[0]!.meta).toMatchObject({ dependency: 'clickhouse', reason: 'connect ECONNREFUSED 127.0.0.1:1' });
    expect(lines[1]!.meta).toMatchObject({ dependency: 'clickhouse', retriedOperations: 10 });
    expect(lines[1]!.meta!.outageMs).toBeGreaterThanOrEqual(100);
    // A second outage is a second pair.
    up = false;
    tracker.failed('clickhouse', new Error('socket hang up'));
    up = true;
    await new Promise((r) => setTimeout(r, 100));
    expect(lines.map((l) => l.message)).toHaveLength(4);
    tracker.close();
  });

  it('without a probe, the next successful operation ends the outage; a notice alone counts nothing', () => {
    const { lines, log } = capture();
    const tracker = new OutageTracker({ log });
    tracker.noticed('kafka', new Error('Connection error: connect ECONNREFUSED'));
    tracker.failed('kafka', new Error('x'));
    tracker.succeeded('kafka');
    expect(lines.map((l) => [l.message, l.meta?.retriedOperations])).toEqual([
      ['dependency outage started', undefined],
      ['dependency outage ended', 1],
    ]);
  });

  it('onStarted listeners hear each outage start once (not each failure), a throwing one is logged and kept', () => {
    const { lines, log } = capture();
    const tracker = new OutageTracker({ log });
    const heard: [string, number][] = [];
    tracker.onStarted(() => {
      throw new Error('listener bug');
    });
    const remove = tracker.onStarted((dependency, since) => heard.push([dependency, since]));
    const before = Date.now();
    tracker.failed('temporal', new Error('a'));
    tracker.failed('temporal', new Error('b'));
    tracker.noticed('kafka', new Error('c'));
    tracker.succeeded('temporal');
    tracker.failed('temporal', new Error('d'));
    remove();
    tracker.succeeded('temporal');
    tracker.failed('temporal', new Error('e'));
    expect(heard.map(([d]) => d)).toEqual(['temporal', 'kafka', 'temporal']);
    expect(heard.every(([, since]) => since >= before && since <= Date.now())).toBe(true);
    expect(lines.filter((l) => l.message === 'outage listener failed')).toHaveLength(4);
    tracker.close();
  });
});
