/**
 * `platform lineage trace`: the whole path of a landed row, or the way back from an alert.
 *
 *   platform lineage trace --pipeline P --topic T --partition N --offset O [--json]
 *   platform lineage trace --event-id ID [--pipeline P] [--json]
 *   platform lineage trace --alert ID [--json]
 *
 * Exit codes: 0 found, 1 not found (or ClickHouse unreachable), 2 bad usage.
 */
import { traceAlert, traceRow, type AlertTrace, type RowKey, type RowTrace } from '../../activities/lineage/lineage-trace.js';
import { loadAnalyticsFile } from '../../activities/analytics/declarations-file.js';
import { loadConfig } from '../../schemas/config.js';
import { connectTemporal, createWarehouse } from '../connections.js';
import { resolveEndpoints } from '../endpoints.js';
import { parseCommandLine, UsageError, type Command, type CommandSpec } from './command.js';

const usage = [
  'Usage: platform lineage trace (--pipeline P --topic T --partition N --offset O | --event-id ID [--pipeline P] | --alert ID) [--json] [--database NAME]',
  '',
  'A row: its source offsets, batch ([from, to), high watermark, workflow run, attempt), contract',
  'version, processor version, the aggregate windows that include it and the alerts that fired on',
  'them. A rejected offset shows its dead-letter reason and batch.',
  'An alert (alert-<fingerprint> or the fingerprint): each firing, the aggregate row it read, and',
  'the events behind that row per batch (topic, partition, offset range, contract and processor versions).',
  'Detectors over declared aggregations (ANALYTICS_FILE): each firing from the alert workflow\'s',
  'history, the series its reproduction query returns now, and the judged window\'s source batches.',
  '  --json   one JSON document instead of text',
  '  -h, --help   this text',
].join('\n');

function nonNegativeInt(name: string, value: string | undefined): number {
  if (value === undefined || !/^\d+$/.test(value)) throw new UsageError(`--${name}: expected a non-negative integer, got ${JSON.stringify(value)}`);
  return Number(value);
}

/** Human-readable rendering of a row trace. */
export function renderRowTrace(t: RowTrace): string {
  if (t.found === 'none') return 'not found: no landed event and no dead letter at that position';
  const out: string[] = [];
  const b = t.batch;
  if (t.found === 'dead_letter') {
    const d = t.deadLetter;
    out.push(`dead letter  ${d.pipeline} ${d.topic}[${d.partition}]@${d.offset}: ${d.reasonCode} (${d.reasonMessage})`, `  worker       ${d.processorVersion}`);
  } else {
    const e = t.event;
    out.push(
      `event        ${e.eventId}  ${e.pipeline} ${e.topic}[${e.partition}]@${e.offset}`,
      `  contract   ${e.subject} v${e.contractVersion}`,
      `  worker     ${e.processorVersion}`,
      `  times      event ${e.eventTime}  kafka ${e.kafkaTimestamp}  landed ${e.ingestedAt} (UTC)`,
    );
  }
  if (b) {
    out.push(
      `batch        ${b.batchId}`,
      `  offsets    [${b.fromOffset}, ${b.toOffset})  high watermark ${b.highWatermark ?? 'n/a'}  valid ${b.validCount}  rejected ${b.rejectedCount}`,
      `  contracts  ${b.contractVersions.join(', ') || '(none)'}  worker ${b.processorVersion}`,
      `  processor  ${b.processor ? `${b.processor}  flags ${b.flags || '{}'}` : '(none: events only)'}`,
      ...(b.routing
        ? [`  rollout    ${b.routing.rolloutId}: ${b.routing.mode}${b.routing.mode === 'weight' ? ` ${b.routing.percent} % of keys` : ''} on canary ${b.routing.canary} (${b.routing.canaryEvents} events)`]
        : []),
      `  run        ${b.workflowId} / ${b.runId}  attempt ${b.activityAttempt}  ${b.startedAt} .. ${b.finishedAt}`,
    );
  } else out.push('batch        (no lineage row)');
  if (t.found === 'event') {
    out.push(t.windows.length > 0 ? 'windows' : 'windows      (none computed yet)');
    for (const w of t.windows) out.push(`  ${w.table} ${w.windowStart} ${w.service} ${w.route}: ${w.requests} requests, ${w.errors} errors (processor ${w.processorVersion}, computed ${w.computedAt})`);
    out.push(t.alerts.length > 0 ? 'alerts' : 'alerts       (none fired on these windows)');
    for (const a of t.alerts) out.push(`  ${a.alertWorkflowId} ${a.detector} fired ${a.firedAt} on ${a.windowStart} ${a.service} ${a.route}: ${a.value} > ${a.threshold}  status ${a.status ?? 'unknown'}`);
  }
  return out.join('\n');
}

/** Human-readable rendering of an alert trace. */
export function renderAlertTrace(t: AlertTrace): string {
  if (t.firings.length === 0 && t.aggregateFirings.length === 0) return `${t.alertWorkflowId}: no recorded firing inputs`;
  const out = [`alert        ${t.alertWorkflowId}  status ${t.status ?? 'unknown'}`];
  const batchLine = (b: AlertTrace['firings'][number]['batches'][number]) =>
    `  batch ${b.batchId}: ${b.events} events, ${b.topic}[${b.partition}] offsets ${b.minOffset}..${b.maxOffset}, ${b.contractVersions.join(', ')}, worker ${b.processorVersion}`;
  for (const f of t.firings) {
    out.push(`firing       ${f.detector} at ${f.firedAt}: rollups_1m ${f.windowStart} ${f.service} ${f.route} value ${f.value} > ${f.threshold}  (${f.events} events)`);
    for (const b of f.batches) out.push(batchLine(b));
  }
  for (const f of t.aggregateFirings) {
    out.push(`firing       ${f.detector} at ${f.firedAt}: ${f.severity}, score ${f.value} (threshold ${f.threshold}) on ${f.table} key ${JSON.stringify(f.key)} window ${f.windowStart} .. ${f.windowEnd}  (${f.events} events)`);
    for (const w of f.series) out.push(`  window ${w.windowStart}: value ${w.value ?? 'null'}, revision ${w.revision}${w.final ? ', final' : ', provisional'}`);
    for (const b of f.batches) out.push(batchLine(b));
    out.push(`  reproduce: ${f.query.replace(/\s+/g, ' ')}`, `  with parameters: ${JSON.stringify(f.queryParams)}`);
  }
  return out.join('\n');
}

/** The command line of `platform lineage` (also checked against every README example). */
export const lineageSpec: CommandSpec = {
  subcommands: {
    trace: {
      options: {
        pipeline: { type: 'string' },
        topic: { type: 'string' },
        partition: { type: 'string' },
        offset: { type: 'string' },
        'event-id': { type: 'string' },
        alert: { type: 'string' },
        json: { type: 'boolean', default: false },
        database: { type: 'string' },
      },
    },
  },
};

const command: Command = {
  name: 'lineage',
  summary: 'trace a landed row to its batch, windows and alerts, or an alert back to its events',
  usage,
  spec: lineageSpec,
  async run(args) {
    const parsed = parseCommandLine(lineageSpec, args);
    const str = (name: string): string | undefined => (typeof parsed.values[name] === 'string' ? (parsed.values[name] as string) : undefined);
    const values = {
      pipeline: str('pipeline'),
      topic: str('topic'),
      partition: str('partition'),
      offset: str('offset'),
      'event-id': str('event-id'),
      alert: str('alert'),
      database: str('database'),
      json: parsed.values.json === true,
    };
    let key: RowKey | null = null;
    if (values.alert === undefined) {
      if (values['event-id'] !== undefined) key = { eventId: values['event-id'], ...(values.pipeline ? { pipeline: values.pipeline } : {}) };
      else {
        if (!values.pipeline || !values.topic) throw new UsageError('expected --pipeline, --topic, --partition and --offset, or --event-id, or --alert');
        key = { pipeline: values.pipeline, topic: values.topic, partition: nonNegativeInt('partition', values.partition), offset: nonNegativeInt('offset', values.offset) };
      }
    }
    const config = loadConfig();
    const url = new URL(config.CLICKHOUSE_URL ?? `http://127.0.0.1:${config.LOCAL_CLICKHOUSE_PORT}`);
    url.searchParams.set('log_level', 'OFF');
    const warehouse = createWarehouse(config, { clickhouseUrl: url.toString(), temporalAddress: '', temporalUiUrl: null, kafkaBrokers: [] }, values.database ?? config.CLICKHOUSE_DATABASE);
    try {
      if (key === null) {
        // Detectors over declared aggregations: their firings live in the alert workflow's history.
        const analytics = await loadAnalyticsFile(config.ANALYTICS_FILE);
        const temporal = await connectTemporal(config, resolveEndpoints(config)).catch((err: unknown) => {
          console.error(`Temporal unreachable (${err instanceof Error ? err.message : String(err)}): firings of declared detectors are not shown`);
          return null;
        });
        try {
          const t = await traceAlert(warehouse, values.alert!, temporal ? { temporal, analytics } : undefined);
          console.log(values.json ? JSON.stringify(t, null, 2) : renderAlertTrace(t));
          return t.firings.length + t.aggregateFirings.length > 0 ? 0 : 1;
        } finally {
          await temporal?.connection.close();
        }
      }
      const t = await traceRow(warehouse, key);
      console.log(values.json ? JSON.stringify(t, null, 2) : renderRowTrace(t));
      return t.found === 'none' ? 1 : 0;
    } finally {
      await warehouse.close();
    }
  },
};

export default command;
