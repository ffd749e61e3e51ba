/**
 * Query parameters (`param_<name>`, https://clickhouse.com/docs/interfaces/cli#cli-queries-with-parameters):
 * the server parses each value in the Escaped (TSV) text format with the placeholder's type, and
 * refuses what does not parse completely. Values with escapes, NULL, composite types, and the
 * refusals: raw tab/newline (457), trailing backslash (25), per-type parse errors, unset (456).
 * Also parameters too long for an ordinary header: URLs up to 1 MiB.
 */
import { describe, expect, it } from 'vitest';
import { ch, exceptionText, ok } from './client.js';

const bind = (sql: string, params: Record<string, string>): ReturnType<typeof ch> =>
  ch(sql, { params: Object.fromEntries(Object.entries(params).map(([k, v]) => [`param_${k}`, v])) });

describe('query parameters', () => {
  it('binds escaped values, \\N and composite literals as the server reads them', async () => {
    const answer = await bind(
      "SELECT {s:String} = concat('a', char(9), 'b''c\\\\'), {n:Nullable(String)} IS NULL, {a:Array(String)}, {m:Map(String, UInt8)}, {t:Tuple(String, UInt8)}, {d:DateTime64(3, 'UTC')}, {u:UInt64}",
      { s: "a\\tb'c\\\\", n: '\\N', a: "['x','it\\'s']", m: "{'k':1}", t: "('z',2)", d: '2024-01-02 03:04:05.678', u: '18446744073709551615' },
    );
    expect(answer.status).toBe(200);
    expect(answer.text).toBe("1\t1\t['x','it\\'s']\t{'k':1}\t('z',2)\t2024-01-02 03:04:05.678\t18446744073709551615\n");
  });

  it('refuses a raw tab or newline in a value with 457, as the server does', async () => {
    for (const raw of ['abc\t123', 'abc\n123']) {
      const answer = await bind('SELECT {s:String}', { s: raw });
      expect(answer.status).toBe(500);
      expect(answer.code).toBe('457');
      expect(answer.text).toMatch(exceptionText(457, 'BAD_QUERY_PARAMETER'));
      expect(answer.text).toContain("for query parameter 's' because it isn't parsed completely: only 3 of 7 bytes was parsed");
    }
  });

  it('refuses a trailing backslash with 25', async () => {
    const answer = await bind('SELECT {s:String}', { s: 'abc\\' });
    expect(answer.status).toBe(400);
    expect(answer.code).toBe('25');
    expect(answer.text).toMatch(exceptionText(25, 'CANNOT_PARSE_ESCAPE_SEQUENCE'));
  });

  it.each([
    ['UInt32', '12x', 457, 500],
    ['UInt8', '1.5', 457, 500],
    ['UUID', 'not-a-uuid', 376, 400],
    ['IPv4', 'abc', 675, 400],
    ["DateTime64(3, 'UTC')", 'yesterday', 41, 400],
    ['Array(UInt8)', '[1,2', 27, 400],
  ])('refuses %s value %j like the server', async (type, value, code, status) => {
    const answer = await bind(`SELECT {v:${type}}`, { v: value });
    expect(answer.code).toBe(String(code));
    expect(answer.status).toBe(status);
  });

  it('refuses a placeholder whose parameter was not sent (456), even after it was sent before', async () => {
    await ok('SELECT {late:String}', { params: { param_late: 'x' } });
    const answer = await ch('SELECT {late:String}');
    expect(answer.code).toBe('456');
    expect(answer.text).toMatch(exceptionText(456, 'UNKNOWN_QUERY_PARAMETER'));
  });

  it('accepts parameters in a URL of nearly 1 MiB, and max_query_size still applies to the query', async () => {
    const big = 'x'.repeat(900 * 1024);
    const answer = await ch('SELECT length({big:String})', { params: { param_big: big } });
    expect(answer.status).toBe(200);
    expect(answer.text).toBe(`${big.length}\n`);
    const longQuery = await ch(`SELECT length('${'y'.repeat(300 * 1024)}')`);
    expect(longQuery.code).toBe('62');
    expect(longQuery.text).toContain('Max query size exceeded');
  });

  it('takes parameters from a multipart/form-data body', async () => {
    const boundary = 'conformance-boundary';
    const body = [`--${boundary}`, 'Content-Disposition: form-data; name="param_v"', '', '41', `--${boundary}--`, ''].join('\r\n');
    const answer = await ch('SELECT {v:UInt8} + 1', { body, headers: { 'Content-Type': `multipart/form-data; boundary=${boundary}` } });
    expect(answer.status).toBe(200);
    expect(answer.text).toBe('42\n');
  });
});
