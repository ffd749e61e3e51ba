/**
 * The structural core of the compatibility checker: can a reader on schema R read every value a
 * writer on schema W produces? It answers with the list of every reason it cannot (empty = yes).
 *
 * Precise rules (W = writer's shape, R = reader's shape):
 * - Values a writer produces: everything W accepts, except that a `strip` object (zod's default)
 *   carries only its declared keys (a zod writer's output drops the rest), optional and
 *   default-bearing keys may be absent (the exported JSON Schema lets producers omit them), and
 *   open objects (`looseObject`, `catchall`, `record`) may carry any other key with the
 *   additional-value shape.
 * - Values a reader accepts: everything R accepts; a `strip` reader ignores undeclared keys, a
 *   `reject` (strict) reader refuses them.
 * - A key R requires (not optional, no default) must be required by W too.
 * - Numbers: an integer writer fits a number reader (widening), not the reverse; bounds and
 *   `multipleOf` must be at least as permissive on the reader.
 * - Strings: a reader `format` or `pattern` the writer does not already guarantee narrows; length
 *   bounds as for numbers. Patterns are compared textually (regex inclusion is undecidable), so a
 *   changed pattern is reported even when it happens to accept a superset.
 * - Enums and literals: every value the writer can produce must be accepted by the reader.
 * - Unions: every writer member must be accepted by some reader member; a non-union writer must fit
 *   one reader member (findings come from the member with the same kind / discriminator).
 * - Anything this module does not understand (`opaque`) is compatible only with an identical schema.
 *
 * Refinements (`.refine`, `.superRefine`) are invisible in JSON Schema and thus to this check.
 */
import { describeShape, type Literal, type PropertyShape, type Shape } from './shape.js';

/** Why a reader cannot read some writer value, in writer/reader terms (see `check.ts` for codes). */
export type FindingKind =
  | 'missing_required'
  | 'may_be_absent'
  | 'unexpected_field'
  | 'additional_rejected'
  | 'type_mismatch'
  | 'int_required'
  | 'value_not_accepted'
  | 'null_not_accepted'
  | 'member_not_accepted'
  | 'narrowed_to_literals'
  | 'any_narrowed'
  | 'format_mismatch'
  | 'constraint'
  | 'unsupported';

/** One reason a reader cannot read a writer's value. */
export interface Finding {
  /** Dotted path of the value, `[]` for array items, `.*` for additional keys. */
  readonly path: string;
  /** What is wrong, in writer/reader terms. */
  readonly kind: FindingKind;
  /** Specifics for the human sentence (values, types, bounds). */
  readonly detail: string;
  /** For `may_be_absent`: the writer may omit the key because it declares a default. */
  readonly writerDefault?: boolean;
}

/** Joins an object key onto a path, quoting keys that are not identifiers. */
export function joinPath(path: string, key: string): string {
  const safe = /^[A-Za-z_$][A-Za-z0-9_$]*$/.test(key) ? key : JSON.stringify(key);
  if (path === '') return safe.startsWith('"') ? `[${safe}]` : safe;
  return safe.startsWith('"') ? `${path}[${safe}]` : `${path}.${safe}`;
}

/** Lists every reason a reader on `reader` cannot read a value written on `writer` (empty = compatible). */
export function compareShapes(writer: Shape, reader: Shape, path = ''): Finding[] {
  return new Comparer().compare(writer, reader, path);
}

class Comparer {
  /** Pairs of refs under comparison: revisiting one means the recursive case holds (coinduction). */
  private readonly active = new Set<string>();
  private readonly refIds = new WeakMap<object, number>();
  private nextId = 0;

  private idOf(shape: Shape): number {
    let id = this.refIds.get(shape);
    if (id === undefined) {
      id = this.nextId++;
      this.refIds.set(shape, id);
    }
    return id;
  }

  compare(w: Shape, r: Shape, path: string): Finding[] {
    if (w.kind === 'ref' || r.kind === 'ref') {
      const key = `${this.idOf(w)}:${this.idOf(r)}`;
      if (this.active.has(key)) return [];
      this.active.add(key);
      try {
        return this.compare(w.kind === 'ref' ? w.resolve() : w, r.kind === 'ref' ? r.resolve() : r, path);
      } finally {
        this.active.delete(key);
      }
    }
    if (r.kind === 'any' || w.kind === 'never') return [];
    if (w.kind === 'opaque' || r.kind === 'opaque') {
      if (w.kind === 'opaque' && r.kind === 'opaque' && JSON.stringify(w.schema) === JSON.stringify(r.schema)) return [];
      const reason = w.kind === 'opaque' ? w.reason : r.kind === 'opaque' ? r.reason : '';
      return [{ path, kind: 'unsupported', detail: reason }];
    }
    if (w.kind === 'union') return this.writerUnion(w.members, r, path);
    if (w.kind === 'literal') return this.literals(w.values, r, path);
    if (w.kind === 'any') return [{ path, kind: 'any_narrowed', detail: describeShape(r) }];
    if (r.kind === 'union') return this.readerUnion(w, r.members, path);
    if (r.kind === 'never') return [{ path, kind: 'type_mismatch', detail: `${describeShape(w)} -> no value` }];
    if (r.kind === 'literal') {
      return [{ path, kind: 'narrowed_to_literals', detail: `${describeShape(w)} -> ${describeShape(r)}` }];
    }
    if (w.kind !== r.kind) {
      return [{ path, kind: 'type_mismatch', detail: `${describeShape(w)} -> ${describeShape(r)}` }];
    }
    switch (w.kind) {
      case 'boolean':
        return [];
      case 'string':
        return this.strings(w, r as typeof w, path);
      case 'number':
        return this.numbers(w, r as typeof w, path);
      case 'array':
        return this.arrays(w, r as typeof w, path);
      case 'tuple':
        return this.tuples(w, r as typeof w, path);
      case 'object':
        return this.objects(w, r as typeof w, path);
    }
  }

  private writerUnion(members: readonly Shape[], r: Shape, path: string): Finding[] {
    const out: Finding[] = [];
    for (const m of members) {
      const found = this.compare(m, r, path);
      if (found.length === 0) continue;
      // A member of a different kind than anything the reader has is a removed/added member;
      // a member of the same kind gets the precise findings from inside it.
      const readerMembers = (r.kind === 'union' ? r.members : [r]).map(deref);
      const sameKind = readerMembers.filter((x) => kindOf(x) === kindOf(m));
      if (m.kind === 'object') {
        // A discriminated member whose tag no reader member accepts was removed/added as a whole.
        const tags = sameKind.map((x) => (x.kind === 'object' ? discriminators(m, x) : 'none'));
        if (tags.length > 0 && tags.every((t) => t === 'mismatch')) {
          out.push({ path, kind: 'member_not_accepted', detail: describeMember(m) });
          continue;
        }
      }
      if (m.kind === 'literal' || sameKind.length > 0) out.push(...found);
      else out.push({ path, kind: 'member_not_accepted', detail: describeShape(m) });
    }
    return out;
  }

  private literals(values: readonly Literal[], r: Shape, path: string): Finding[] {
    const rejected = values.filter((v) => !accepts(r, v));
    if (rejected.length === 0) return [];
    const out: Finding[] = [];
    if (rejected.includes(null)) out.push({ path, kind: 'null_not_accepted', detail: 'null' });
    const others = rejected.filter((v) => v !== null);
    if (others.length > 0) {
      const readerHasLiterals = literalValuesOf(r).length > 0;
      const readerHasType = others.every((v) => typeAccepts(r, v));
      const list = others.map((v) => JSON.stringify(v)).join(', ');
      if (readerHasLiterals || readerHasType) out.push({ path, kind: 'value_not_accepted', detail: list });
      else out.push({ path, kind: 'type_mismatch', detail: `${list} -> ${describeShape(r)}` });
    }
    return out;
  }

  private readerUnion(w: Shape, members: readonly Shape[], path: string): Finding[] {
    let candidates = members.filter((m) => kindOf(m) === kindOf(w));
    if (candidates.length === 0) {
      return [{ path, kind: 'member_not_accepted', detail: describeShape(w) }];
    }
    const results = candidates.map((c) => this.compare(w, c, path));
    if (results.some((f) => f.length === 0)) return [];
    if (candidates.length > 1 && w.kind === 'object') {
      // Discriminated unions: pick the reader member whose literal-valued keys the writer matches.
      const tagged = candidates.filter((c) => c.kind === 'object' && discriminators(w, c) === 'match');
      if (tagged.length === 1) candidates = tagged;
    }
    if (candidates.length === 1) return this.compare(w, candidates[0]!, path);
    return [{ path, kind: 'member_not_accepted', detail: describeShape(w) }];
  }

  private strings(w: Extract<Shape, { kind: 'string' }>, r: Extract<Shape, { kind: 'string' }>, path: string): Finding[] {
    const out: Finding[] = [];
    const formatChanged = r.format !== undefined && r.format !== w.format;
    if (formatChanged) {
      out.push({ path, kind: 'format_mismatch', detail: `${w.format ?? 'any string'} -> ${r.format}` });
    }
    if (!formatChanged && r.pattern !== undefined && r.pattern !== w.pattern) {
      out.push({ path, kind: 'constraint', detail: `pattern ${w.pattern === undefined ? 'none' : `/${w.pattern}/`} -> /${r.pattern}/` });
    }
    out.push(...bound(path, 'minLength', w.minLength, r.minLength, 'min'));
    out.push(...bound(path, 'maxLength', w.maxLength, r.maxLength, 'max'));
    return out;
  }

  private numbers(w: Extract<Shape, { kind: 'number' }>, r: Extract<Shape, { kind: 'number' }>, path: string): Finding[] {
    const out: Finding[] = [];
    if (r.integer && !w.integer) out.push({ path, kind: 'int_required', detail: 'number -> integer' });
    // An integer writer is "bounded" by zod's safe-integer range; compare effective bounds.
    const lo = (s: typeof w) => lower(s);
    const hi = (s: typeof w) => upper(s);
    const [wl, rl] = [lo(w), lo(r)];
    if (rl.value > wl.value || (rl.value === wl.value && rl.exclusive && !wl.exclusive)) {
      out.push({ path, kind: 'constraint', detail: `minimum ${fmtBound(wl, '>')} -> ${fmtBound(rl, '>')}` });
    }
    const [wh, rh] = [hi(w), hi(r)];
    if (rh.value < wh.value || (rh.value === wh.value && rh.exclusive && !wh.exclusive)) {
      out.push({ path, kind: 'constraint', detail: `maximum ${fmtBound(wh, '<')} -> ${fmtBound(rh, '<')}` });
    }
    if (r.multipleOf !== undefined && (w.multipleOf === undefined || !isMultiple(w.multipleOf, r.multipleOf))) {
      if (!(r.integer && r.multipleOf === 1 && w.integer)) {
        out.push({ path, kind: 'constraint', detail: `multipleOf ${w.multipleOf ?? 'none'} -> ${r.multipleOf}` });
      }
    }
    return out;
  }

  private arrays(w: Extract<Shape, { kind: 'array' }>, r: Extract<Shape, { kind: 'array' }>, path: string): Finding[] {
    return [
      ...bound(path, 'minItems', w.minItems, r.minItems, 'min'),
      ...bound(path, 'maxItems', w.maxItems, r.maxItems, 'max'),
      ...this.compare(w.items, r.items, `${path}[]`),
    ];
  }

  private tuples(w: Extract<Shape, { kind: 'tuple' }>, r: Extract<Shape, { kind: 'tuple' }>, path: string): Finding[] {
    const out: Finding[] = [];
    // Positions the writer may fill: its prefix, then (when it has a rest) any later position.
    const n = Math.max(w.prefix.length, r.prefix.length);
    for (let i = 0; i < n; i++) {
      const ws = w.prefix[i] ?? w.rest;
      if (ws === null) continue;
      const rs = r.prefix[i] ?? r.rest;
      const p = `${path}[${i}]`;
      if (rs === null) out.push({ path: p, kind: 'unexpected_field', detail: `tuple position ${i}` });
      else out.push(...this.compare(ws, rs, p));
    }
    if (w.rest !== null && r.prefix.length <= w.prefix.length && r.rest !== null) {
      out.push(...this.compare(w.rest, r.rest, `${path}[]`));
    } else if (w.rest !== null && r.rest === null && r.prefix.length <= w.prefix.length) {
      out.push({ path: `${path}[${w.prefix.length}]`, kind: 'unexpected_field', detail: 'extra tuple elements' });
    }
    if (r.minItems > w.minItems) {
      out.push({ path, kind: 'missing_required', detail: `at least ${r.minItems} elements (writers may send ${w.minItems})` });
    }
    return out;
  }

  private objects(w: Extract<Shape, { kind: 'object' }>, r: Extract<Shape, { kind: 'object' }>, path: string): Finding[] {
    const out: Finding[] = [];
    const wOpen = typeof w.additional === 'object' ? w.additional : null;
    for (const [name, rp] of Object.entries(r.properties)) {
      const p = joinPath(path, name);
      const wp: PropertyShape | undefined = w.properties[name];
      if (wp) {
        if (rp.required && !wp.required) {
          out.push({ path: p, kind: 'may_be_absent', detail: describeShape(rp.shape), writerDefault: wp.hasDefault });
        }
        out.push(...this.compare(wp.shape, rp.shape, p));
        continue;
      }
      if (wOpen) out.push(...this.compare(wOpen, rp.shape, p));
      if (rp.required) out.push({ path: p, kind: 'missing_required', detail: describeShape(rp.shape) });
    }
    for (const [name, wp] of Object.entries(w.properties)) {
      if (name in r.properties) continue;
      const p = joinPath(path, name);
      if (r.additional === 'reject') out.push({ path: p, kind: 'unexpected_field', detail: describeShape(wp.shape) });
      else if (typeof r.additional === 'object') {
        out.push(...this.compare(wp.shape, r.additional, p));
        if (r.propertyNames && !accepts(r.propertyNames, name)) {
          out.push({ path: p, kind: 'unexpected_field', detail: `key "${name}" not allowed by the reader's key schema` });
        }
      }
    }
    if (wOpen) {
      const p = path === '' ? '*' : `${path}.*`;
      if (r.additional === 'reject') out.push({ path: p, kind: 'additional_rejected', detail: describeShape(wOpen) });
      else if (typeof r.additional === 'object') {
        out.push(...this.compare(wOpen, r.additional, p));
        if (r.propertyNames) {
          out.push(...this.compare(w.propertyNames ?? { kind: 'string' }, r.propertyNames, `${p} (key)`));
        }
      }
    }
    return out;
  }
}

function deref(s: Shape): Shape {
  return s.kind === 'ref' ? deref(s.resolve()) : s;
}

/** The coarse kind used to pair union members (`literal` values count as their JSON type). */
function kindOf(s: Shape): string {
  if (s.kind === 'ref') return kindOf(s.resolve());
  if (s.kind === 'literal') {
    const types = new Set(s.values.map((v) => (v === null ? 'null' : typeof v === 'number' ? 'number' : typeof v)));
    return types.size === 1 ? [...types][0]! : 'literal';
  }
  return s.kind;
}

function literalValuesOf(s: Shape): Literal[] {
  if (s.kind === 'literal') return [...s.values];
  if (s.kind === 'union') return s.members.flatMap(literalValuesOf);
  if (s.kind === 'ref') return literalValuesOf(s.resolve());
  return [];
}

/** True when the reader has a non-literal member of the value's JSON type (e.g. `string`). */
function typeAccepts(s: Shape, v: Literal): boolean {
  if (s.kind === 'union') return s.members.some((m) => typeAccepts(m, v));
  if (s.kind === 'ref') return typeAccepts(s.resolve(), v);
  return (s.kind === 'string' && typeof v === 'string') || (s.kind === 'number' && typeof v === 'number') || (s.kind === 'boolean' && typeof v === 'boolean');
}

/** Does a shape accept this primitive value? Conservative: an unchecked format counts as refusing. */
export function accepts(s: Shape, v: Literal): boolean {
  switch (s.kind) {
    case 'any':
      return true;
    case 'never':
    case 'object':
    case 'array':
    case 'tuple':
    case 'opaque':
      return false;
    case 'ref':
      return accepts(s.resolve(), v);
    case 'boolean':
      return typeof v === 'boolean';
    case 'literal':
      return s.values.some((x) => Object.is(x, v) || x === v);
    case 'union':
      return s.members.some((m) => accepts(m, v));
    case 'string': {
      if (typeof v !== 'string') return false;
      if (s.minLength !== undefined && [...v].length < s.minLength) return false;
      if (s.maxLength !== undefined && [...v].length > s.maxLength) return false;
      if (s.pattern !== undefined) {
        try {
          if (!new RegExp(s.pattern).test(v)) return false;
        } catch {
          return false;
        }
      } else if (s.format !== undefined) return false;
      return true;
    }
    case 'number': {
      if (typeof v !== 'number' || !Number.isFinite(v)) return false;
      if (s.integer && !Number.isInteger(v)) return false;
      const lo = lower(s);
      const hi = upper(s);
      if (v < lo.value || (lo.exclusive && v === lo.value)) return false;
      if (v > hi.value || (hi.exclusive && v === hi.value)) return false;
      if (s.multipleOf !== undefined && !isMultiple(v, s.multipleOf)) return false;
      return true;
    }
  }
}

/**
 * Compares the literal-valued keys two objects share (the discriminators of a discriminated
 * union): `none` when they share none, else whether every writer value is accepted.
 */
function discriminators(w: Extract<Shape, { kind: 'object' }>, r: Extract<Shape, { kind: 'object' }>): 'none' | 'match' | 'mismatch' {
  let shared = 0;
  for (const [name, rp] of Object.entries(r.properties)) {
    const wp = w.properties[name];
    if (rp.shape.kind !== 'literal' || !wp || wp.shape.kind !== 'literal') continue;
    shared++;
    if (!wp.shape.values.every((v) => accepts(rp.shape, v))) return 'mismatch';
  }
  return shared > 0 ? 'match' : 'none';
}

/** `object with method "iban"`: names a union member by its discriminator values. */
function describeMember(w: Extract<Shape, { kind: 'object' }>): string {
  const tags = Object.entries(w.properties)
    .filter(([, p]) => p.shape.kind === 'literal')
    .map(([name, p]) => `${name} ${describeShape(p.shape)}`);
  return tags.length > 0 ? `object with ${tags.join(', ')}` : 'object';
}

interface Bound {
  readonly value: number;
  readonly exclusive: boolean;
}

function lower(s: Extract<Shape, { kind: 'number' }>): Bound {
  const a: Bound = { value: s.minimum ?? -Infinity, exclusive: false };
  const b: Bound = { value: s.exclusiveMinimum ?? -Infinity, exclusive: true };
  if (b.value > a.value) return b;
  return a;
}

function upper(s: Extract<Shape, { kind: 'number' }>): Bound {
  const a: Bound = { value: s.maximum ?? Infinity, exclusive: false };
  const b: Bound = { value: s.exclusiveMaximum ?? Infinity, exclusive: true };
  if (b.value < a.value) return b;
  return a;
}

function fmtBound(b: Bound, op: '>' | '<'): string {
  if (!Number.isFinite(b.value)) return 'none';
  return `${op}${b.exclusive ? '' : '='} ${b.value}`;
}

function isMultiple(value: number, of: number): boolean {
  const q = value / of;
  return Math.abs(q - Math.round(q)) < 1e-9;
}

function bound(path: string, name: string, w: number | undefined, r: number | undefined, side: 'min' | 'max'): Finding[] {
  if (r === undefined) return [];
  const tighter = w === undefined || (side === 'min' ? r > w : r < w);
  return tighter ? [{ path, kind: 'constraint', detail: `${name} ${w ?? 'none'} -> ${r}` }] : [];
}
