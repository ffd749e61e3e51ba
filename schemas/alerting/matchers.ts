/**
 * Label matchers with Alertmanager's grammar and semantics (v0.35, default "fallback" mode).
 *
 * Alertmanager parses every matcher twice: with the UTF-8 parser (`matcher/parse`) and with the
 * classic parser (`pkg/labels`). When the UTF-8 parser fails, the classic result is used; when both
 * succeed with different matchers, the classic result wins; when both fail, the input is refused
 * (`matcher/compat/parse.go`, `FallbackMatcherParser`/`FallbackMatchersParser`). This module does
 * the same, so `msg="say \"hi\""` means `say "hi"`, `severity = "critical"` is accepted, regexes
 * are fully anchored (`^(?:re)$`) and use RE2 syntax (through `re2js`, the JavaScript port of
 * RE2/J), a missing label reads as the empty string, and a quoted label name may hold any UTF-8.
 * A refusal names the column and the expected form (the UTF-8 parser's positions, which the
 * classic parser does not report).
 *
 * Pure (no I/O, no clock): importable from workflow code.
 */
import { RE2JS } from 're2js';

/** The four Alertmanager match operators. */
export type MatchOp = '=' | '!=' | '=~' | '!~';

/** One parsed matcher. `text` is its canonical form (Alertmanager's `Matcher.String()`), which parses back to the same matcher. */
export interface Matcher {
  /** Label name (any non-empty UTF-8 when quoted). */
  label: string;
  op: MatchOp;
  /** Value after unescaping (for `=~`/`!~`: the RE2 pattern, unanchored as written). */
  value: string;
  /** Canonical text, e.g. `msg="say \"hi\""`. */
  text: string;
}

/** The form every refusal suggests. */
export const matcherForm = 'name=value, name!=value, name=~"regex" or name!~"regex" (values with spaces, commas or quotes in double quotes, escapes \\" \\\\ \\n)';

/** A matcher the grammar refuses; `column` is 1-based (code points), `message` says what was expected. */
export class MatcherSyntaxError extends Error {
  /** The whole input. */
  readonly input: string;
  /** 1-based column (code points) where the problem starts. */
  readonly column: number;
  constructor(input: string, column: number, detail: string) {
    super(`matcher ${JSON.stringify(input)}: column ${column}: ${detail}; expected ${matcherForm}`);
    this.name = 'MatcherSyntaxError';
    this.input = input;
    this.column = column;
  }
}

// ---------------------------------------------------------------------------------------------
// UTF-8 parser (matcher/parse): a lexer over code points and a small state machine.

type TokenKind = '{' | '}' | ',' | '=' | '!=' | '=~' | '!~' | 'quoted' | 'unquoted' | 'eof';
interface Token {
  kind: TokenKind;
  value: string;
  /** 0-based code point column of the token's first character. */
  col: number;
}

const reservedChars = new Set(['{', '}', '!', '=', '~', ',', '\\', '"', "'", '`']);
/** Go's `unicode.IsSpace`: White_Space property (Latin-1 and the Unicode Z/Pattern spaces). */
const isSpace = (c: string): boolean => /^[\t\n\v\f\r \u0085\u00A0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]$/u.test(c);
const isReserved = (c: string): boolean => isSpace(c) || reservedChars.has(c);

class Utf8Failure {
  constructor(
    readonly col: number,
    readonly detail: string,
  ) {}
}

function lex(input: string): Token[] | Utf8Failure {
  const cps = [...input];
  const tokens: Token[] = [];
  let i = 0;
  while (i < cps.length) {
    const c = cps[i]!;
    if (c === '{' || c === '}' || c === ',') {
      tokens.push({ kind: c, value: c, col: i });
      i++;
    } else if (c === '=' || c === '!') {
      const next = cps[i + 1];
      if (c === '!') {
        if (next === '=') tokens.push({ kind: '!=', value: '!=', col: i });
        else if (next === '~') tokens.push({ kind: '!~', value: '!~', col: i });
        else return new Utf8Failure(i, `"!" must be followed by "=" or "~"`);
        i += 2;
      } else if (next === '~') {
        tokens.push({ kind: '=~', value: '=~', col: i });
        i += 2;
      } else {
        tokens.push({ kind: '=', value: '=', col: i });
        i++;
      }
    } else if (c === '"') {
      const start = i;
      let escaped = false;
      let j = i + 1;
      for (; j < cps.length; j++) {
        const d = cps[j]!;
        if (escaped) escaped = false;
        else if (d === '\\') escaped = true;
        else if (d === '"') break;
      }
      if (j >= cps.length) return new Utf8Failure(start, `${cps.slice(start).join('')}: missing closing double quote`);
      tokens.push({ kind: 'quoted', value: cps.slice(start, j + 1).join(''), col: start });
      i = j + 1;
    } else if (!isReserved(c)) {
      const start = i;
      while (i < cps.length && !isReserved(cps[i]!)) i++;
      tokens.push({ kind: 'unquoted', value: cps.slice(start, i).join(''), col: start });
    } else if (isSpace(c)) {
      i++;
    } else {
      return new Utf8Failure(i, `${c}: not allowed here (a character such as ~ ' \` \\ must be inside double quotes)`);
    }
  }
  tokens.push({ kind: 'eof', value: '', col: cps.length });
  return tokens;
}

/** Go's `strconv.Unquote` for a double-quoted string, then the UTF-8 validity check of `token.unquote`. */
function goUnquote(quoted: string): string | undefined {
  const body = quoted.slice(1, -1);
  if (body.includes('\n')) return undefined;
  const bytes: number[] = [];
  const enc = new TextEncoder();
  const pushRune = (cp: number) => bytes.push(...enc.encode(String.fromCodePoint(cp)));
  const cps = [...body];
  for (let i = 0; i < cps.length; i++) {
    const c = cps[i]!;
    if (c === '"') return undefined;
    if (c !== '\\') {
      pushRune(c.codePointAt(0)!);
      continue;
    }
    const e = cps[++i];
    if (e === undefined) return undefined;
    const simple: Record<string, number> = { a: 7, b: 8, f: 12, n: 10, r: 13, t: 9, v: 11, '\\': 92, '"': 34 };
    if (e in simple) {
      bytes.push(simple[e]!);
      continue;
    }
    const hexLen = e === 'x' ? 2 : e === 'u' ? 4 : e === 'U' ? 8 : 0;
    if (hexLen > 0) {
      const hex = cps.slice(i + 1, i + 1 + hexLen).join('');
      if (!new RegExp(`^[0-9a-fA-F]{${hexLen}}$`).test(hex)) return undefined;
      const v = parseInt(hex, 16);
      i += hexLen;
      if (e === 'x') bytes.push(v);
      else if (v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff)) return undefined;
      else pushRune(v);
      continue;
    }
    if (e >= '0' && e <= '7') {
      const oct = cps.slice(i, i + 3).join('');
      if (!/^[0-7]{3}$/.test(oct)) return undefined;
      const v = parseInt(oct, 8);
      if (v > 255) return undefined;
      bytes.push(v);
      i += 2;
      continue;
    }
    return undefined;
  }
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(new Uint8Array(bytes));
  } catch {
    return undefined;
  }
}

interface RawMatcher {
  label: string;
  op: MatchOp;
  value: string;
}

function parseUtf8(input: string): RawMatcher[] | Utf8Failure {
  const tokens = lex(input);
  if (tokens instanceof Utf8Failure) return tokens;
  let k = 0;
  const peek = () => tokens[k]!;
  const describe = (t: Token) => (t.kind === 'eof' ? 'end of input' : `"${t.value}"`);
  const out: RawMatcher[] = [];
  const hasOpen = peek().kind === '{';
  if (hasOpen) k++;
  const value = (t: Token, what: string): string | Utf8Failure => {
    if (t.kind === 'unquoted') return t.value;
    const v = goUnquote(t.value);
    return v ?? new Utf8Failure(t.col, `${t.value}: invalid ${what} (escapes allowed in double quotes: \\" \\\\ \\n \\t \\xHH \\uHHHH)`);
  };
  if (!(peek().kind === '}' || peek().kind === 'eof')) {
    for (;;) {
      const name = peek();
      if (name.kind !== 'quoted' && name.kind !== 'unquoted') return new Utf8Failure(name.col, `unexpected ${describe(name)}, expected a label name`);
      k++;
      const label = value(name, 'label name');
      if (label instanceof Utf8Failure) return label;
      const op = peek();
      if (op.kind !== '=' && op.kind !== '!=' && op.kind !== '=~' && op.kind !== '!~') {
        return new Utf8Failure(op.col, `unexpected ${describe(op)}, expected an operator such as =, !=, =~ or !~`);
      }
      k++;
      const val = peek();
      if (val.kind !== 'quoted' && val.kind !== 'unquoted') return new Utf8Failure(val.col, `unexpected ${describe(val)}, expected a label value`);
      k++;
      const v = value(val, 'label value');
      if (v instanceof Utf8Failure) return v;
      const regexError = op.kind === '=~' || op.kind === '!~' ? compileError(v) : undefined;
      if (regexError !== undefined) return new Utf8Failure(val.col, `${val.value}: invalid regular expression: ${regexError}`);
      out.push({ label, op: op.kind, value: v });
      const end = peek();
      if (end.kind === 'eof' || end.kind === '}') break;
      if (end.kind !== ',') return new Utf8Failure(end.col, `unexpected ${describe(end)}, expected a comma or a closing brace`);
      k++;
      const after = peek();
      if (after.kind === 'eof' || after.kind === '}') break;
      if (after.kind !== 'quoted' && after.kind !== 'unquoted') return new Utf8Failure(after.col, `unexpected ${describe(after)}, expected a matcher or a closing brace after the comma`);
    }
  }
  const close = peek();
  if (hasOpen) {
    if (close.kind !== '}') return new Utf8Failure(close.col, `unexpected ${describe(close)}, expected a closing brace`);
    k++;
  } else if (close.kind === '}') {
    return new Utf8Failure(close.col, `"}" without an opening brace`);
  }
  const rest = peek();
  if (rest.kind !== 'eof') return new Utf8Failure(rest.col, `unexpected ${describe(rest)}, expected end of input`);
  return out;
}

// ---------------------------------------------------------------------------------------------
// Classic parser (pkg/labels/parse.go).

// Go's `\s` is ASCII [\t\n\f\r ]; `(?s).*?` lets values span lines.
const classicPattern = /^[\t\n\f\r ]*([a-zA-Z_:][a-zA-Z0-9_:]*)[\t\n\f\r ]*(=~|=|!=|!~)[\t\n\f\r ]*([\s\S]*?)[\t\n\f\r ]*$/;

function parseClassicOne(s: string): RawMatcher | undefined {
  const m = classicPattern.exec(s);
  if (!m) return undefined;
  let raw = m[3]!;
  let expectTrailingQuote = false;
  if (raw.startsWith('"')) {
    raw = raw.slice(1);
    expectTrailingQuote = true;
  }
  const cps = [...raw];
  let value = '';
  let escaped = false;
  for (let i = 0; i < cps.length; i++) {
    const r = cps[i]!;
    const last = i === cps.length - 1;
    if (escaped) {
      escaped = false;
      if (r === 'n') value += '\n';
      else if (r === '"' || r === '\\') value += r;
      else value += `\\${r}`; // a spurious escape keeps its backslash
      continue;
    }
    if (r === '\\') {
      if (!last) escaped = true;
      else value += '\\';
    } else if (r === '"') {
      if (!expectTrailingQuote || !last) return undefined;
      expectTrailingQuote = false;
    } else {
      value += r;
    }
  }
  if (expectTrailingQuote) return undefined;
  const op = m[2] as MatchOp;
  if ((op === '=~' || op === '!~') && compileError(value) !== undefined) return undefined;
  return { label: m[1]!, op, value };
}

function parseClassicMany(input: string): RawMatcher[] | undefined {
  let s = input.startsWith('{') ? input.slice(1) : input;
  if (s.endsWith('}')) s = s.slice(0, -1);
  const tokens: string[] = [];
  let insideQuotes = false;
  let escaped = false;
  let token = '';
  for (const r of s) {
    if (r === ',') {
      if (!insideQuotes) {
        tokens.push(token);
        token = '';
        continue;
      }
      // Inside quotes a comma leaves `escaped` as it was (as the Go switch does).
    } else if (r === '"') {
      if (!escaped) insideQuotes = !insideQuotes;
      else escaped = false;
    } else if (r === '\\') {
      escaped = !escaped;
    } else {
      escaped = false;
    }
    token += r;
  }
  const tail = token.replace(/^[\s\u0085]+|[\s\u0085]+$/gu, '');
  if (tail !== '') tokens.push(tail);
  const out: RawMatcher[] = [];
  for (const t of tokens) {
    const m = parseClassicOne(t);
    if (!m) return undefined;
    out.push(m);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Regexes, canonical text, public API.

const compiled = new Map<string, RE2JS>();
function compileError(pattern: string): string | undefined {
  try {
    anchored(pattern);
    return undefined;
  } catch (err) {
    return err instanceof Error ? err.message : String(err);
  }
}
/** The fully anchored RE2 program of a regex matcher value, cached. */
function anchored(pattern: string): RE2JS {
  let re = compiled.get(pattern);
  if (!re) {
    re = RE2JS.compile(`^(?:${pattern})$`);
    if (compiled.size > 10_000) compiled.clear();
    compiled.set(pattern, re);
  }
  return re;
}

/** Go's `strconv.Quote` (printable runes kept, others escaped). */
function goQuote(s: string): string {
  let out = '"';
  for (const c of s) {
    const cp = c.codePointAt(0)!;
    if (c === '"' || c === '\\') out += `\\${c}`;
    else if (c === ' ' || /^[\p{L}\p{M}\p{N}\p{P}\p{S}]$/u.test(c)) out += c;
    else if (c === '\x07') out += '\\a';
    else if (c === '\b') out += '\\b';
    else if (c === '\f') out += '\\f';
    else if (c === '\n') out += '\\n';
    else if (c === '\r') out += '\\r';
    else if (c === '\t') out += '\\t';
    else if (c === '\v') out += '\\v';
    else if (cp < 0x80) out += `\\x${cp.toString(16).padStart(2, '0')}`;
    else if (cp < 0x10000) out += `\\u${cp.toString(16).padStart(4, '0')}`;
    else out += `\\U${cp.toString(16).padStart(8, '0')}`;
  }
  return `${out}"`;
}

/**
 * Alertmanager's `Matcher.String()` (pkg/labels/matcher.go): the name quoted (Go `strconv.Quote`)
 * only when it holds reserved characters, the value in double quotes with `\\`, `\n` and `\"`
 * escaped. The result parses back to the same matcher, here and in Alertmanager.
 */
export function formatMatcher(m: Pick<Matcher, 'label' | 'op' | 'value'>): string {
  return canonical(m);
}

function canonical(m: RawMatcher): string {
  if ([...m.label].some(isReserved)) return `${goQuote(m.label)}${m.op}${goQuote(m.value)}`;
  return `${m.label}${m.op}"${m.value.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"')}"`;
}

const same = (a: readonly RawMatcher[], b: readonly RawMatcher[]) =>
  a.length === b.length && a.every((m, i) => m.label === b[i]!.label && m.op === b[i]!.op && m.value === b[i]!.value);

const finish = (ms: RawMatcher[]): Matcher[] => ms.map((m) => ({ ...m, text: canonical(m) }));

function refuse(input: string, failure: Utf8Failure): never {
  throw new MatcherSyntaxError(input, failure.col + 1, failure.detail);
}

/**
 * Parses a list of matchers, optionally in braces and separated by commas (`{a="1", b=~"x|y"}`),
 * as Alertmanager's `compat.Matchers` in its default mode. An empty input yields `[]`.
 * @throws {MatcherSyntaxError} when neither of Alertmanager's parsers accepts the input.
 */
export function parseMatchers(input: string): Matcher[] {
  const utf8 = parseUtf8(input);
  const classic = parseClassicMany(input);
  if (utf8 instanceof Utf8Failure) {
    if (classic === undefined) refuse(input, utf8);
    return finish(classic);
  }
  if (classic !== undefined && !same(utf8, classic)) return finish(classic);
  return finish(utf8);
}

/**
 * Parses exactly one matcher (`severity = "critical"`), as Alertmanager's `compat.Matcher`
 * (used for silences' and amtool's single matchers): braces are refused.
 * @throws {MatcherSyntaxError} when the input is not one matcher.
 */
export function parseMatcher(input: string): Matcher {
  if (input.startsWith('{') || input.endsWith('}')) {
    throw new MatcherSyntaxError(input, input.startsWith('{') ? 1 : [...input].length, 'braces are not allowed around a single matcher');
  }
  const parsed = parseUtf8(input);
  const utf8 =
    parsed instanceof Utf8Failure || parsed.length === 1
      ? parsed
      : new Utf8Failure(0, parsed.length === 0 ? 'no matcher found' : `expected one matcher, found ${parsed.length}`);
  const classic = parseClassicOne(input);
  let result: RawMatcher;
  if (utf8 instanceof Utf8Failure) {
    if (classic === undefined) refuse(input, utf8);
    result = classic;
  } else {
    result = classic !== undefined && !same(utf8, [classic]) ? classic : utf8[0]!;
  }
  return finish([result])[0]!;
}

/** True when the matcher accepts the labels; a missing label reads as the empty string (Alertmanager semantics). */
export function matches(m: Pick<Matcher, 'label' | 'op' | 'value'>, labels: Readonly<Record<string, string>>): boolean {
  const v = Object.hasOwn(labels, m.label) ? labels[m.label]! : '';
  switch (m.op) {
    case '=':
      return v === m.value;
    case '!=':
      return v !== m.value;
    case '=~':
      return anchored(m.value).matcher(v).matches();
    case '!~':
      return !anchored(m.value).matcher(v).matches();
  }
}

/** True when every matcher accepts the labels (an empty list accepts everything). */
export function matchesAll(matchers: readonly Pick<Matcher, 'label' | 'op' | 'value'>[], labels: Readonly<Record<string, string>>): boolean {
  return matchers.every((m) => matches(m, labels));
}
