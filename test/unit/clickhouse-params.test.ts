/**
 * How the embedded endpoint turns HTTP `param_<name>` wire values into values for chdb's binder:
 * untouched when they have no escapes, unescaped for scalar types, parsed for composite literals.
 */
import { describe, expect, it } from 'vitest';
import { BadQueryParameter, bindParams } from '../../infra/local/clickhouse/params.js';

const bind = (sql: string, wire: Record<string, string>): Record<string, unknown> => bindParams(sql, new Map(Object.entries(wire)));

describe('bindParams', () => {
  it('passes values without escapes through unchanged, whatever the type', () => {
    expect(bind('SELECT {a:Array(String)}, {n:UInt64}', { a: "['x','y']", n: '18446744073709551615' }))
      .toEqual({ a: "['x','y']", n: '18446744073709551615' });
  });

  it('maps \\N to NULL and unescapes scalar values as the server reads them', () => {
    expect(bind("SELECT {s:String}, {t:DateTime64(3, 'UTC')}, {z:Nullable(String)}", { s: "a\\tb\\'c\\\\d\\x41", t: '2024-01-01\\ 00:00:00', z: '\\N' }))
      .toEqual({ s: "a\tb'c\\dA", t: '2024-01-01 00:00:00', z: null });
  });

  it('parses composite literals with escapes into arrays, maps and tuples', () => {
    const out = bind('SELECT {a:Array(Array(String))}, {m:Map(String, Array(Int64))}, {t:LowCardinality(Tuple(String, Nullable(UInt8), Float64))}', {
      a: "[['it\\'s', 'it''s'], [], ['back\\\\slash']]",
      m: "{'k\\\\':[-1, 2], 'e':[]}",
      t: "('x\\ty', NULL, -1.5)",
    });
    expect(out.a).toEqual([["it's", "it's"], [], ['back\\slash']]);
    expect(out.m).toEqual(new Map([['k\\', [-1n, 2n]], ['e', []]]));
    expect(out.t).toMatchObject({ values: ['x\ty', null, -1.5] });
    expect((out.t as object).constructor.name).toBe('TupleParam');
  });

  it('names the parameter when a composite literal cannot be read', () => {
    expect(() => bind('SELECT {a:Array(String)}', { a: "['open\\\\" })).toThrow(BadQueryParameter);
    expect(() => bind('SELECT {a:Array(String)}', { a: "['open\\\\" })).toThrow(/query parameter 'a'.*unterminated string/);
  });
});
