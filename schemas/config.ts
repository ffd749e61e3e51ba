/**
 * The platform's configuration, read from the environment in exactly one place. Every variable is
 * validated with zod; a bad value refuses to start the process with a message that names the
 * variable, the expected form and what was found. Secrets are read here and never logged.
 */
import { z } from 'zod';
import { PlatformError } from './errors.js';

const hostPort = /^[A-Za-z0-9.-]+:\d{1,5}$/;

const brokers = z
  .string()
  .trim()
  .refine((v) => v.split(',').every((b) => hostPort.test(b.trim())), {
    message: 'expected host:port[,host:port]',
  })
  .transform((v) => v.split(',').map((b) => b.trim()));

const bool = z
  .enum(['true', 'false', '1', '0', 'yes', 'no'], { message: 'expected true or false' })
  .transform((v) => v === 'true' || v === '1' || v === 'yes');

const port = z.coerce.number({ message: 'expected a TCP port number' }).int().min(1).max(65535);
const portOrOff = z.coerce.number({ message: 'expected a TCP port number, or 0 for off' }).int().min(0).max(65535);

/** Environment variables the platform reads, with their defaults. */
export const envSchema = z.object({
  /** Temporal frontend host:port. Unset: the local dev server is started (or reused). */
  TEMPORAL_ADDRESS: z.string().regex(hostPort, 'expected host:port').optional(),
  /** @default "default" */
  TEMPORAL_NAMESPACE: z.string().min(1).default('default'),
  /** Temporal Cloud API key (secret). */
  TEMPORAL_API_KEY: z.string().min(1).optional(),
  /** @default false */
  TEMPORAL_TLS: bool.default(false),
  /** @default "streamwarden" */
  TEMPORAL_TASK_QUEUE: z.string().min(1).default('streamwarden'),
  /**
   * Which task queues a worker process polls, each with a Temporal Worker of its own: `all` (the
   * platform queue and its analytics queue `<TEMPORAL_TASK_QUEUE>-analytics`), `platform` (ingest,
   * alerts, rollouts; run another process with `analytics`), or `analytics` (only the pipelines'
   * aggregators and their activities, off the landing process's main thread). @default "all"
   */
  WORKER_TASK_QUEUES: z.enum(['all', 'platform', 'analytics'], { message: 'expected all, platform or analytics' }).default('all'),
  /**
   * After a Temporal outage, rebuild the worker's Temporal Workers on a fresh connection (their
   * pollers may sleep up to ~10 s in the Core SDK's backoff; workers/task-queue-workers.ts).
   * Off by default: in session 8's side-by-side fault runs on a loaded 2-core machine it resumed
   * landing later than the Core SDK's own recovery (Worker build 2-9 s, workflow tasks lost at the
   * old Workers' shutdown, full-history replays on the fresh Workers; README, recovery paragraph).
   * @default false
   */
  TEMPORAL_WORKER_REPLACEMENT: bool.default(false),

  /** Kafka bootstrap brokers. Unset: the local KRaft broker is started (or reused). */
  KAFKA_BROKERS: brokers.optional(),
  /** @default "streamwarden" */
  KAFKA_CLIENT_ID: z.string().min(1).default('streamwarden'),
  /** @default false */
  KAFKA_SSL: bool.default(false),
  KAFKA_SASL_MECHANISM: z.enum(['plain', 'scram-sha-256', 'scram-sha-512']).optional(),
  KAFKA_SASL_USERNAME: z.string().min(1).optional(),
  /** Secret. */
  KAFKA_SASL_PASSWORD: z.string().min(1).optional(),

  /** ClickHouse HTTP(S) URL. Unset: the embedded chdb endpoint is started (or reused). The scheme is required: plain z.url() would take `localhost:8123` as a URL with scheme "localhost". */
  CLICKHOUSE_URL: z.url({ protocol: /^https?$/, message: 'expected an http(s) URL such as http://localhost:8123' }).optional(),
  /** @default "default" */
  CLICKHOUSE_USER: z.string().min(1).default('default'),
  /** Secret. @default "" */
  CLICKHOUSE_PASSWORD: z.string().default(''),
  /** @default "streamwarden" */
  CLICKHOUSE_DATABASE: z
    .string()
    .regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'expected an identifier like streamwarden')
    .default('streamwarden'),

  /** Where the local stack keeps binaries, data, PID and log files. @default ".state" */
  PLATFORM_STATE_DIR: z.string().min(1).default('.state'),
  /** @default 7233 */
  LOCAL_TEMPORAL_PORT: port.default(7233),
  /** @default 8233 */
  LOCAL_TEMPORAL_UI_PORT: port.default(8233),
  /**
   * Durability of the local Temporal dev server's SQLite file (infra/local/temporal.ts
   * `temporalSqliteArgs`): `normal` = write-ahead log, fsync at checkpoints (survives a killed
   * server; an OS crash may lose the last transactions), `full` = rollback journal, fsync at
   * every commit (also turns a file left in WAL mode back). Applies when the stack starts the
   * server; a running server keeps its mode until `npm run stack:down`. @default "normal"
   */
  LOCAL_TEMPORAL_SQLITE_SYNC: z.enum(['normal', 'full'], { message: 'expected normal or full' }).default('normal'),
  /** @default 9092 */
  LOCAL_KAFKA_PORT: port.default(9092),
  /** @default 9093 */
  LOCAL_KAFKA_CONTROLLER_PORT: port.default(9093),
  /** @default 8123 */
  LOCAL_CLICKHOUSE_PORT: port.default(8123),
  /** Port of the optional local Prometheus (`npm run prometheus:up`). @default 9090 */
  LOCAL_PROMETHEUS_PORT: port.default(9090),

  /**
   * Port of the platform's own HTTP endpoint (signed acknowledge links), in the same family as the
   * stack's ports. A second worker that finds it taken runs without serving links (the first one
   * serves them). @default 8787
   */
  LOCAL_ACK_PORT: port.default(8787),
  /**
   * Interface the acknowledge-link endpoint binds. Anything but a loopback address (127.0.0.0/8,
   * ::1, localhost) requires ALERT_SIGNING_SECRET and PLATFORM_PUBLIC_URL. @default "127.0.0.1"
   */
  PLATFORM_HTTP_HOST: z
    .string()
    .trim()
    .regex(/^(?:[A-Za-z0-9.-]+|[0-9A-Fa-f:]+)$/, 'expected a host name or IP address such as 127.0.0.1 or 0.0.0.0')
    .default('127.0.0.1'),
  /**
   * Public base URL that acknowledge links point at. Unset: `http://127.0.0.1:<LOCAL_ACK_PORT>`
   * (only allowed with a loopback PLATFORM_HTTP_HOST).
   */
  PLATFORM_PUBLIC_URL: z.url({ protocol: /^https?$/, message: 'expected an http(s) URL' }).optional(),
  /**
   * HMAC key for acknowledge links and webhook signatures (secret). Unset with a loopback
   * PLATFORM_HTTP_HOST: a random key is generated once and kept in `<PLATFORM_STATE_DIR>/alert-signing-secret`
   * (mode 0600). Unset with any other bind address: the worker refuses to start.
   */
  ALERT_SIGNING_SECRET: z.string().min(16, 'expected at least 16 characters').optional(),

  /**
   * Processor version stamped on every row the pipeline writes (lineage). Unset: the package
   * version, e.g. `0.1.0`. Set it per deployment (e.g. a git SHA) to tell canary rows apart.
   */
  PROCESSOR_VERSION: z.string().regex(/^[A-Za-z0-9._+-]{1,64}$/, 'expected 1-64 chars of A-Z a-z 0-9 . _ + -, e.g. 0.1.0+abc123').optional(),

  /**
   * Secret key of the processors' pseudonymise stages (SipHash-2-4), 32 hex digits. Never logged.
   * Unset: a random key created once in `<PLATFORM_STATE_DIR>/pseudonym.key` (fine for one machine;
   * set it for several workers so they agree on pseudonyms).
   */
  PROCESSOR_PSEUDONYM_KEY: z.string().regex(/^[0-9a-fA-F]{32}$/, 'expected 32 hex digits, e.g. the output of `openssl rand -hex 16`').optional(),

  /**
   * Most record bytes a worker holds per landing step; a batch larger than this lands in several
   * de-duplicated steps. Bounds worker memory whatever the batch size. @default 8388608 (8 MiB)
   */
  PIPELINE_CHUNK_MAX_BYTES: z.coerce.number({ message: 'expected a number of bytes' }).int().min(1024, 'expected at least 1024').default(8 * 1024 * 1024),

  /** Alert routing and escalation policy file. @default infra/alerting/policy.json */
  ALERT_POLICY_FILE: z.string().min(1).optional(),
  /** Notification channel targets file. @default infra/alerting/channels.json */
  ALERT_CHANNELS_FILE: z.string().min(1).optional(),
  /**
   * A channel target whose secret variables are unset: `disable` it with a warning (a fresh checkout
   * runs with the log channel only) or `refuse` to start (production). @default "disable"
   */
  ALERT_CHANNELS_MISSING_SECRETS: z.enum(['disable', 'refuse'], { message: 'expected "disable" or "refuse"' }).default('disable'),

  /** Analytics declarations (aggregations, watermarks, detectors per pipeline). @default infra/analytics/pipelines.json */
  ANALYTICS_FILE: z.string().min(1).optional(),

  /** @default "info" */
  LOG_LEVEL: z.enum(['debug', 'info', 'warn', 'error']).default('info'),

  /** Port of the worker's Prometheus endpoint `GET /metrics` (prom-client); 0 turns it off. @default 9464 */
  METRICS_PORT: portOrOff.default(9464),
  /** Interface the metrics endpoints bind. @default "127.0.0.1" */
  METRICS_HOST: z.string().min(1).default('127.0.0.1'),
  /** Port of the Temporal SDK's own Prometheus exporter (Runtime telemetry); 0 turns it off. @default 9465 */
  TEMPORAL_METRICS_PORT: portOrOff.default(9465),
  /**
   * OpenTelemetry traces (standard variables, read by the worker only). Tracing is on when
   * OTEL_EXPORTER_OTLP_ENDPOINT or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT is set (OTLP/HTTP), or
   * OTEL_TRACES_EXPORTER=console; off when none is set, or OTEL_TRACES_EXPORTER=none or OTEL_SDK_DISABLED=true.
   */
  OTEL_EXPORTER_OTLP_ENDPOINT: z.url({ protocol: /^https?$/, message: 'expected an http(s) URL such as http://localhost:4318' }).optional(),
  /** Full OTLP/HTTP traces URL, e.g. http://localhost:4318/v1/traces (wins over OTEL_EXPORTER_OTLP_ENDPOINT). */
  OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: z.url({ protocol: /^https?$/, message: 'expected an http(s) URL such as http://localhost:4318/v1/traces' }).optional(),
  /** `otlp`, `console` or `none`. @default otlp when an endpoint is set */
  OTEL_TRACES_EXPORTER: z.enum(['otlp', 'console', 'none'], { message: 'expected otlp, console or none' }).optional(),
  /** @default "streamwarden-worker" */
  OTEL_SERVICE_NAME: z.string().min(1).default('streamwarden-worker'),
  /** @default false */
  OTEL_SDK_DISABLED: bool.default(false),
  /**
   * OpenLineage: base URL of a Marquez-compatible server; run events are POSTed to
   * `<OPENLINEAGE_URL>/api/v1/lineage` (OPENLINEAGE_ENDPOINT). Unset (and no OPENLINEAGE_FILE): off.
   */
  OPENLINEAGE_URL: z.url({ protocol: /^https?$/, message: 'expected an http(s) URL such as http://localhost:5000' }).optional(),
  /** @default "api/v1/lineage" */
  OPENLINEAGE_ENDPOINT: z.string().min(1).default('api/v1/lineage'),
  /** Bearer token for OPENLINEAGE_URL (secret). */
  OPENLINEAGE_API_KEY: z.string().min(1).optional(),
  /** Append run events, one JSON per line, to this file (instead of, or besides, OPENLINEAGE_URL). */
  OPENLINEAGE_FILE: z.string().min(1).optional(),
  /** Namespace of the platform's jobs in OpenLineage. @default "streamwarden" */
  OPENLINEAGE_NAMESPACE: z.string().min(1).default('streamwarden'),
});

/** The validated configuration. */
export type PlatformConfig = z.infer<typeof envSchema>;

/** Thrown when the environment does not describe a valid configuration. */
export class ConfigError extends PlatformError {
  constructor(readonly problems: readonly string[]) {
    super('config_invalid', `Invalid configuration:\n  ${problems.join('\n  ')}`, false);
    this.name = 'ConfigError';
  }
}

/** Names of variables whose values must never be printed. */
export const secretVariables = new Set(['TEMPORAL_API_KEY', 'KAFKA_SASL_PASSWORD', 'CLICKHOUSE_PASSWORD', 'ALERT_SIGNING_SECRET', 'OPENLINEAGE_API_KEY']);

/** Variables that were renamed: setting the old name is refused with the new one, never silently ignored. */
export const renamedVariables: Readonly<Record<string, string>> = { PLATFORM_HTTP_PORT: 'LOCAL_ACK_PORT' };

/**
 * Parses the environment (default `process.env`). Empty strings count as unset so that
 * `FOO= npm start` behaves like leaving FOO out.
 */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): PlatformConfig {
  const present: Record<string, string> = {};
  for (const key of Object.keys(envSchema.shape)) {
    const value = env[key];
    if (value !== undefined && value !== '') present[key] = value;
  }
  const renamedProblems = Object.entries(renamedVariables).flatMap(([old, now]) =>
    env[old] !== undefined && env[old] !== '' ? [`${old}: renamed to ${now}; set ${now}=${env[old]} instead`] : [],
  );
  const parsed = envSchema.safeParse(present);
  if (parsed.success && renamedProblems.length === 0) return parsed.data;
  const problems = (parsed.error?.issues ?? []).map((issue) => {
    const name = String(issue.path[0] ?? '?');
    const found = secretVariables.has(name) ? '(secret, not shown)' : JSON.stringify(present[name]);
    return `${name}: ${issue.message}, got ${found}`;
  });
  throw new ConfigError([...renamedProblems, ...problems]);
}
