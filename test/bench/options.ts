/** Command line of `npm run bench`: sizes, the global deadline, and whether to keep what it created. */
import { parseArgs } from 'node:util';

/** What one bench run does. */
export interface BenchOptions {
  /** Events produced to the fresh topic. @default 200000 */
  events: number;
  /** Partitions of the fresh topic. @default 3 */
  partitions: number;
  /** Fraction of the produced events that are invalid (malformed JSON or contract violations). @default 0.02 */
  invalidFraction: number;
  /** Whole-run deadline in minutes; past it the run stops, says so, and cleans up. @default 15 */
  deadlineMinutes: number;
  /** Keep the topic, databases and consumer groups for inspection instead of deleting them. @default false */
  keep: boolean;
  /** Skip a measurement by name (`raw`, `naive`, `platform`), repeatable. @default [] */
  skip: Set<'raw' | 'naive' | 'platform' | 'stages' | 'processor' | 'instrumented' | 'duplicates' | 'readers' | 'latency' | 'aggregation'>;
}

/** Usage text printed by `--help` and on a bad command line. */
export const usage = `Usage: npm run bench -- [options]

Produces N events to a fresh topic, then measures in one run:
  (a) platform  events/s landed by the Temporal pipeline (worker in a child process), exactly once
  (b) raw       KafkaJS consume rate with no processing
  (c) naive     KafkaJS eachBatch -> validate -> ClickHouse insert, no Temporal
  (a') processor the same as (a) with the demo processor request-enriched v1 (this change's cost)
  (s) stages    CPU only: the pseudonymise stage in TypeScript vs WebAssembly, and the demo
                processor's stages v1 (TypeScript) vs v2 (WebAssembly) on the same events
  (d) instrumented  (a) again with metrics, JSON logs, tracing (OTLP to a dead collector) and
                OpenLineage (to a file) all on: the cost of the instrumentation is d/a
  (u) duplicates  landBatch in-process on the same ranges (up to 30000 offsets) with the
                cross-batch duplicate-id check off, by lookup and by claims (24 h window), rotating
                order: the costs are lookup/off and claims/off
  (r) readers   the same ranges (up to 60000 offsets) read by the raw CRC-checked reader and by
                the KafkaJS range consumer, alternating: raw/KafkaJS (npm run bench:readers alone)
  (l) latency   window final -> alert workflow signalled, p50/p99, with events paced at
                5,000/s through the platform, beside the raw ClickHouse GROUP BY of a window
                (npm run bench:latency runs it alone)
  (h) aggregation  one aggregation step on a merged history of 1 M then 4 M events, with and
                without the event-time skip indexes, and the aggregator's cursor read in its
                new and old forms (npm run bench:aggregation runs it alone)

Options:
  --events N            events to produce (default 200000)
  --partitions N        partitions of the fresh topic (default 3)
  --invalid-fraction F  fraction of invalid events, 0..0.5 (default 0.02)
  --deadline-min M      stop the whole run after M minutes (default 15)
  --skip NAME           skip raw | naive | platform | processor | stages | instrumented | duplicates | readers | latency | aggregation (repeatable)
  --keep                keep the topic, databases and groups (default: delete them)
  -h, --help            this text`;

/** Thrown for a bad command line. */
export class BenchUsageError extends Error {
  readonly code = 'bench_usage';
  readonly retriable = false;
  constructor(message: string) {
    super(message);
    this.name = 'BenchUsageError';
  }
}

function positiveInt(name: string, raw: string | undefined, fallback: number): number {
  if (raw === undefined) return fallback;
  const value = Number(raw.replaceAll('_', ''));
  if (!Number.isInteger(value) || value < 1) throw new BenchUsageError(`${name}: expected a positive integer, got "${raw}"`);
  return value;
}

/** Parses argv (without node and script); returns null when help was asked for. */
export function parseBenchArgs(argv: string[]): BenchOptions | null {
  const { values } = parseArgs({
    args: argv,
    options: {
      events: { type: 'string' },
      partitions: { type: 'string' },
      'invalid-fraction': { type: 'string' },
      'deadline-min': { type: 'string' },
      skip: { type: 'string', multiple: true },
      keep: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
    strict: true,
    allowPositionals: false,
  });
  if (values.help) return null;
  const invalidRaw = values['invalid-fraction'];
  const invalidFraction = invalidRaw === undefined ? 0.02 : Number(invalidRaw);
  if (!Number.isFinite(invalidFraction) || invalidFraction < 0 || invalidFraction > 0.5) {
    throw new BenchUsageError(`--invalid-fraction: expected a number in [0, 0.5], got "${invalidRaw}"`);
  }
  const deadlineRaw = values['deadline-min'];
  const deadlineMinutes = deadlineRaw === undefined ? 15 : Number(deadlineRaw);
  if (!Number.isFinite(deadlineMinutes) || deadlineMinutes <= 0) {
    throw new BenchUsageError(`--deadline-min: expected a positive number of minutes, got "${deadlineRaw}"`);
  }
  const skip = new Set<'raw' | 'naive' | 'platform' | 'stages' | 'processor' | 'instrumented' | 'duplicates' | 'readers' | 'latency' | 'aggregation'>();
  for (const name of values.skip ?? []) {
    if (name !== 'raw' && name !== 'naive' && name !== 'platform' && name !== 'stages' && name !== 'processor' && name !== 'instrumented' && name !== 'duplicates' && name !== 'readers' && name !== 'latency' && name !== 'aggregation') {
      throw new BenchUsageError(`--skip: expected raw, naive, platform, processor, stages, instrumented, duplicates, readers, latency or aggregation, got "${name}"`);
    }
    skip.add(name);
  }
  return {
    events: positiveInt('--events', values.events, 200_000),
    partitions: positiveInt('--partitions', values.partitions, 3),
    invalidFraction,
    deadlineMinutes,
    keep: values.keep,
    skip,
  };
}
