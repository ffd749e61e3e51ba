/**
 * The pino JSON logger: one JSON object per line, the LOG_LEVEL threshold, the data-path context
 * from inside an activity, and secrets redacted by key and by value (in fields, nested objects,
 * error messages and the message itself). The worker's configured secrets are what it masks.
 */
import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createJsonLogger } from '../../activities/observability/json-logger.js';
import { withDataPathContext } from '../../activities/observability/log-context.js';
import { loadConfig } from '../../schemas/config.js';
import { configSecretValues } from '../../workers/worker.js';

function capture(): { stream: Writable; lines: () => string[] } {
  let text = '';
  const stream = new Writable({
    write(chunk: Buffer, _enc, done) {
      text += chunk.toString();
      done();
    },
  });
  return { stream, lines: () => text.split('\n').filter((l) => l !== '') };
}

describe('JSON logger', () => {
  it('writes one JSON object per line with level, time, component and message', () => {
    const out = capture();
    const log = createJsonLogger({ destination: out.stream, component: 'worker' });
    log.info('first\nsecond line of the same entry', { n: 1 });
    log.warn('careful');
    const lines = out.lines();
    expect(lines).toHaveLength(2);
    const first = JSON.parse(lines[0]!) as Record<string, unknown>;
    expect(first).toMatchObject({ level: 'info', component: 'worker', msg: 'first\nsecond line of the same entry', n: 1 });
    expect(new Date(String(first.time)).toISOString()).toBe(first.time);
    expect(JSON.parse(lines[1]!)).toMatchObject({ level: 'warn', msg: 'careful' });
  });

  it('a child logger writes its component once (JSON.parse keeps the last duplicate key, so the raw line is checked)', () => {
    const out = capture();
    const log = createJsonLogger({ destination: out.stream, component: 'worker' });
    log.child('http').info('served');
    log.child('temporal-sdk').child('http').warn('nested');
    log.info('root');
    const lines = out.lines();
    expect(lines.map((l) => l.match(/"component":/g)?.length)).toEqual([1, 1, 1]);
    expect(lines.map((l) => (JSON.parse(l) as { component: string }).component)).toEqual(['http', 'http', 'worker']);
  });

  it('drops entries below the level', () => {
    const out = capture();
    const log = createJsonLogger({ destination: out.stream, level: 'warn' });
    log.debug('no');
    log.info('no');
    log.warn('yes');
    log.error('yes');
    expect(out.lines().map((l) => (JSON.parse(l) as { level: string }).level)).toEqual(['warn', 'error']);
  });

  it('stamps the data-path context on lines written inside it', () => {
    const out = capture();
    const log = createJsonLogger({ destination: out.stream });
    withDataPathContext({ activity: 'landBatch', pipeline: 'demo', batchId: 'demo/requests/0/0-100', workflowId: 'pipeline-demo-requests-0', runId: 'r-1', attempt: 1 }, () => log.info('batch landed'));
    log.info('outside');
    const [inside, outside] = out.lines().map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(inside).toMatchObject({ pipeline: 'demo', batchId: 'demo/requests/0/0-100', workflowId: 'pipeline-demo-requests-0', runId: 'r-1', activity: 'landBatch' });
    expect(outside).not.toHaveProperty('batchId');
  });

  it('redacts secrets by key and by value, wherever they appear', () => {
    const config = loadConfig({ CLICKHOUSE_PASSWORD: 'ch-pass-Zq81', KAFKA_SASL_PASSWORD: 'sasl-secret-77', ALERT_SIGNING_SECRET: 'signing-secret-0123456789', OPENLINEAGE_API_KEY: 'ol-key-XYZ' });
    const secrets = configSecretValues(config);
    expect(secrets).toEqual(expect.arrayContaining(['ch-pass-Zq81', 'sasl-secret-77', 'signing-secret-0123456789', 'ol-key-XYZ']));
    const out = capture();
    const log = createJsonLogger({ destination: out.stream, secretValues: secrets });
    log.info('connecting to http://default:ch-pass-Zq81@clickhouse:8123', { password: 'anything-at-all', headers: { authorization: 'Bearer tok-1234' }, channel: { target: { apiKey: 'k-9999' } } });
    log.error('kafka said no', { error: 'SASL authentication failed for sasl-secret-77', nested: { list: ['ol-key-XYZ'] } });
    log.warn('env dump', { env: { ALERT_SIGNING_SECRET: 'signing-secret-0123456789' } });
    const text = out.lines().join('\n');
    for (const leaked of ['ch-pass-Zq81', 'sasl-secret-77', 'signing-secret-0123456789', 'ol-key-XYZ', 'anything-at-all', 'tok-1234', 'k-9999']) expect(text).not.toContain(leaked);
    const [first, second] = out.lines().map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(first).toMatchObject({ msg: 'connecting to http://default:[redacted]@clickhouse:8123', password: '[redacted]', headers: { authorization: '[redacted]' }, channel: { target: { apiKey: '[redacted]' } } });
    expect(second).toMatchObject({ error: 'SASL authentication failed for [redacted]', nested: { list: ['[redacted]'] } });
  });
});
