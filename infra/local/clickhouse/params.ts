/**
 * HTTP `param_<name>` values handed to the engine exactly as a server receives them.
 *
 * A ClickHouse server parses each wire value with the placeholder's type in the Escaped (TSV)
 * text format: a raw tab or newline ends the value (457 BAD_QUERY_PARAMETER, "isn't parsed
 * completely"), a trailing backslash is an unfinished escape (25 CANNOT_PARSE_ESCAPE_SEQUENCE),
 * and each type has its own parser (376 for a bad UUID, 457 for `12x` as UInt32, ...). The
 * embedded engine is that same code: `SET param_<name> = '<wire value>'` stores the raw wire text
 * as the connection's query parameter, and the engine's own substitution parses it when the query
 * runs. No parsing of values happens in JavaScript, so every type and every refusal is the
 * server's.
 *
 * Parameters set on a connection stay set; a placeholder whose parameter the request did not send
 * must still fail as on a server (456 UNKNOWN_QUERY_PARAMETER), which {@link missingParameter}
 * checks before the query runs.
 */

/** A ClickHouse single-quoted string literal holding `value` byte for byte. */
export function quoteLiteral(value: string): string {
  return `'${value.replace(/[\\']/g, '\\$&')}'`;
}

const parameterName = /^[A-Za-z_][A-Za-z0-9_]*$/;

/**
 * The `SET param_a = '...', param_b = '...'` statement that gives the engine these wire values,
 * or undefined when there are none. Names that are not identifiers are skipped: a server would
 * never match them to a placeholder either.
 */
export function parameterStatement(wire: ReadonlyMap<string, string>): string | undefined {
  const parts = [...wire].filter(([name]) => parameterName.test(name)).map(([name, value]) => `param_${name} = ${quoteLiteral(value)}`);
  return parts.length ? `SET ${parts.join(', ')}` : undefined;
}

/**
 * Names of the `{name:Type}` placeholders in `sql`, skipping string literals, quoted identifiers
 * and comments (where braces are text, not placeholders).
 */
export function placeholderNames(sql: string): Set<string> {
  const names = new Set<string>();
  for (let i = 0; i < sql.length; i++) {
    const c = sql[i]!;
    if (c === "'" || c === '"' || c === '`') {
      for (i++; i < sql.length && sql[i] !== c; i++) if (sql[i] === '\\') i++;
    } else if (c === '-' && sql[i + 1] === '-') {
      const end = sql.indexOf('\n', i);
      i = end < 0 ? sql.length : end;
    } else if (c === '/' && sql[i + 1] === '*') {
      const end = sql.indexOf('*/', i + 2);
      i = end < 0 ? sql.length : end + 1;
    } else if (c === '{') {
      const m = /^\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*:/.exec(sql.slice(i, i + 300));
      if (m) names.add(m[1]!);
    }
  }
  return names;
}

/** The first placeholder in `sql` whose parameter is not in `wire`, if any. */
export function missingParameter(sql: string, wire: ReadonlyMap<string, string>): string | undefined {
  for (const name of placeholderNames(sql)) if (!wire.has(name)) return name;
  return undefined;
}
