/** The bench's result record, its printed table, and the JSON file under the state folder. */
import { mkdir, writeFile } from 'node:fs/promises';
import { cpus, totalmem } from 'node:os';
import { join } from 'node:path';
import type { RateResult } from './raw-consume.js';
import { formatStages, type StageBench } from './stages.js';
import { formatDuplicateIdBench, type DuplicateIdBench } from './duplicate-ids.js';
import { formatRangeReaderBench, type RangeReaderBench } from './range-readers.js';
import { formatLatency, type LatencyResult } from './detection-latency.js';
import { formatAggregationHistory, type AggregationHistoryResult } from './aggregation-history.js';

/** Rows landed in one database by one measurement. */
export interface LandedCounts {
  /** `count()` of the events table (duplicates included: no FINAL). */
  landed: number;
  /** `uniqExact(topic, partition, offset)` of the events table. */
  uniqueOffsets: number;
  /** `count()` of the dead-letter table. */
  deadLetters: number;
}

/** A rate, with the CPU seconds each tracked process (bench, worker, temporal, kafka, clickhouse) spent on it. */
export type Measured = RateResult & { cpu: Record<string, number> };

/** Everything one run measured; written as JSON and printed as a table. */
export interface BenchReport {
  startedAt: string;
  finishedAt: string;
  /** How the run was invoked, to repeat it. */
  command: string;
  options: { events: number; partitions: number; invalidFraction: number; deadlineMinutes: number; keep: boolean; skip: string[] };
  host: { cpus: number; cpuModel: string; memoryMb: number; node: string };
  /** 1/5/15-minute load averages at start and end: the machine is shared, this says how much. */
  loadAverage: { start: number[]; end: number[] };
  names: { topic: string; naiveDatabase: string; platformDatabase: string; taskQueue: string; workflowId: string };
  produce?: Measured & { valid: number; invalid: number; byReason: Record<string, number> };
  raw?: Measured;
  naive?: Measured & LandedCounts & { batches: number };
  platform?: Measured &
    LandedCounts & {
      exactlyOnce: boolean;
      batches: number | null;
      meanBatchSize: number | null;
      workerPeakRssMb: number | null;
      workerPeakRssSource: string;
      workerReadyRssMb: number | null;
      workerRssSamples: { seconds: number; rssMb: number; landed: number }[];
    };
  /** (a') the platform with the demo processor on the same topic (this change's cost). */
  platformProcessor?: { events: number; seconds: number; perSecond: number; exactlyOnce: boolean };
  /** (s) the stage bench: TypeScript vs WebAssembly (see stages.ts). */
  stages?: StageBench;
  /** (u) landing with the cross-batch duplicate-id check off vs on (see duplicate-ids.ts). */
  duplicateIds?: DuplicateIdBench;
  /** (r): raw CRC-checked range reader vs KafkaJS range consumer on the same ranges. */
  rangeReaders?: RangeReaderBench;
  /** (d): the platform again with every instrumentation on. */
  instrumented?: Measured & LandedCounts & { exactlyOnce: boolean; batches: number | null; workerPeakRssMb: number | null };
  /** (l): detection latency, window final -> alert workflow signalled (see detection-latency.ts). */
  latency?: LatencyResult;
  /** (l) again with the analytics queue in the landing worker process (one process, `all`), for the ratio. */
  latencyInProcess?: LatencyResult;
  /** (h): one aggregation step as the history grows, with and without the skip indexes (see aggregation-history.ts). */
  aggregationHistory?: AggregationHistoryResult;
  ratios: { aOverB: number | null; aOverC: number | null; cOverB: number | null; dOverA?: number | null };
  benchPeakRssMb: number;
  /** Set when the run stopped early (deadline, Ctrl-C, error); the measurements before it stay. */
  stoppedEarly: string | null;
  notes: string[];
}

/** Host facts that matter when comparing runs. */
export function hostFacts(): BenchReport['host'] {
  const list = cpus();
  return { cpus: list.length, cpuModel: list[0]?.model ?? 'unknown', memoryMb: Math.round(totalmem() / 2 ** 20), node: process.version };
}

/** a / b when both are known and b is not zero. */
export function ratio(a: RateResult | undefined, b: RateResult | undefined): number | null {
  if (!a || !b || b.perSecond === 0) return null;
  return a.perSecond / b.perSecond;
}

const int = (n: number): string => Math.round(n).toLocaleString('en-US');
const fixed = (n: number | null | undefined, digits = 2): string => (n === null || n === undefined ? '-' : n.toFixed(digits));

function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]): string => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  return [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n');
}

function rssRange(samples: { rssMb: number }[] | undefined): string {
  if (!samples || samples.length === 0) return '-';
  const values = samples.map((x) => x.rssMb);
  return `${Math.min(...values)}..${Math.max(...values)}, last ${values[values.length - 1]} (${values.length} samples)`;
}

/** The human-readable summary printed at the end of a run. */
export function formatReport(r: BenchReport): string {
  const rows: string[][] = [];
  const row = (name: string, m: RateResult | undefined, extra: string): void => {
    if (!m) {
      rows.push([name, '-', '-', '-', '-', 'not measured']);
      return;
    }
    rows.push([name, int(m.events), fixed(m.seconds), int(m.perSecond), m.firstEventMs === null ? '-' : int(m.firstEventMs), extra]);
  };
  row('produce (generator -> Kafka)', r.produce, r.produce ? `${int(r.produce.valid)} valid, ${int(r.produce.invalid)} invalid` : '');
  row('(a) platform (Temporal pipeline)', r.platform, r.platform ? `landed ${int(r.platform.landed)}, dead ${int(r.platform.deadLetters)}, exactly once: ${r.platform.exactlyOnce ? 'yes' : 'NO'}` : '');
  row('(b) raw KafkaJS consume', r.raw, '');
  row('(c) naive consume -> insert', r.naive, r.naive ? `landed ${int(r.naive.landed)}, dead ${int(r.naive.deadLetters)}, ${int(r.naive.batches)} inserts` : '');
  row('(d) platform, instrumentation on', r.instrumented, r.instrumented ? `landed ${int(r.instrumented.landed)}, dead ${int(r.instrumented.deadLetters)}, exactly once: ${r.instrumented.exactlyOnce ? 'yes' : 'NO'}` : '');
  const out = [
    `streamwarden bench  ${r.startedAt}  (${r.host.cpus} CPU ${r.host.cpuModel}, ${r.host.memoryMb} MB, node ${r.host.node})`,
    `topic ${r.names.topic}: ${int(r.options.events)} events requested, ${r.options.partitions} partitions`,
    '',
    table(['measurement', 'events', 'seconds', 'events/s', 'first event ms', 'notes'], rows),
    '',
    table(
      ['ratio', 'value'],
      [
        ['a/b  platform vs raw consume', fixed(r.ratios.aOverB, 3)],
        ['a/c  platform vs naive loop', fixed(r.ratios.aOverC, 3)],
        ['c/b  naive loop vs raw consume', fixed(r.ratios.cOverB, 3)],
        ['d/a  instrumentation on vs off', fixed(r.ratios.dOverA ?? null, 3)],
      ],
    ),
    '',
    table(
      ['resource', 'value'],
      [
        ['worker peak RSS (MB)', r.platform?.workerPeakRssMb === null || r.platform === undefined ? '-' : `${fixed(r.platform.workerPeakRssMb, 1)} (${r.platform.workerPeakRssSource})`],
        ['worker RSS when ready, idle (MB)', fixed(r.platform?.workerReadyRssMb, 1)],
        ['worker RSS while landing, sampled (MB)', rssRange(r.platform?.workerRssSamples)],
        ['bench process peak RSS (MB)', fixed(r.benchPeakRssMb, 1)],
        ['pipeline batches (lineage_batches)', r.platform?.batches === null || r.platform === undefined ? '-' : int(r.platform.batches)],
        ['mean batch size (events)', fixed(r.platform?.meanBatchSize, 1)],
      ],
    ),
  ];
  const procs = ['bench', 'worker', 'temporal', 'kafka', 'clickhouse'];
  const cpuRow = (name: string, m: Measured | undefined): string[] => [name, ...procs.map((p) => fixed(m?.cpu[p])), m ? fixed((Object.values(m.cpu).reduce((x, y) => x + y, 0) * 1000) / Math.max(1, m.events), 3) : '-'];
  out.push(
    '',
    table(
      ['CPU seconds during', ...procs, 'CPU ms/event (sum)'],
      [cpuRow('produce', r.produce), cpuRow('(a) platform', r.platform), cpuRow('(b) raw consume', r.raw), cpuRow('(c) naive loop', r.naive)],
    ),
    `load average (1/5/15 min): start ${r.loadAverage.start.map((x) => x.toFixed(2)).join(' ')}, end ${r.loadAverage.end.map((x) => x.toFixed(2)).join(' ')}`,
  );
  if (r.platformProcessor && r.platform) {
    const p = r.platformProcessor;
    out.push('', `(a') platform with processor request-enriched v1: ${int(p.events)} events in ${fixed(p.seconds)} s = ${int(p.perSecond)}/s, exactly once: ${p.exactlyOnce ? 'yes' : 'NO'}; a'/a ${fixed(p.perSecond / r.platform.perSecond, 3)}`);
  }
  if (r.stages) out.push('', formatStages(r.stages));
  if (r.duplicateIds) out.push('', formatDuplicateIdBench(r.duplicateIds));
  if (r.rangeReaders) out.push('', formatRangeReaderBench(r.rangeReaders));
  if (r.latency) out.push('', formatLatency(r.latency));
  if (r.latencyInProcess) {
    out.push('', formatLatency(r.latencyInProcess));
    const ratio = (a: number | null | undefined, b: number | null | undefined) => (a && b ? (a / b).toFixed(2) : '-');
    if (r.latency) out.push(`ratio (l) analytics process of its own / in the landing process: p50 ${ratio(r.latency.latency.p50, r.latencyInProcess.latency.p50)}, p99 ${ratio(r.latency.latency.p99, r.latencyInProcess.latency.p99)}`);
  }
  if (r.aggregationHistory) out.push('', formatAggregationHistory(r.aggregationHistory));
  if (r.stoppedEarly) out.push('', `STOPPED EARLY: ${r.stoppedEarly}`);
  for (const note of r.notes) out.push(`note: ${note}`);
  return out.join('\n');
}

/** Writes the report to `<stateDir>/bench/<timestamp>.json` and returns the path. */
export async function writeReport(stateDir: string, r: BenchReport): Promise<string> {
  const dir = join(stateDir, 'bench');
  await mkdir(dir, { recursive: true });
  const path = join(dir, `${r.startedAt.replaceAll(':', '-').replace(/\.\d+Z$/, 'Z')}.json`);
  await writeFile(path, `${JSON.stringify(r, null, 2)}\n`);
  return path;
}
