/**
 * Expands what Grafana and the ClickHouse datasource plugin substitute in a panel's SQL, so tests can
 * run dashboard queries on a real ClickHouse. The macros follow the plugin's own definitions
 * (pkg/macros in grafana/clickhouse-datasource): second-precision `toDateTime(<unix seconds>)`
 * bounds, inclusive at both ends, and `toStartOfInterval(toDateTime(col), INTERVAL n second)`
 * buckets. Values travel as server-side query parameters, never spliced into the SQL text.
 */

/** What Grafana would know when it runs a panel: the time range, the interval and the variables. */
export interface GrafanaQueryContext {
  from: Date;
  to: Date;
  /** The panel's interval in seconds (`$__interval_s`). */
  intervalSeconds: number;
  /** Selected values of each template variable (a multi-value variable may have several). */
  variables: Record<string, string[]>;
}

/** SQL with `{name:Type}` placeholders and the values to send with it. */
export interface ExpandedQuery {
  query: string;
  params: Record<string, string | number>;
}

/** Thrown when the SQL uses a macro or variable form the expander (and so the tests) does not know. */
export class UnsupportedTemplateError extends Error {
  readonly code = 'unsupported_template';
  readonly retriable = false;
}

const seconds = (d: Date): number => Math.floor(d.getTime() / 1000);

/**
 * Expands the macros `$__timeFilter(col)`, `$__timeFilter_ms(col)`, `$__timeInterval(col)`,
 * `$__timeInterval_ms(col)`, `$__interval_s`, `$__fromTime`, `$__toTime`, `$__fromTime_ms`,
 * `$__toTime_ms` and the variable form `${name:singlequote}` (one quoted value per selection).
 * Any other `$` form is an error, so that a dashboard cannot use something these tests skip.
 */
export function expandGrafanaSql(sql: string, ctx: GrafanaQueryContext): ExpandedQuery {
  const params: Record<string, string | number> = {
    __from: seconds(ctx.from),
    __to: seconds(ctx.to),
    __from_ms: ctx.from.getTime(),
    __to_ms: ctx.to.getTime(),
    __interval_s: Math.max(1, Math.floor(ctx.intervalSeconds)),
    __interval_ms: Math.max(1, Math.floor(ctx.intervalSeconds * 1000)),
  };
  const from = 'toDateTime({__from:Int64})';
  const to = 'toDateTime({__to:Int64})';
  const fromMs = 'fromUnixTimestamp64Milli({__from_ms:Int64})';
  const toMs = 'fromUnixTimestamp64Milli({__to_ms:Int64})';

  let query = sql
    .replace(/\$__timeFilter_ms\(\s*([^)]+?)\s*\)/g, (_m, col: string) => `${col} >= ${fromMs} AND ${col} <= ${toMs}`)
    .replace(/\$__timeFilter\(\s*([^)]+?)\s*\)/g, (_m, col: string) => `${col} >= ${from} AND ${col} <= ${to}`)
    .replace(
      /\$__timeInterval_ms\(\s*([^)]+?)\s*\)/g,
      (_m, col: string) => `toStartOfInterval(toDateTime64(${col}, 3), INTERVAL {__interval_ms:UInt64} millisecond)`,
    )
    .replace(
      /\$__timeInterval\(\s*([^)]+?)\s*\)/g,
      (_m, col: string) => `toStartOfInterval(toDateTime(${col}), INTERVAL {__interval_s:UInt32} second)`,
    )
    .replace(/\$__interval_s\b/g, '{__interval_s:UInt32}')
    .replace(/\$__fromTime_ms\b/g, fromMs)
    .replace(/\$__toTime_ms\b/g, toMs)
    .replace(/\$__fromTime\b/g, from)
    .replace(/\$__toTime\b/g, to);

  query = query.replace(/\$\{([A-Za-z_][A-Za-z0-9_]*):singlequote\}/g, (_m, name: string) => {
    const values = ctx.variables[name];
    if (!values || values.length === 0) throw new UnsupportedTemplateError(`variable ${name}: no value given to the expander`);
    return values
      .map((value, i) => {
        const key = `var_${name}_${i}`;
        params[key] = value;
        return `{${key}:String}`;
      })
      .join(', ');
  });

  const leftover = /\$[A-Za-z_{[][^\s,)]*/.exec(query);
  if (leftover) throw new UnsupportedTemplateError(`unsupported macro or variable form ${leftover[0]} in:\n${sql}`);
  return { query, params };
}

/**
 * Names of the template variables a SQL text references, in any of Grafana's forms
 * (`$name`, `${name}`, `${name:format}`, `[[name]]`), macros (`$__...`) excluded.
 */
export function referencedVariables(sql: string): string[] {
  const names = new Set<string>();
  for (const match of sql.matchAll(/\$\{([A-Za-z_][A-Za-z0-9_]*)(?::[^}]*)?\}|\$([A-Za-z_][A-Za-z0-9_]*)|\[\[([A-Za-z_][A-Za-z0-9_]*)(?::[^\]]*)?\]\]/g)) {
    const name = match[1] ?? match[2] ?? match[3]!;
    if (!name.startsWith('__')) names.add(name);
  }
  return [...names];
}
