/**
 * Builds the clients for the three servers from the validated config and the resolved endpoints.
 * The one place that knows about TLS, SASL and credentials; secrets are passed, never logged.
 */
import { ClickHouseLogLevel, createClient, type ClickHouseClient, type Logger as ClickHouseLogger } from '@clickhouse/client';
import { Client, Connection } from '@temporalio/client';
import { Kafka, logLevel, type logCreator, type SASLOptions } from 'kafkajs';
import { registerKafkaCodecs } from '../activities/ingest/kafka-codecs.js';
import type { StackEndpoints } from '../infra/local/endpoints.js';
import type { PlatformConfig } from '../schemas/config.js';

/**
 * gRPC channel arguments of every Temporal client connection: reconnect attempts after a lost
 * connection start at 100 ms and are at most 2 s apart. grpc-js's defaults (1 s, times 1.6 up to
 * 120 s) left the worker's client, which its activities signal with and the outage tracker
 * probes with, unable to reach a restarted server for 4.7-6.1 s after an 11 s Temporal outage
 * (temporal-outage.test.ts: the `dependency outage ended` line came that late), and for up to
 * 2 minutes after a long one.
 */
export const temporalChannelArgs = { 'grpc.initial_reconnect_backoff_ms': 100, 'grpc.max_reconnect_backoff_ms': 2000 };

/**
 * Opens a Temporal client connection (with {@link temporalChannelArgs}). Close it with
 * `connection.close()`. `options.connectTimeoutMs` bounds one connection attempt (@default the
 * SDK's, 10 s).
 */
export async function connectTemporal(config: PlatformConfig, endpoints: StackEndpoints, options: { connectTimeoutMs?: number } = {}): Promise<Client> {
  const connection = await Connection.connect({
    address: endpoints.temporalAddress,
    channelArgs: temporalChannelArgs,
    ...(options.connectTimeoutMs ? { connectTimeout: options.connectTimeoutMs } : {}),
    tls: config.TEMPORAL_TLS || config.TEMPORAL_API_KEY !== undefined,
    ...(config.TEMPORAL_API_KEY ? { apiKey: config.TEMPORAL_API_KEY } : {}),
  });
  return new Client({ connection, namespace: config.TEMPORAL_NAMESPACE });
}

/** One KafkaJS log line (warn or error) handed to `createKafka`'s `onLog`. */
export interface KafkaLogEntry {
  level: 'warn' | 'error';
  /** e.g. `[Connection] Connection error: connect ECONNREFUSED 127.0.0.1:9092` */
  message: string;
  /** KafkaJS's fields (broker, clientId, groupId, stack, ...); never log them whole. */
  fields: Record<string, unknown>;
}

/**
 * Creates a KafkaJS instance (no connection is opened until a producer/consumer/admin connects).
 * `options.retries` (@default 8) and `options.quiet` (no KafkaJS log lines; for probes) tune it;
 * `options.onLog` receives KafkaJS's warn and error lines instead of its console logger (which
 * writes one line with a stack per connection retry).
 */
export function createKafka(config: PlatformConfig, endpoints: StackEndpoints, clientIdSuffix = '', options: { retries?: number; quiet?: boolean; onLog?: (entry: KafkaLogEntry) => void } = {}): Kafka {
  // Batches compressed with snappy, lz4 or zstd are readable (KafkaJS itself has only gzip).
  registerKafkaCodecs();
  let sasl: SASLOptions | undefined;
  if (config.KAFKA_SASL_MECHANISM) {
    sasl = {
      mechanism: config.KAFKA_SASL_MECHANISM,
      username: config.KAFKA_SASL_USERNAME ?? '',
      password: config.KAFKA_SASL_PASSWORD ?? '',
    } as SASLOptions;
  }
  return new Kafka({
    clientId: `${config.KAFKA_CLIENT_ID}${clientIdSuffix}`,
    brokers: endpoints.kafkaBrokers,
    ssl: config.KAFKA_SSL,
    ...(sasl ? { sasl } : {}),
    logLevel: options.quiet ? logLevel.NOTHING : logLevel.WARN,
    ...(options.onLog ? { logCreator: kafkaLogCreator(options.onLog) } : {}),
    // maxRetryTime 2 s (KafkaJS's default is 30 s): a client retrying through a broker outage
    // notices the broker back within about 2 s.
    retry: { retries: options.retries ?? 8, initialRetryTime: 200, maxRetryTime: 2000 },
  });
}

function kafkaLogCreator(onLog: (entry: KafkaLogEntry) => void): logCreator {
  return () => ({ level, log }) => {
    const { message, ...fields } = log;
    if (level === logLevel.ERROR || level === logLevel.WARN) onLog({ level: level === logLevel.ERROR ? 'error' : 'warn', message, fields });
  };
}

/** A warning or error the ClickHouse client logs about itself (a failed request, a bad setting). */
export interface WarehouseLogEntry {
  level: 'warn' | 'error';
  message: string;
  err?: Error;
  /** The client's details: operation, query_id, connection_id, settings (never log them whole). */
  args?: Record<string, unknown>;
}

/**
 * Creates the warehouse client (the only ClickHouse code path). `database` defaults to the
 * configured one; tests pass their own so they can share a server. `options.onLog` receives the
 * client's own warnings and errors instead of its default console logger, which prints a
 * multi-line dump (with the query's settings) for every failed request.
 */
export function createWarehouse(
  config: PlatformConfig,
  endpoints: StackEndpoints,
  database: string = config.CLICKHOUSE_DATABASE,
  options: { onLog?: (entry: WarehouseLogEntry) => void } = {},
): ClickHouseClient {
  const onLog = options.onLog;
  const LoggerClass = onLog
    ? class implements ClickHouseLogger {
        // The client's trace, debug and info lines are dropped (below the threshold it is given).
        trace = (): void => undefined;
        debug = (): void => undefined;
        info = (): void => undefined;
        warn(p: { message: string; err?: Error; args?: Record<string, unknown> }): void {
          onLog({ level: 'warn', message: p.message, ...(p.err ? { err: p.err } : {}), ...(p.args ? { args: p.args } : {}) });
        }
        error(p: { message: string; err: Error; args?: Record<string, unknown> }): void {
          onLog({ level: 'error', message: p.message, err: p.err, ...(p.args ? { args: p.args } : {}) });
        }
      }
    : undefined;
  return createClient({
    ...(LoggerClass ? { log: { LoggerClass, level: ClickHouseLogLevel.WARN } } : {}),
    url: endpoints.clickhouseUrl,
    username: config.CLICKHOUSE_USER,
    password: config.CLICKHOUSE_PASSWORD,
    database,
    clickhouse_settings: { date_time_input_format: 'best_effort' },
  });
}
