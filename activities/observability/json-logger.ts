/**
 * Structured JSON logs with pino: one line per entry, `level` as a label, `time` in ISO 8601.
 * Every line written inside an activity carries its data-path context (pipeline, batchId,
 * workflowId, runId; see log-context.ts) and, when a span is active, the OpenTelemetry `traceId`
 * and `spanId`, so a log line, a trace and a lineage row of one batch can be joined.
 *
 * Secrets are redacted twice: by key (pino `redact` paths such as `password`, `apiKey`,
 * `authorization`, at any of the first two levels) and by value (the configured secret values,
 * wherever they appear in a string field), because a secret can also leak inside an error
 * message or a URL.
 */
import { trace } from '@opentelemetry/api';
import { pino, type DestinationStream, type Logger as PinoLogger } from 'pino';
import type { Logger } from '../logger.js';
import { currentDataPathContext } from './log-context.js';

/** Key names whose values are always replaced by `[redacted]`. */
export const redactedKeys = [
  'password',
  'passwd',
  'secret',
  'token',
  'apiKey',
  'api_key',
  'authorization',
  'Authorization',
  'cookie',
  'routingKey',
  'signingSecret',
  'CLICKHOUSE_PASSWORD',
  'KAFKA_SASL_PASSWORD',
  'TEMPORAL_API_KEY',
  'ALERT_SIGNING_SECRET',
  'OPENLINEAGE_API_KEY',
] as const;

/** Options of {@link createJsonLogger}. */
export interface JsonLoggerOptions {
  /** Lowest level written. @default "info" */
  level?: 'debug' | 'info' | 'warn' | 'error';
  /** `component` field of every line, e.g. `worker`, `http`. @default "worker" */
  component?: string;
  /** Secret values to mask wherever they appear (empty strings and values under 4 chars are ignored). @default [] */
  secretValues?: readonly string[];
  /** Where lines go. @default stdout (file descriptor 1, synchronous) */
  destination?: DestinationStream;
}

/** A {@link Logger} that also exposes the pino instance (for Temporal's Runtime logger and children). */
export interface JsonLogger extends Logger {
  readonly pino: PinoLogger;
  /** The same destination and settings with another `component`. */
  child(component: string): JsonLogger;
}

const censor = '[redacted]';

function escapeRegExp(value: string): string {
  return value.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** Builds functions that mask secret values in a message and in every string of a log record (depth-limited). */
function valueScrubber(secretValues: readonly string[]): { record: (record: Record<string, unknown>) => Record<string, unknown>; text: (message: string) => string } | null {
  const values = [...new Set(secretValues.filter((v) => v.length >= 4))];
  if (values.length === 0) return null;
  const pattern = new RegExp(values.map(escapeRegExp).join('|'), 'g');
  const scrub = (value: unknown, depth: number): unknown => {
    if (typeof value === 'string') return value.replace(pattern, censor);
    if (depth > 4 || value === null || typeof value !== 'object') return value;
    if (Array.isArray(value)) return value.map((v) => scrub(v, depth + 1));
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = scrub(v, depth + 1);
    return out;
  };
  return { record: (record) => scrub(record, 0) as Record<string, unknown>, text: (message) => message.replace(pattern, censor) };
}

/** Creates a JSON logger; see the module comment for what every line carries. */
export function createJsonLogger(options: JsonLoggerOptions = {}): JsonLogger {
  const scrub = valueScrubber(options.secretValues ?? []);
  const paths = redactedKeys.flatMap((k) => [k, `*.${k}`, `*.*.${k}`]);
  const base = pino(
    {
      level: options.level ?? 'info',
      // `component` is a binding of each wrapper, never in `base`: pino does not merge bindings, so
      // a child binding the same key again would write it twice ({"component":"worker","component":"http"}).
      base: null,
      timestamp: pino.stdTimeFunctions.isoTime,
      messageKey: 'msg',
      redact: { paths, censor },
      formatters: {
        level: (label) => ({ level: label }),
        ...(scrub ? { log: scrub.record } : {}),
      },
      mixin() {
        const context = currentDataPathContext();
        const span = trace.getActiveSpan()?.spanContext();
        const fields: Record<string, unknown> = context ? { ...context } : {};
        if (span && span.traceId !== '00000000000000000000000000000000') {
          fields.traceId = span.traceId;
          fields.spanId = span.spanId;
        }
        return fields;
      },
    },
    options.destination ?? pino.destination({ dest: 1, sync: true }),
  );
  const scrubText = scrub?.text ?? ((message: string) => message);
  const make = (component: string): JsonLogger => wrap(base.child({ component }), scrubText, make);
  return make(options.component ?? 'worker');
}

/**
 * Errors anywhere at the top of `meta` (the SDK passes `error`, `failure`, …) become
 * `{ type, message, stack }`: JSON.stringify would write an Error as `{}` and lose the cause.
 */
function withErrors(meta: Record<string, unknown> | undefined): Record<string, unknown> {
  if (!meta) return {};
  let out: Record<string, unknown> | null = null;
  for (const [key, value] of Object.entries(meta)) {
    if (value instanceof Error) {
      out ??= { ...meta };
      out[key] = { type: value.name, message: value.message, stack: value.stack };
    }
  }
  return out ?? meta;
}

function wrap(instance: PinoLogger, scrubMessage: (message: string) => string, make: (component: string) => JsonLogger): JsonLogger {
  return {
    pino: instance,
    debug: (message, meta) => instance.debug(withErrors(meta), scrubMessage(message)),
    info: (message, meta) => instance.info(withErrors(meta), scrubMessage(message)),
    warn: (message, meta) => instance.warn(withErrors(meta), scrubMessage(message)),
    error: (message, meta) => instance.error(withErrors(meta), scrubMessage(message)),
    // A sibling of the root logger with another component (same destination and settings).
    child: (component) => make(component),
  };
}
