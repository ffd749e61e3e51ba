/**
 * Turns HTTP `param_<name>` values (ClickHouse's wire form) into values for chdb's server-side
 * binding, so that the engine binds exactly what a ClickHouse server would bind.
 *
 * chdb re-encodes what it is given: a JS string goes out TSV-escaped, arrays/maps/tuples as SQL
 * literals. A wire value without backslashes or control characters survives that unchanged, so
 * it is passed as is. Otherwise the declared type decides: scalar types are parsed by the engine
 * with TSV escaping, so the value is unescaped here and re-escaped by chdb; composite types are
 * parsed as literals, so the literal is parsed here into arrays/maps/tuples that chdb writes back.
 */

/** Shape chdb recognises as a tuple literal (by class name, as @clickhouse/client's TupleParam). */
class TupleParam {
  constructor(readonly values: unknown[]) {}
}

/** Thrown for a parameter value that cannot be read as its declared type. */
export class BadQueryParameter extends Error {
  readonly code = 457;
  constructor(name: string, message: string) {
    super(`Value of query parameter '${name}' cannot be bound: ${message}`);
    this.name = 'BadQueryParameter';
  }
}

const escapes: Record<string, string> = { a: '\x07', b: '\b', e: '\x1b', f: '\f', n: '\n', r: '\r', t: '\t', v: '\v', 0: '\0' };

/** Reads a backslash escape starting at `s[i] === '\\'`; returns the character and the next index. */
function readEscape(s: string, i: number): [string, number] {
  const c = s[i + 1] ?? '';
  if (c === 'x' && /^[0-9A-Fa-f]{2}$/.test(s.slice(i + 2, i + 4))) return [String.fromCharCode(parseInt(s.slice(i + 2, i + 4), 16)), i + 4];
  return [escapes[c] ?? c, i + 2];
}

function unescapeTsv(s: string): string {
  let out = '';
  for (let i = 0; i < s.length;) {
    if (s[i] === '\\') {
      const [c, next] = readEscape(s, i);
      out += c;
      i = next;
    } else out += s[i++];
  }
  return out;
}

/** Recursive-descent reader of ClickHouse literals: [..], (..), {k:v}, 'str', numbers, NULL, booleans. */
function parseLiteral(text: string): unknown {
  let i = 0;
  const ws = (): void => { while (/\s/.test(text[i] ?? '')) i++; };
  const expect = (c: string): void => {
    ws();
    if (text[i] !== c) throw new Error(`expected '${c}' at offset ${i}, found '${text[i] ?? 'end'}'`);
    i++;
  };
  const list = (close: string, item: () => unknown): unknown[] => {
    const items: unknown[] = [];
    ws();
    if (text[i] === close) { i++; return items; }
    for (;;) {
      items.push(item());
      ws();
      if (text[i] === ',') { i++; continue; }
      expect(close);
      return items;
    }
  };
  const value = (): unknown => {
    ws();
    const c = text[i];
    if (c === '[') { i++; return list(']', value); }
    if (c === '(') { i++; return new TupleParam(list(')', value)); }
    if (c === '{') {
      i++;
      return new Map(list('}', () => { const k = value(); expect(':'); return [k, value()]; }) as [unknown, unknown][]);
    }
    if (c === "'") {
      let out = '';
      for (i++; ; ) {
        if (i >= text.length) throw new Error('unterminated string');
        const ch = text[i]!;
        if (ch === '\\') { const [e, next] = readEscape(text, i); out += e; i = next; }
        else if (ch === "'" && text[i + 1] === "'") { out += "'"; i += 2; }
        else if (ch === "'") { i++; return out; }
        else { out += ch; i++; }
      }
    }
    const token = /^[^\s,\]):}]+/.exec(text.slice(i))?.[0] ?? '';
    i += token.length;
    if (/^null$/i.test(token)) return null;
    if (/^(true|false)$/i.test(token)) return token.toLowerCase() === 'true';
    if (/^[-+]?\d+$/.test(token)) return BigInt(token);
    const n = Number(token);
    if (token === '' || !Number.isFinite(n)) throw new Error(`unexpected '${token || text[i] || 'end'}' at offset ${i}`);
    return n;
  };
  const result = value();
  ws();
  if (i !== text.length) throw new Error(`unexpected text at offset ${i}`);
  return result;
}

/** Declared types of the `{name:Type}` placeholders in a query. */
function placeholderTypes(sql: string): Map<string, string> {
  const types = new Map<string, string>();
  const open = /\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*:/g;
  for (let m = open.exec(sql); m; m = open.exec(sql)) {
    let depth = 0;
    let j = open.lastIndex;
    for (; j < sql.length; j++) {
      const c = sql[j];
      if (c === "'") j = sql.indexOf("'", j + 1) < 0 ? sql.length : sql.indexOf("'", j + 1);
      else if (c === '(') depth++;
      else if (c === ')') depth--;
      else if (c === '}' && depth === 0) break;
    }
    types.set(m[1]!, sql.slice(open.lastIndex, j).trim());
  }
  return types;
}

/**
 * Values for `session.queryBindAsync(sql, values)` from the wire values of the HTTP parameters.
 *
 * @throws BadQueryParameter when a composite value is not a readable literal.
 */
export function bindParams(sql: string, wire: ReadonlyMap<string, string>): Record<string, unknown> {
  const types = placeholderTypes(sql);
  const values: Record<string, unknown> = {};
  for (const [name, raw] of wire) {
    if (raw === '\\N') values[name] = null;
    else if (!/[\\\0\b\f\n\r\t]/.test(raw)) values[name] = raw;
    else {
      const type = (types.get(name) ?? 'String').replace(/^(?:(?:Nullable|LowCardinality)\()+/, '');
      if (!/^(Array|Map|Tuple|Nested)\b/.test(type)) values[name] = unescapeTsv(raw);
      else {
        try {
          values[name] = parseLiteral(raw);
        } catch (err) {
          throw new BadQueryParameter(name, `${(err as Error).message} in ${JSON.stringify(raw)} (${type})`);
        }
      }
    }
  }
  return values;
}
