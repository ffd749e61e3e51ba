/**
 * Generated alerts (fast-check) through the platform's routing, silences and inhibition and through
 * the real Alertmanager v0.35.0 server: the same routing tree and inhibit rules (same matcher
 * text), the same silences (our parsed matchers posted to /api/v2/silences), the same alerts
 * (POST /api/v2/alerts). For every alert, /api/v2/alerts must report the receiver we route to,
 * silenced exactly when one of our silences applies, inhibited exactly when our rule says so.
 *
 * Each generated scenario carries a `run` label (in every silence and every rule's `equal`), so
 * scenarios share one server without seeing each other.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { alertingConfigSchema, inhibitRuleSchema, inhibits, planAlert, type AlertingConfigInput } from '../../schemas/alerting/alert-policy.js';
import { matchesAll, parseMatcher } from '../../schemas/alerting/matchers.js';
import { alertmanagerYaml, ensureReference, ReferenceAlertmanager, type RouteText } from './reference.js';

/** Scenarios per property: the fast slice in `npm test`, more in `npm run test:alertmanager`. */
export const scenarioRuns = process.env.ALERTMANAGER_SUITE === 'full' ? 150 : 20;
/** Alerts per scenario (upper bound). */
export const alertsPerScenario = 6;

const route: RouteText & { policy: string; groupWait: string; groupInterval: string; repeatInterval: string } = {
  receiver: 'root',
  policy: 'default',
  groupWait: '30s',
  groupInterval: '5m',
  repeatInterval: '4h',
  routes: [
    {
      matchers: ['severity="critical"', 'service=~"api|web"'],
      receiver: 'critical-api',
      routes: [{ matchers: ['msg="say \\"hi\\""'], receiver: 'greeting' }],
    },
    { matchers: ['severity = "critical"'], receiver: 'critical' },
    { matchers: ['path="C:\\\\temp"'], receiver: 'windows' },
    { matchers: ['"service name"=~".+"'], receiver: 'utf8-name' },
    { matchers: ['region!~".+"', 'severity=~"warn.*"'], receiver: 'no-region-warning' },
    { matchers: ['{alertname="latency", env="日本"}'], receiver: 'tokyo' },
    { matchers: ['service=~api'], receiver: 'api-anchored' },
  ],
};
const receivers = ['root', 'critical-api', 'greeting', 'critical', 'windows', 'utf8-name', 'no-region-warning', 'tokyo', 'api-anchored'];
const inhibitRules = [
  // The rule: critical incidents on two services of one pipeline must not mute each other.
  { sourceMatchers: ['severity=critical'], targetMatchers: ['severity=~"critical|warning"'], equal: ['pipeline', 'run'] },
  { sourceMatchers: ['alertname="outage"'], targetMatchers: ['severity!="page"'], equal: ['region', 'run'] },
];

const configInput: AlertingConfigInput = {
  version: 1,
  receivers: Object.fromEntries(receivers.map((r) => [r, { targets: [`log:${r}`] }])),
  policies: { default: { levels: [{ receivers: [] }] } },
  route: route as AlertingConfigInput['route'],
  inhibitRules,
};
const config = alertingConfigSchema.parse(configInput);
const rules = inhibitRules.map((r) => inhibitRuleSchema.parse(r));

const opt = <T>(arb: fc.Arbitrary<T>) => fc.option(arb, { nil: undefined });
const alertArb = fc
  .record({
    alertname: fc.constantFrom('errors', 'latency', 'outage'),
    severity: fc.constantFrom('info', 'warning', 'critical', 'page'),
    service: opt(fc.constantFrom('api', 'web', 'api-2', 'xapi', '')),
    pipeline: opt(fc.constantFrom('p1', 'p2')),
    region: opt(fc.constantFrom('eu', 'us')),
    msg: opt(fc.constantFrom('say "hi"', 'say \\"hi\\"')),
    path: opt(fc.constantFrom('C:\\temp', 'C:\\\\temp')),
    'service name': opt(fc.constantFrom('checkout api', '')),
    env: opt(fc.constantFrom('日本', 'eu')),
  })
  .map((r) => Object.fromEntries(Object.entries(r).filter(([, v]) => v !== undefined)) as Record<string, string>);

/** Silence matcher texts as operators type them (quoted, escaped, regex, spaces). */
const silenceMatcherArb = fc.constantFrom(
  'service=api',
  'service =~ "api|web"',
  'msg="say \\"hi\\""',
  'path="C:\\\\temp"',
  'severity!="critical"',
  'region!~".+"',
  '"service name"="checkout api"',
  'env="日本"',
  'alertname=~"err.*"',
  'pipeline=""',
);

const scenarioArb = fc.record({
  alerts: fc.uniqueArray(alertArb, { minLength: 1, maxLength: alertsPerScenario, selector: (a) => JSON.stringify(Object.entries(a).sort()) }),
  silences: fc.array(fc.uniqueArray(silenceMatcherArb, { minLength: 1, maxLength: 2 }), { maxLength: 2 }),
});

let server: ReferenceAlertmanager;
beforeAll(async () => {
  const { alertmanager } = ensureReference();
  server = await ReferenceAlertmanager.start(alertmanager, alertmanagerYaml({ route, receivers, inhibitRules }));
});
afterAll(async () => {
  await server?.stop();
});

let runCounter = 0;
const apiMatcher = (text: string) => {
  const m = parseMatcher(text);
  return { name: m.label, value: m.value, isRegex: m.op === '=~' || m.op === '!~', isEqual: m.op === '=' || m.op === '=~' };
};

describe(`generated alerts vs the real Alertmanager (${scenarioRuns} scenarios, up to ${alertsPerScenario} alerts each)`, () => {
  it('same receiver, silenced and inhibited decisions', async () => {
    let alertsCompared = 0;
    await fc.assert(
      fc.asyncProperty(scenarioArb, async ({ alerts, silences }) => {
        const run = `r${++runCounter}`;
        const labelled = alerts.map((a) => ({ ...a, run }));
        const now = Date.now();
        for (const matchers of silences) {
          await server.postSilence({
            matchers: [...matchers, `run="${run}"`].map(apiMatcher),
            startsAt: new Date(now - 60_000).toISOString(),
            endsAt: new Date(now + 3_600_000).toISOString(),
            createdBy: 'conformance',
            comment: run,
          });
        }
        await server.postAlerts(labelled.map((labels) => ({ labels })));

        // The inhibitor ingests alerts asynchronously: read until two reads 150 ms apart agree.
        let previous = '';
        let reference: Awaited<ReturnType<ReferenceAlertmanager['alerts']>> = [];
        for (let i = 0; i < 40; i++) {
          reference = (await server.alerts()).filter((a) => a.labels.run === run);
          const snapshot = JSON.stringify(reference.map((a) => [a.fingerprint, a.status]).sort());
          if (reference.length === labelled.length && snapshot === previous) break;
          previous = snapshot;
          await new Promise((r) => setTimeout(r, 150));
        }
        expect(reference).toHaveLength(labelled.length);

        const parsedSilences = silences.map((ms) => [...ms, `run="${run}"`].map(parseMatcher));
        for (const labels of labelled) {
          const ref = reference.find((a) => JSON.stringify(Object.entries(a.labels).sort()) === JSON.stringify(Object.entries(labels).filter(([, v]) => v !== '').sort()))!;
          expect(ref, `alert ${JSON.stringify(labels)} not found in Alertmanager`).toBeDefined();
          const ours = {
            receiver: planAlert(config, labels).receiver,
            silenced: parsedSilences.some((ms) => matchesAll(ms, labels)),
            inhibited: labelled.some((source) => source !== labels && rules.some((rule) => inhibits(rule, source, labels))),
          };
          const theirs = {
            receiver: ref.receivers.map((r) => r.name).join(','),
            silenced: ref.status.silencedBy.length > 0,
            inhibited: ref.status.inhibitedBy.length > 0,
          };
          expect(ours, `alert ${JSON.stringify(labels)}; scenario ${JSON.stringify({ alerts, silences })}`).toEqual(theirs);
          alertsCompared++;
        }
      }),
      { numRuns: scenarioRuns },
    );
    expect(alertsCompared).toBeGreaterThanOrEqual(scenarioRuns);
  });
});
