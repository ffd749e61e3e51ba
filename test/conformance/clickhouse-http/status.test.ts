/**
 * The HTTP status a server sends for each class of exception (the server's
 * exceptionCodeToHTTPStatus): 400 for bad input, 404 for unknown things, 408 for timeouts, 403
 * for authentication, 500 otherwise; each with its X-ClickHouse-Exception-Code.
 */
import { describe, expect, it } from 'vitest';
import { ch, exceptionText } from './client.js';

const cases: [string, string, Record<string, string>, number, number, string][] = [
  ['bad arguments', "SELECT toDateTime('2020-01-01', 'No/Such_Zone')", {}, 400, 36, 'BAD_ARGUMENTS'],
  ['bad cast to UUID', "SELECT CAST('x' AS UUID)", {}, 400, 376, 'CANNOT_PARSE_UUID'],
  ['unparsable number', "SELECT toDecimal32('x', 2)", {}, 400, 6, 'CANNOT_PARSE_TEXT'],
  ['unknown function', 'SELECT no_such_function(1)', {}, 404, 46, 'UNKNOWN_FUNCTION'],
  ['unknown identifier', 'SELECT no_such_column', {}, 404, 47, 'UNKNOWN_IDENTIFIER'],
  ['unknown database', 'SELECT 1 FROM no_such_db_x.t', {}, 404, 81, 'UNKNOWN_DATABASE'],
  ['unknown setting', 'SELECT 1', { no_such_setting_x: '1' }, 404, 115, 'UNKNOWN_SETTING'],
  ['unknown format', 'SELECT 1 FORMAT NoSuchFormat', {}, 404, 73, 'UNKNOWN_FORMAT'],
  ['timeout', 'SELECT count() FROM numbers(100000000000) WHERE sipHash64(number) = 1', { max_execution_time: '1' }, 408, 159, 'TIMEOUT_EXCEEDED'],
  ['type mismatch in arguments', "SELECT arrayElement([1, 2], 'a')", {}, 500, 43, 'ILLEGAL_TYPE_OF_ARGUMENT'],
  ['function throws', 'SELECT throwIf(1)', {}, 500, 395, 'FUNCTION_THROW_IF_VALUE_IS_NON_ZERO'],
];

describe('HTTP status per exception code', () => {
  it.each(cases)('%s', async (_name, sql, params, status, code, name) => {
    const answer = await ch(sql, { params });
    expect(answer.status).toBe(status);
    expect(answer.code).toBe(String(code));
    expect(answer.text).toMatch(exceptionText(code, name));
  });
});
