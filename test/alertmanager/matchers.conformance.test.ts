/**
 * Differential conformance of the matcher grammar with the real Alertmanager v0.35.0 and amtool:
 * the same matcher text goes to `amtool check-config` (accepted or refused), to `amtool config
 * routes test` (which label sets it matches) and to `amtool silence add` against a running server
 * (the parsed name, operator and value, read back from /api/v2/silence/{id}); our parser must give
 * the same decision each time.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { formatMatcher, matchesAll, MatcherSyntaxError, parseMatcher, parseMatchers } from '../../schemas/alerting/matchers.js';
import { alertmanagerYaml, Amtool, ensureReference, lastLine, ReferenceAlertmanager } from './reference.js';

const run = promisify(execFile);

/** Matcher lines operators type; valid and malformed, covering escapes, quoting, spaces, regex anchoring, missing labels and UTF-8. */
export const matcherCorpus: string[] = [
  // the cases
  'msg="say \\"hi\\""',
  'msg!="say \\"hi\\""',
  'path="C:\\\\temp"',
  'path=C:\\temp',
  'foo=~"bar',
  'severity = "critical"',
  // spaces and quoting
  'severity="critical"',
  'severity=critical',
  '  severity  !=  warning  ',
  'severity= "critical" ',
  'msg=hello world',
  'msg="hello world"',
  'msg="a,b"',
  'text="line\\nbreak"',
  'text="tab\\there"',
  'code=~"5\\d\\d"',
  'code=~5\\d\\d',
  'code=~"5\\\\d\\\\d"',
  'q="\'single\'"',
  "q='single'",
  'x="\\u00e9t\\u00e9"',
  'x="\\x41"',
  'x="\\q"',
  // regex anchoring and RE2 syntax
  'service=~"api|web"',
  'service=~api',
  'service=~"api.*"',
  'service!~"api|web"',
  'service=~".+"',
  'service!~".+"',
  'service=~"(?i)API"',
  'service=~"["',
  'service=~"(?=x)"',
  'service=~"a{2,}"',
  // missing labels
  'region=""',
  'region!=""',
  'region=~""',
  'region=~".*"',
  // UTF-8
  '"service name"="checkout api"',
  'équipe=paiements',
  'env="日本"',
  'emoji="👩‍💻"',
  '"😀"=~"x|y"',
  // lists and braces
  '{severity="critical", service=~"api|web"}',
  'severity="critical",service="api"',
  'severity="critical",',
  '{}',
  '{severity="critical"',
  'severity="critical"}',
  // malformed
  'severity',
  'severity=',
  '=critical',
  'a=b,,c=d',
  'foo!bar',
  'foo=~',
  '1abc=x',
  'sev="critical" extra',
];

/** Label sets the matchers are evaluated on (AM treats a missing label as the empty string). */
export const labelCorpus: Record<string, string>[] = [
  { msg: 'say "hi"', severity: 'critical', service: 'api' },
  { msg: 'say \\"hi\\"', severity: 'warning', service: 'web' },
  { path: 'C:\\temp', service: 'api-2' },
  { path: 'C:\\\\temp', severity: 'critical' },
  { path: 'C:temp' },
  { msg: 'hello world', text: 'line\nbreak', code: '503' },
  { msg: 'a,b', text: 'line\\nbreak', code: '5d3' },
  { text: 'tab\there', code: '5\\d\\d', q: "'single'" },
  { q: 'single', x: 'été', service: 'API' },
  { x: 'A', region: 'eu' },
  { x: '\\q', service: 'xapi' },
  { 'service name': 'checkout api', équipe: 'paiements', env: '日本' },
  { emoji: '👩‍💻', '😀': 'x', service: 'apiweb' },
  { service: 'aa', region: '' },
  {},
];

const labelTexts = (labels: Record<string, string>) => Object.entries(labels).map(([label, value]) => formatMatcher({ label, op: '=', value }));

function ours(line: string): { ok: true; matchers: ReturnType<typeof parseMatchers> } | { ok: false; error: MatcherSyntaxError } {
  try {
    return { ok: true, matchers: parseMatchers(line) };
  } catch (err) {
    if (err instanceof MatcherSyntaxError) return { ok: false, error: err };
    throw err;
  }
}

let amtool: Amtool;
let bins: ReturnType<typeof ensureReference>;
beforeAll(async () => {
  bins = ensureReference();
  amtool = await Amtool.create(bins.amtool);
});
afterAll(async () => {
  await amtool.close();
});

describe('matchers vs amtool check-config', () => {
  it.each(matcherCorpus)('%s: accepted or refused alike', async (line) => {
    const yaml = alertmanagerYaml({ route: { receiver: 'root', routes: [{ receiver: 'm', matchers: [line] }] }, receivers: ['root', 'm'] });
    const reference = await amtool.checkConfig(yaml);
    const mine = ours(line);
    expect(mine.ok, `amtool: ${reference.output}\nours: ${mine.ok ? 'accepted' : mine.error.message}`).toBe(reference.ok);
    if (!mine.ok) {
      // Refusals name a column and the expected form.
      expect(mine.error.message).toMatch(/column \d+: .+; expected name=value/);
    }
  });
});

describe('matchers vs amtool config routes test', () => {
  const accepted = matcherCorpus.filter((line) => ours(line).ok);
  const yaml = alertmanagerYaml({
    route: { receiver: 'root', routes: accepted.map((line, i) => ({ receiver: `m${i}`, matchers: [line], continue: true })) },
    receivers: ['root', ...accepted.map((_, i) => `m${i}`)],
  });

  it.each(labelCorpus.map((labels) => [JSON.stringify(labels), labels] as const))('labels %s route to the same matchers', async (_name, labels) => {
    const reference = await amtool.routesTest(yaml, labelTexts(labels));
    const matched = accepted.flatMap((line, i) => (matchesAll(parseMatchers(line), labels) ? [`m${i}`] : []));
    const mine = matched.length > 0 ? matched : ['root'];
    const names = (rs: string[]) => rs.map((r) => (r === 'root' ? r : accepted[Number(r.slice(1))]!));
    expect(names(mine)).toEqual(names(reference));
  });
});

describe('single matchers vs amtool silence add (the server parses, /api/v2/silence reads back)', () => {
  let server: ReferenceAlertmanager;
  beforeAll(async () => {
    server = await ReferenceAlertmanager.start(bins.alertmanager, alertmanagerYaml({ route: { receiver: 'root' }, receivers: ['root'] }));
  });
  afterAll(async () => {
    await server.stop();
  });

  const singles = matcherCorpus.filter((line) => !line.includes(',') && !line.startsWith('{') && !line.endsWith('}'));
  it.each(singles)('%s: same name, operator and value', async (line) => {
    let reference: { ok: true; matcher: { name: string; value: string; isRegex: boolean; isEqual: boolean } } | { ok: false; output: string };
    try {
      const { stdout } = await run(bins.amtool, ['silence', 'add', `--alertmanager.url=${server.url}`, '--comment=conformance', '--author=test', '--duration=1h', 'conformance="1"', line]);
      const silence = (await (await fetch(`${server.url}/api/v2/silence/${lastLine(stdout)}`)).json()) as { matchers: { name: string; value: string; isRegex: boolean; isEqual: boolean }[] };
      reference = { ok: true, matcher: silence.matchers.find((m) => m.name !== 'conformance')! };
    } catch (err) {
      reference = { ok: false, output: String((err as { stderr?: string }).stderr ?? err) };
    }
    let mine: { ok: true; matcher: { name: string; value: string; isRegex: boolean; isEqual: boolean } } | { ok: false; output: string };
    try {
      const m = parseMatcher(line);
      mine = { ok: true, matcher: { name: m.label, value: m.value, isRegex: m.op === '=~' || m.op === '!~', isEqual: m.op === '=' || m.op === '=~' } };
    } catch (err) {
      mine = { ok: false, output: String(err) };
    }
    expect(mine.ok, JSON.stringify({ reference, mine })).toBe(reference.ok);
    if (mine.ok && reference.ok) expect(mine.matcher).toEqual(reference.matcher);
  });
});
