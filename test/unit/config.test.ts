/**
 * loadConfig refuses bad environment values with a message that names the variable, the expected
 * form and what was found (never a secret), and leaves the local-stack defaults in place otherwise.
 */
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../schemas/config.js';

function problemsOf(env: NodeJS.ProcessEnv): string {
  try {
    loadConfig(env);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as ConfigError).message;
  }
  throw new Error('loadConfig accepted the environment');
}

describe('loadConfig', () => {
  it('defaults to the local stack: no external servers, default ports, .state', () => {
    const config = loadConfig({});
    expect(config.TEMPORAL_ADDRESS).toBeUndefined();
    expect(config.KAFKA_BROKERS).toBeUndefined();
    expect(config.CLICKHOUSE_URL).toBeUndefined();
    expect(config.PLATFORM_STATE_DIR).toBe('.state');
    expect([config.LOCAL_TEMPORAL_PORT, config.LOCAL_TEMPORAL_UI_PORT, config.LOCAL_KAFKA_PORT, config.LOCAL_KAFKA_CONTROLLER_PORT, config.LOCAL_CLICKHOUSE_PORT]).toEqual([
      7233, 8233, 9092, 9093, 8123,
    ]);
  });

  it('refuses KAFKA_BROKERS without a port, naming the variable, the form and the value', () => {
    const message = problemsOf({ KAFKA_BROKERS: 'localhost' });
    expect(message).toContain('KAFKA_BROKERS: expected host:port[,host:port], got "localhost"');
  });

  it('refuses a list where one broker lacks its port', () => {
    expect(problemsOf({ KAFKA_BROKERS: 'kafka-1:9092,kafka-2' })).toContain('KAFKA_BROKERS');
  });

  it('LOCAL_TEMPORAL_SQLITE_SYNC: normal by default, full on request, anything else refused naming the choices', () => {
    expect(loadConfig({}).LOCAL_TEMPORAL_SQLITE_SYNC).toBe('normal');
    expect(loadConfig({ LOCAL_TEMPORAL_SQLITE_SYNC: 'full' }).LOCAL_TEMPORAL_SQLITE_SYNC).toBe('full');
    expect(() => loadConfig({ LOCAL_TEMPORAL_SQLITE_SYNC: 'off' })).toThrow(/LOCAL_TEMPORAL_SQLITE_SYNC.*expected normal or full/);
  });

  it('WORKER_TASK_QUEUES: both queues by default, one of them on request, anything else refused naming the choices', () => {
    expect(loadConfig({}).WORKER_TASK_QUEUES).toBe('all');
    expect(loadConfig({ WORKER_TASK_QUEUES: 'analytics' }).WORKER_TASK_QUEUES).toBe('analytics');
    expect(problemsOf({ WORKER_TASK_QUEUES: 'both' })).toContain('WORKER_TASK_QUEUES: expected all, platform or analytics, got "both"');
  });

  it('splits and trims a valid broker list', () => {
    expect(loadConfig({ KAFKA_BROKERS: 'kafka-1:9092, kafka-2:9093' }).KAFKA_BROKERS).toEqual(['kafka-1:9092', 'kafka-2:9093']);
  });

  it('refuses TEMPORAL_ADDRESS without a port and CLICKHOUSE_URL that is not a URL, reporting both', () => {
    const message = problemsOf({ TEMPORAL_ADDRESS: 'temporal', CLICKHOUSE_URL: 'localhost:8123' });
    expect(message).toMatch(/TEMPORAL_ADDRESS: expected host:port, got "temporal"/);
    expect(message).toMatch(/CLICKHOUSE_URL: expected an http\(s\) URL/);
  });

  it('refuses a local port that is not a port number', () => {
    expect(problemsOf({ LOCAL_KAFKA_PORT: 'abc' })).toMatch(/LOCAL_KAFKA_PORT: .*got "abc"/);
    expect(problemsOf({ LOCAL_CLICKHOUSE_PORT: '70000' })).toMatch(/LOCAL_CLICKHOUSE_PORT: .*got "70000"/);
  });

  it('treats an empty value as unset', () => {
    expect(loadConfig({ KAFKA_BROKERS: '', LOCAL_KAFKA_PORT: '' }).LOCAL_KAFKA_PORT).toBe(9092);
  });

  it('never prints a secret in the error', () => {
    const message = problemsOf({ ALERT_SIGNING_SECRET: 'short-secret' });
    expect(message).toContain('ALERT_SIGNING_SECRET');
    expect(message).toContain('(secret, not shown)');
    expect(message).not.toContain('short-secret');
  });
});
