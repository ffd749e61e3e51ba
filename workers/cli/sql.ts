/**
 * `platform sql "<query>"`: runs one statement against the platform's ClickHouse (CLICKHOUSE_URL,
 * or the local endpoint on LOCAL_CLICKHOUSE_PORT) and prints the result as an aligned table, or
 * as JSON lines with `--format json`. ClickHouse errors print the server's message and exit 1.
 */
import { ClickHouseError } from '@clickhouse/client';
import { loadConfig } from '../../schemas/config.js';
import { createWarehouse } from '../connections.js';
import { parseCommandLine, stringOption, UsageError, type Command } from './command.js';
import { classifyOutage } from '../observability/outages.js';

/** Statements that return rows; anything else runs as a command and prints `Ok.`. */
const returnsRows = /^\s*(?:\(\s*)*(SELECT|WITH|SHOW|DESC|DESCRIBE|EXISTS|EXPLAIN|CHECK)\b/i;
const hasFormat = /\bFORMAT\s+[A-Za-z0-9_]+\s*;?\s*$/i;

interface Column { name: string; type: string }

function cell(value: unknown): string {
  if (value === null) return 'NULL';
  if (typeof value === 'string') return value;
  return typeof value === 'object' ? JSON.stringify(value) : String(value);
}

/** Renders rows as a table with a header rule; numeric columns are right-aligned. */
export function renderTable(columns: readonly Column[], rows: readonly (readonly unknown[])[]): string {
  const text = rows.map((row) => columns.map((_, i) => cell(row[i]).replace(/\n/g, '\\n')));
  const widths = columns.map((c, i) => Math.max(c.name.length, ...text.map((r) => r[i]!.length)));
  const numeric = columns.map((c) => /^(Nullable\()?(U?Int|Float|Decimal)/.test(c.type));
  const line = (values: string[]): string =>
    values.map((v, i) => (numeric[i] ? v.padStart(widths[i]!) : v.padEnd(widths[i]!))).join('  ').trimEnd();
  return [line(columns.map((c) => c.name)), widths.map((w) => '-'.repeat(w)).join('  '), ...text.map(line)].join('\n');
}

const command: Command = {
  name: 'sql',
  summary: 'run one SQL statement against ClickHouse and print the result',
  usage: [
    'Usage: platform sql [--format table|json] [--database NAME] "<query>"',
    '',
    'Runs one statement on CLICKHOUSE_URL (default: the local endpoint on LOCAL_CLICKHOUSE_PORT).',
    'SELECT-like statements print an aligned table (or one JSON object per line with --format json);',
    'other statements print "Ok.". A query that ends in its own FORMAT clause is printed verbatim.',
    '  --database NAME   default database for unqualified names (default: CLICKHOUSE_DATABASE)',
    '  --format F        table (default) or json',
    '  -h, --help        this text',
    '',
    'Example: platform sql "SELECT topic, count() FROM events GROUP BY topic"',
  ].join('\n'),
  spec: { options: { format: { type: 'string', default: 'table' }, database: { type: 'string' } }, positionals: [1, Infinity] },

  async run(args) {
    if (args.length === 0) throw new UsageError('expected a query, e.g. platform sql "SELECT 1"');
    const { values, positionals } = parseCommandLine(this.spec, args);
    const query = positionals.join(' ').trim();
    if (!query) throw new UsageError('expected a query, e.g. platform sql "SELECT 1"');
    if (values.format !== 'table' && values.format !== 'json') {
      throw new UsageError(`--format: expected table or json, got ${JSON.stringify(values.format)}`);
    }
    const config = loadConfig();
    const clickhouseUrl = config.CLICKHOUSE_URL ?? `http://127.0.0.1:${config.LOCAL_CLICKHOUSE_PORT}`;
    // The client's own URL option silences its logger: errors are printed once, below.
    const quietUrl = new URL(clickhouseUrl);
    quietUrl.searchParams.set('log_level', 'OFF');
    const endpoints = { clickhouseUrl: quietUrl.toString(), temporalAddress: '', temporalUiUrl: null, kafkaBrokers: [] };
    const warehouse = createWarehouse(config, endpoints, stringOption(values, 'database') ?? config.CLICKHOUSE_DATABASE);
    try {
      if (hasFormat.test(query)) {
        const result = await warehouse.exec({ query });
        for await (const chunk of result.stream) process.stdout.write(chunk as Buffer);
      } else if (!returnsRows.test(query)) {
        const result = await warehouse.command({ query });
        const written = Number(result.summary?.written_rows ?? 0);
        console.log(written > 0 ? `Ok. ${written} rows written.` : 'Ok.');
      } else if (values.format === 'json') {
        const rows = await (await warehouse.query({ query, format: 'JSONEachRow' })).json();
        for (const row of rows) console.log(JSON.stringify(row));
      } else {
        const result = await (await warehouse.query({ query, format: 'JSONCompact' })).json<unknown[]>();
        console.log(renderTable(result.meta ?? [], result.data));
        console.log(`(${result.rows ?? result.data.length} rows)`);
      }
      return 0;
    } catch (err) {
      if (err instanceof ClickHouseError) {
        console.error(`Code: ${err.code}. ${err.message.trim()}`);
      } else if (classifyOutage(err, { clickhouseUrl, kafkaBrokers: [], temporalAddress: clickhouseUrl }) !== null) {
        // A connection failure (the only server this command talks to is ClickHouse).
        console.error(`${(err as Error).message} (ClickHouse at ${clickhouseUrl}; is the stack up? npm run stack:up)`);
      } else {
        // Not a connection failure: the server answered, so the stack hint would mislead.
        console.error(`${(err as Error).message} (ClickHouse at ${clickhouseUrl})`);
      }
      return 1;
    } finally {
      await warehouse.close();
    }
  },
};

export default command;
