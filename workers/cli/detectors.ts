/**
 * `platform detectors list|backtest`: the declared detectors of each pipeline, and a backtest of
 * one rule over stored aggregates that prints when it would have fired, changed level and
 * resolved, with counts (`--json` for tools). Notifies nobody.
 */
import { backtest, BacktestError, type BacktestResult } from '../../activities/analytics/backtest.js';
import { AnalyticsConfigError, loadAnalyticsFile } from '../../activities/analytics/declarations-file.js';
import { loadConfig } from '../../schemas/config.js';
import { errorRateDetector } from '../../activities/analytics/rollup.js';
import { createWarehouse } from '../connections.js';
import { resolveEndpoints } from '../endpoints.js';
import { parseCommandLine, UsageError, type Command, type CommandSpec } from './command.js';

function parseTime(name: string, text: string | undefined): number {
  if (!text) throw new UsageError(`--${name}: required (ISO-8601 time such as 2026-01-31T12:00:00Z, now, or --from=-7d relative to now)`);
  if (text === 'now') return Date.now();
  const rel = /^-(\d+)(m|h|d)$/.exec(text);
  if (rel) return Date.now() - Number(rel[1]) * { m: 60_000, h: 3_600_000, d: 86_400_000 }[rel[2] as 'm' | 'h' | 'd'];
  const ms = Date.parse(text);
  if (!Number.isFinite(ms)) throw new UsageError(`--${name}: expected an ISO-8601 time such as 2026-01-31T12:00:00Z or -7d, got "${text}"`);
  return ms;
}

/** Human-readable backtest report. */
export function renderBacktest(r: BacktestResult): string {
  const lines = [
    `Backtest of ${r.rule} (${r.method}) on pipeline ${r.pipeline}, windows ${r.from} .. ${r.to}`,
    `${r.windows} final windows judged over ${r.keys} key(s) (${r.warmupWindows} warm-up windows before the range). Nothing was notified.`,
    '',
  ];
  if (r.transitions.length === 0) lines.push('The rule would not have fired.');
  for (const t of r.transitions) {
    const what = t.transition === 'fire' ? `FIRE ${t.level}` : t.transition === 'upgrade' ? `UPGRADE to ${t.level}` : 'RESOLVE';
    lines.push(`${t.windowStart}  ${(t.key || '(all)').padEnd(20)} ${what.padEnd(20)} score ${t.score.toFixed(3)}  value ${Number(t.value.toPrecision(6))}${t.baseline ? `  baseline ${Number(t.baseline.center.toPrecision(6))}` : ''}`);
  }
  lines.push('', `fired ${r.counts.fired}, upgraded ${r.counts.upgraded}, resolved ${r.counts.resolved}, still open at the end ${r.counts.openAtEnd}; highest level ${r.maxLevel ?? 'none'}`);
  return lines.join('\n');
}

/** The command line of `platform detectors` (also checked against every README example). */
export const detectorsSpec: CommandSpec = {
  subcommands: {
    list: {},
    backtest: {
      options: {
        pipeline: { type: 'string' },
        rule: { type: 'string' },
        from: { type: 'string' },
        to: { type: 'string' },
        json: { type: 'boolean', default: false },
        database: { type: 'string' },
      },
    },
  },
};

const command: Command = {
  name: 'detectors',
  summary: 'list declared detectors; backtest a rule over stored aggregates',
  usage: [
    'Usage: platform detectors list',
    '       platform detectors backtest --pipeline P --rule R --from T1 --to T2 [--json]',
    '',
    'Rules come from ANALYTICS_FILE (default infra/analytics/pipelines.json). The backtest judges the',
    'final windows of the rule\'s aggregation with start in [T1, T2) exactly as the live aggregator does,',
    'after a silent warm-up of the windows before T1, and notifies nobody. Times: ISO-8601, now, or relative as --from=-7d (with =, so the dash is not read as an option).',
    '',
    '-h, --help on any subcommand prints this text. --database NAME reads another ClickHouse database.',
    '',
    'Example: platform detectors backtest --pipeline demo --rule error_rate_threshold --from=-7d --to now',
  ].join('\n'),

  spec: detectorsSpec,
  async run(args) {
    const parsed = parseCommandLine(detectorsSpec, args);
    const sub = parsed.sub;
    const values = {
      pipeline: typeof parsed.values.pipeline === 'string' ? parsed.values.pipeline : undefined,
      rule: typeof parsed.values.rule === 'string' ? parsed.values.rule : undefined,
      from: typeof parsed.values.from === 'string' ? parsed.values.from : undefined,
      to: typeof parsed.values.to === 'string' ? parsed.values.to : undefined,
      database: typeof parsed.values.database === 'string' ? parsed.values.database : undefined,
      json: parsed.values.json === true,
    };
    const config = loadConfig();
    let analytics;
    try {
      analytics = await loadAnalyticsFile(config.ANALYTICS_FILE);
    } catch (err) {
      if (err instanceof AnalyticsConfigError) {
        console.error(err.message);
        return 2;
      }
      throw err;
    }
    if (sub === 'list') {
      console.log(`${'pipeline'.padEnd(12)} ${'detector'.padEnd(24)} ${'method'.padEnd(15)} input, levels and clear condition`);
      for (const p of analytics.pipelines) {
        for (const d of p.detectors) console.log(`${p.pipeline.padEnd(12)} ${d.name.padEnd(24)} ${d.method.kind.padEnd(15)} on ${d.aggregation}.${d.measure}${d.ratioOf ? `/${d.ratioOf}` : ''}  levels ${JSON.stringify(d.levels)}  clear < ${d.clear.below} x${d.clear.windows}`);
      }
      // The rule every pipeline runs on rollups_1m (configured in the pipeline's input, not in ANALYTICS_FILE).
      console.log(`${'(every)'.padEnd(12)} ${errorRateDetector.padEnd(24)} ${'threshold'.padEnd(15)} on rollups_1m errors/requests per service and minute  critical > the pipeline's detector.errorRateThreshold (default 0.1, min 50 requests)  clears after 3 minutes without a breach`);
      return 0;
    }
    if (sub !== 'backtest') throw new UsageError(`expected "list" or "backtest", got ${sub ? `"${sub}"` : 'nothing'}`);
    if (!values.pipeline) throw new UsageError('--pipeline: required');
    if (!values.rule) throw new UsageError('--rule: required');
    const fromMs = parseTime('from', values.from);
    const toMs = parseTime('to', values.to);
    const warehouse = createWarehouse(config, resolveEndpoints(config), values.database ?? config.CLICKHOUSE_DATABASE);
    try {
      const result = await backtest(warehouse, analytics, { pipeline: values.pipeline, rule: values.rule, fromMs, toMs });
      console.log(values.json ? JSON.stringify(result, null, 1) : renderBacktest(result));
      return 0;
    } catch (err) {
      if (err instanceof BacktestError) throw new UsageError(err.message);
      throw err;
    } finally {
      await warehouse.close();
    }
  },
};

export default command;
