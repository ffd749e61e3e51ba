/**
 * How the embedded endpoint hands HTTP `param_<name>` wire values to the engine: byte for byte in a
 * `SET param_...` statement (the engine parses them as a server does, see the conformance suite),
 * and which placeholders a query needs.
 */
import { describe, expect, it } from 'vitest';
import { missingParameter, parameterStatement, placeholderNames, quoteLiteral } from '../../infra/local/clickhouse/params.js';

describe('query parameters for the engine', () => {
  it('quotes wire values byte for byte, backslashes, quotes, tabs and all', () => {
    expect(quoteLiteral("a\\tb'c\td\\")).toBe("'a\\\\tb\\'c\td\\\\'");
    expect(parameterStatement(new Map([['s', 'x\\ty'], ['n', '12']]))).toBe("SET param_s = 'x\\\\ty', param_n = '12'");
    expect(parameterStatement(new Map())).toBeUndefined();
    expect(parameterStatement(new Map([['bad name', '1']]))).toBeUndefined();
  });

  it('finds placeholders outside strings, quoted identifiers and comments', () => {
    expect([...placeholderNames("SELECT {a:String}, '{b:String}', `{c:UInt8}` -- {d:UInt8}\n, {e : Array(String)} /* {f:UInt8} */")]).toEqual(['a', 'e']);
    expect(missingParameter('SELECT {a:UInt8} + {b:UInt8}', new Map([['a', '1']]))).toBe('b');
    expect(missingParameter('SELECT {a:UInt8}', new Map([['a', '1']]))).toBeUndefined();
  });
});
