import { describe, expect, it } from 'vitest';
import { MatcherSyntaxError, matches, parseMatcher, parseMatchers } from '../../schemas/alerting/matchers.js';
import { inhibitRuleSchema, inhibits, routingLabels, silenceSchema } from '../../schemas/alerting/alert-policy.js';

const one = (text: string) => {
  const m = parseMatcher(text);
  return { label: m.label, op: m.op, value: m.value };
};

describe('matcher grammar (Alertmanager v0.35 fallback mode)', () => {
  it('unescapes \\" \\\\ and \\n in quoted values (issue: escapes were kept literally)', () => {
    expect(one('msg="say \\"hi\\""')).toEqual({ label: 'msg', op: '=', value: 'say "hi"' });
    expect(one('path="C:\\\\temp"')).toEqual({ label: 'path', op: '=', value: 'C:\\temp' });
    expect(one('text="a\\nb"').value).toBe('a\nb');
    expect(matches(parseMatcher('msg="say \\"hi\\""'), { msg: 'say "hi"' })).toBe(true);
    expect(matches(parseMatcher('msg!="say \\"hi\\""'), { msg: 'say "hi"' })).toBe(false);
    expect(matches(parseMatcher('path="C:\\\\temp"'), { path: 'C:\\temp' })).toBe(true);
  });

  it('accepts spaces around operators and values', () => {
    expect(one('severity = "critical"')).toEqual({ label: 'severity', op: '=', value: 'critical' });
    expect(one('  team!=  payments ')).toEqual({ label: 'team', op: '!=', value: 'payments' });
    expect(parseMatchers('{ a = "1" , b =~ "x|y" , }').map((m) => [m.label, m.op, m.value])).toEqual([
      ['a', '=', '1'],
      ['b', '=~', 'x|y'],
    ]);
  });

  it('keeps a spurious escape and an unquoted value the classic way (classic parser fallback)', () => {
    // \d is not a Go string escape: the UTF-8 parser refuses, the classic parser keeps the backslash.
    expect(one('code=~"5\\d\\d"').value).toBe('5\\d\\d');
    expect(matches(parseMatcher('code=~"5\\d\\d"'), { code: '503' })).toBe(true);
    // A value with spaces and no quotes: classic parser.
    expect(one('msg=hello world').value).toBe('hello world');
  });

  it('anchors regexes fully and uses RE2 syntax', () => {
    const m = parseMatcher('service=~"api|web"');
    expect(matches(m, { service: 'api' })).toBe(true);
    expect(matches(m, { service: 'api-2' })).toBe(false);
    expect(matches(m, { service: 'xweb' })).toBe(false);
    expect(matches(parseMatcher('s=~"(?i)API"'), { s: 'api' })).toBe(true);
    expect(() => parseMatcher('s=~"(?=a)"')).toThrow(MatcherSyntaxError);
  });

  it('reads a missing label as the empty string', () => {
    expect(matches(parseMatcher('region=""'), {})).toBe(true);
    expect(matches(parseMatcher('region!~".+"'), {})).toBe(true);
    expect(matches(parseMatcher('region!=eu'), {})).toBe(true);
    expect(matches(parseMatcher('region=~".*"'), { other: 'x' })).toBe(true);
  });

  it('takes UTF-8 label names in quotes, and unquoted UTF-8 values', () => {
    expect(one('"service name"="checkout api"')).toEqual({ label: 'service name', op: '=', value: 'checkout api' });
    expect(one('équipe=paiements')).toEqual({ label: 'équipe', op: '=', value: 'paiements' });
    expect(one('env="日本"').value).toBe('日本');
    expect(matches(parseMatcher('"service name"="checkout api"'), { 'service name': 'checkout api' })).toBe(true);
  });

  it('refuses malformed matchers with the column and the expected form', () => {
    const refusal = (text: string) => {
      try {
        parseMatchers(text);
      } catch (err) {
        expect(err).toBeInstanceOf(MatcherSyntaxError);
        return err as MatcherSyntaxError;
      }
      throw new Error(`accepted: ${text}`);
    };
    const unbalanced = refusal('foo=~"bar');
    expect(unbalanced.column).toBe(6);
    expect(unbalanced.message).toMatch(/column 6: .*missing closing double quote; expected name=value/);
    expect(refusal('foo').message).toMatch(/column 4: unexpected end of input, expected an operator/);
    expect(refusal('foo!bar').message).toMatch(/column 4: "!" must be followed by "=" or "~"/);
    expect(refusal('foo=~"("').message).toMatch(/invalid regular expression/);
    expect(refusal('a=b,,c=d').message).toMatch(/column 5/);
    expect(() => parseMatcher('{a=b}')).toThrow(/braces are not allowed/);
  });

  it('canonical text parses back to the same matcher', () => {
    for (const text of ['msg="say \\"hi\\""', '"a b"=~"x\\ty"', 'p="C:\\\\t"', 'x!="line\\nbreak"', 'e="👩‍💻"']) {
      const m = parseMatcher(text);
      const again = parseMatcher(m.text);
      expect([again.label, again.op, again.value]).toEqual([m.label, m.op, m.value]);
    }
  });

  it('silences use the same grammar', () => {
    const s = silenceSchema.safeParse({ id: 's', matchers: ['foo=~"bar'], startsAt: '2026-01-01T00:00:00Z', endsAt: '2026-01-01T01:00:00Z', createdBy: 'ann' });
    expect(s.success).toBe(false);
    expect(JSON.stringify(s.error?.issues)).toContain('column 6');
  });
});

describe('inhibition (Alertmanager inhibit.go)', () => {
  const rule = inhibitRuleSchema.parse({ sourceMatchers: ['severity=critical'], targetMatchers: ['severity=~"critical|warning"'], equal: ['pipeline'] });
  const alert = (service: string, severity: 'critical' | 'warning', pipeline = 'p1') => routingLabels({ detector: 'errors', labels: { pipeline, service }, severity });

  it('an alert that matches both sides does not inhibit another that matches both (issue: B was never paged)', () => {
    expect(inhibits(rule, alert('A', 'critical'), alert('B', 'critical'))).toBe(false);
  });
  it('still inhibits a target that matches only the target side', () => {
    expect(inhibits(rule, alert('A', 'critical'), alert('B', 'warning'))).toBe(true);
    expect(inhibits(rule, alert('A', 'critical'), alert('B', 'warning', 'p2'))).toBe(false);
  });
  it('a missing equal label on both sides counts as equal', () => {
    const r = inhibitRuleSchema.parse({ sourceMatchers: ['severity=critical'], targetMatchers: ['severity=warning'], equal: ['zone'] });
    expect(inhibits(r, alert('A', 'critical'), alert('B', 'warning'))).toBe(true);
  });
});
