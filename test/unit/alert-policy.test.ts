/**
 * The alerting config's pure parts: durations, matchers, the routing tree with inheritance,
 * inhibition, silences, validation errors that name the field, and the repo's own policy file.
 */
import { describe, expect, it } from 'vitest';
import { loadAlertingConfigFile } from '../../activities/alerting/alert-routing.js';
import { describeZodError } from '../../schemas/alerting/alert-incident.js';
import {
  alertingConfigSchema,
  inhibitRuleSchema,
  inhibits,
  matcherSchema,
  matchesAll,
  parseDuration,
  planAlert,
  routingLabels,
  silenceApplies,
  silenceSchema,
  type AlertingConfigInput,
} from '../../schemas/alerting/alert-policy.js';
import { channelTargetsSchema, undefinedTargetProblems } from '../../schemas/alerting/receivers.js';
import { readFile } from 'node:fs/promises';

const base: AlertingConfigInput = {
  version: 3,
  receivers: { team: { targets: ['log:alerts'] }, db: { targets: ['webhook:db'] }, oncall: { targets: ['pagerduty:primary'] } },
  policies: {
    default: { levels: [{ receivers: [], delay: '0s' }] },
    paging: { levels: [{ receivers: ['oncall'], delay: '0s' }, { receivers: ['db'], delay: '10m' }], repeatInterval: '20m' },
  },
  route: {
    receiver: 'team',
    policy: 'default',
    groupBy: ['alertname'],
    groupWait: '30s',
    groupInterval: '5m',
    repeatInterval: '4h',
    routes: [
      { matchers: ['team=db'], receiver: 'db', routes: [{ matchers: ['severity=~"critical|page"'], policy: 'paging', groupWait: '5s' }] },
      { matchers: ['severity=page'], policy: 'paging' },
    ],
  },
};

describe('durations and matchers', () => {
  it('parses compound durations and refuses other text', () => {
    expect(parseDuration('1h30m')).toBe(5_400_000);
    expect(parseDuration('250ms')).toBe(250);
    expect(() => parseDuration('5 minutes')).toThrow(/expected a duration like 30s/);
  });

  it('matches =, !=, =~ and !~ like Alertmanager (anchored regex, missing label is empty)', () => {
    const m = (t: string) => matcherSchema.parse(t);
    const labels = { service: 'api', env: 'prod' };
    expect(matchesAll([m('service=api'), m('env!=dev')], labels)).toBe(true);
    expect(matchesAll([m('service=~"ap"')], labels)).toBe(false);
    expect(matchesAll([m('service=~"api|web"')], labels)).toBe(true);
    expect(matchesAll([m('region!~".+"')], labels)).toBe(true);
    expect(matcherSchema.safeParse('service=~"("').success).toBe(false);
  });
});

describe('routing tree', () => {
  const config = alertingConfigSchema.parse(base);

  it('takes the deepest first match and inherits unset fields', () => {
    const plan = planAlert(config, routingLabels({ detector: 'replication_lag', labels: { team: 'db' }, severity: 'critical' }));
    expect(plan).toMatchObject({ routePath: 'root/0/0', receiver: 'db', policy: 'paging', groupWaitMs: 5000, groupIntervalMs: 300_000, repeatIntervalMs: 1_200_000, groupKey: 'alertname=replication_lag' });
    // Level 0 = the route's receiver plus the policy's first level; later levels as written.
    expect(plan.levels.map((l) => [l.delayMs, l.receivers.map((r) => r.receiver)])).toEqual([
      [0, ['db', 'oncall']],
      [600_000, ['db']],
    ]);
  });

  it('falls back to the parent when no child matches', () => {
    const plan = planAlert(config, routingLabels({ detector: 'slow', labels: { team: 'db' }, severity: 'warning' }));
    expect(plan).toMatchObject({ routePath: 'root/0', receiver: 'db', policy: 'default', groupWaitMs: 30_000, repeatIntervalMs: 14_400_000 });
    expect(planAlert(config, routingLabels({ detector: 'x', labels: {}, severity: 'info' })).routePath).toBe('root');
  });

  it('refuses unknown receivers and policies, naming where', () => {
    const bad = alertingConfigSchema.safeParse({
      ...base,
      route: { ...base.route, routes: [{ matchers: ['a=b'], receiver: 'nobody' }] },
      policies: { ...base.policies, broken: { levels: [{ receivers: ['ghost'], delay: '1m' }] } },
    });
    expect(bad.success).toBe(false);
    const text = describeZodError(bad.error!, 'config');
    expect(text).toContain('config.route.routes.0.receiver: unknown receiver "nobody"');
    expect(text).toContain('config.policies.broken.levels: levels[0].delay: expected 0s');
    expect(text).toContain('unknown receiver "ghost"');
  });
});

describe('inhibition and silences', () => {
  it('a critical alert inhibits warnings with equal labels only', () => {
    const rule = inhibitRuleSchema.parse({ sourceMatchers: ['severity=critical'], targetMatchers: ['severity=warning'], equal: ['pipeline'] });
    const critical = routingLabels({ detector: 'errors', labels: { pipeline: 'p1' }, severity: 'critical' });
    const mutes = (t: Record<string, string>) => inhibits(rule, critical, t);
    expect(mutes(routingLabels({ detector: 'latency', labels: { pipeline: 'p1' }, severity: 'warning' }))).toBe(true);
    expect(mutes(routingLabels({ detector: 'latency', labels: { pipeline: 'p2' }, severity: 'warning' }))).toBe(false);
    expect(mutes(routingLabels({ detector: 'latency', labels: { pipeline: 'p1' }, severity: 'critical' }))).toBe(false);
  });

  it('a silence applies inside its window to matching labels', () => {
    const s = silenceSchema.parse({ id: 's1', matchers: ['service=api'], startsAt: '2026-01-01T10:00:00Z', endsAt: '2026-01-01T11:00:00Z', createdBy: 'ann' });
    const labels = { service: 'api' };
    expect(silenceApplies(s, labels, Date.parse('2026-01-01T10:30:00Z'))).toBe(true);
    expect(silenceApplies(s, labels, Date.parse('2026-01-01T11:00:00Z'))).toBe(false);
    expect(silenceApplies(s, { service: 'web' }, Date.parse('2026-01-01T10:30:00Z'))).toBe(false);
    expect(silenceSchema.safeParse({ ...s, matchers: [] }).success).toBe(false);
  });
});

describe('the repo policy (infra/alerting/policy.json)', () => {
  it('is valid, uses realistic minutes, and every target is a configured channel', async () => {
    const config = await loadAlertingConfigFile();
    const page = planAlert(config, routingLabels({ detector: 'error_rate_high', labels: { pipeline: 'demo' }, severity: 'page' }));
    expect(page.policy).toBe('page');
    expect(page.levels[1]!.delayMs).toBeGreaterThanOrEqual(5 * 60_000);
    const channels = channelTargetsSchema.parse(JSON.parse(await readFile(new URL('../../infra/alerting/channels.json', import.meta.url), 'utf8')));
    expect(undefinedTargetProblems(config.receivers, channels)).toEqual([]);
  });

  it('a critical incident mutes warnings of its own service only, not of the whole pipeline', async () => {
    const config = await loadAlertingConfigFile();
    const critical = routingLabels({ detector: 'error_rate_high', labels: { pipeline: 'demo', service: 'checkout' }, severity: 'critical' });
    const muted = (service: string) => config.inhibitRules.some((rule) => inhibits(rule, critical, routingLabels({ detector: 'latency_ewma', labels: { pipeline: 'demo', service }, severity: 'warning' })));
    expect(muted('checkout')).toBe(true);
    // Before, `equal: ["pipeline"]` let one open critical incident mute every service's warnings (walkthrough finding).
    expect(muted('search')).toBe(false);
  });
});
