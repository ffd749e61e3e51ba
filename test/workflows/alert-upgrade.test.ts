/**
 * Progressive risk on the alert workflow (time-skipping test server, real notify and audit
 * activities): a firing at a higher severity upgrades the open incident in place (severity,
 * routing re-planned, escalation restarted under the new policy), a firing at the same or a lower
 * severity does not; the detector's `clear` signal resolves the incident by itself, recorded in
 * its timeline, and the channels that were paged are told (resolve notice). Histories replay.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { clearAlert, fireAlert } from '../../activities/alerting/alert-firing.js';
import type { AlertFiring } from '../../schemas/alerting/alert.js';
import type { AlertingConfigInput } from '../../schemas/alerting/alert-policy.js';
import type { alert } from '../../workflows/alerting/alert.js';
import { stateQuery, timelineQuery } from '../../workflows/alerting/alert.js';
import { uniqueId } from '../support/stack.js';
import { createAlertHarness, waitFor, type AlertHarness } from './alert-harness.js';

const alerting: AlertingConfigInput = {
  version: 1,
  receivers: { team: { targets: ['webhook:team'] }, primary: { targets: ['webhook:primary'] }, manager: { targets: ['webhook:manager'] } },
  policies: {
    page: { levels: [{ receivers: ['primary', 'manager'], delay: '0s' }], repeatInterval: '1h' },
    critical: { levels: [{ receivers: ['primary'], delay: '0s' }, { receivers: ['manager'], delay: '15m' }], repeatInterval: '1h' },
    warning: { levels: [{ receivers: ['team'], delay: '0s' }], repeatInterval: '4h' },
  },
  route: {
    receiver: 'team',
    policy: 'warning',
    groupBy: ['alertname'],
    groupWait: '0s',
    groupInterval: '5m',
    repeatInterval: '4h',
    routes: [
      { matchers: ['severity=critical'], policy: 'critical', receiver: 'primary' },
      { matchers: ['severity=page'], policy: 'page', receiver: 'primary' },
    ],
  },
  inhibitRules: [],
};

let h: AlertHarness;
beforeAll(async () => {
  h = await createAlertHarness(alerting, (url) => ({
    'webhook:team': { type: 'webhook', url: `${url}/team` },
    'webhook:primary': { type: 'webhook', url: `${url}/primary` },
    'webhook:manager': { type: 'webhook', url: `${url}/manager` },
  }));
});
afterAll(async () => {
  await h?.teardown();
});

function firing(labels: Record<string, string>, severity: AlertFiring['severity'], value: number): AlertFiring {
  return {
    detector: 'latency_ewma',
    labels,
    severity,
    summary: `p95 z-score ${value}`,
    value,
    threshold: 3,
    windowStart: '2026-01-01T10:00:00Z',
    windowEnd: '2026-01-01T10:01:00Z',
    pipeline: 'demo',
    query: 'SELECT measures FROM agg_demo_latency FINAL WHERE pipeline = {pipeline:String} AND window_start >= {from:DateTime64(3)}',
    firedAt: new Date().toISOString(),
    context: { method: 'ewma', score: value, level: severity, baseline: { center: 10, spread: 1, size: 20 }, recent: [], queryParams: { pipeline: 'demo', from: '2026-01-01 09:50:00' } },
  };
}

const kinds = (id: string) => h.receiver.about(id).map((r) => `${r.path}:${r.body.kind}`).sort();

describe('risk levels on an open incident', () => {
  it('upgrades in place when the level rises, not when it repeats or falls, then auto-resolves on clear and tells the paged channels', async () => {
    const labels = { pipeline: 'demo', service: uniqueId('svc') };
    const { workflowId } = await fireAlert(h.env.client, h.taskQueue, firing(labels, 'warning', 3.5));
    const handle = h.env.client.workflow.getHandle<typeof alert>(workflowId);
    await waitFor('warning notified to team', () => kinds(workflowId).includes('/team:trigger'));
    expect((await handle.query(stateQuery)).plan?.policy).toBe('warning');

    await fireAlert(h.env.client, h.taskQueue, firing(labels, 'critical', 6.2));
    const upgraded = await waitFor('upgraded to critical', async () => {
      const s = await handle.query(stateQuery);
      return s.severity === 'critical' && s.plan?.policy === 'critical' ? s : undefined;
    });
    expect(upgraded.level).toBe(0);
    expect(upgraded.plan!.receiver).toBe('primary');
    await waitFor('critical level 0 paged primary', () => kinds(workflowId).includes('/primary:escalate'));
    const attributes = (await handle.describe()).searchAttributes;
    expect(attributes.AlertSeverity).toEqual(['critical']);

    // Same level again, then a lower one: counted, no upgrade, no new page.
    await fireAlert(h.env.client, h.taskQueue, firing(labels, 'critical', 6.5));
    await fireAlert(h.env.client, h.taskQueue, firing(labels, 'warning', 3.1));
    await waitFor('counted', async () => (await handle.query(stateQuery)).count >= 4);
    const timeline = await handle.query(timelineQuery);
    expect(timeline.filter((e) => e.type === 'upgraded').map((e) => e.note)).toEqual(['severity warning -> critical: value 6.2 vs threshold 3']);
    expect((await handle.query(stateQuery)).severity).toBe('critical');

    const cleared = await clearAlert(h.env.client, 'latency_ewma', labels, { detector: 'latency_ewma', note: 'score below 1 for 3 windows', clearedAt: new Date().toISOString() });
    expect(cleared.cleared).toBe(true);
    const final = await handle.result();
    expect(final.status).toBe('resolved');
    expect(final.resolvedBy).toBe('detector:latency_ewma');
    const resolved = final.timeline.find((e) => e.type === 'resolved')!;
    expect(resolved.note).toBe('auto-resolved: score below 1 for 3 windows');
    // Everyone who was paged gets the resolve notice (PagerDuty resolve, Slack, webhook alike).
    await waitFor('resolve notices', () => kinds(workflowId).includes('/primary:resolve') && kinds(workflowId).includes('/team:resolve'));
    await h.replay(workflowId);

    // Nothing open any more: a clear is a no-op, reported as such.
    expect((await clearAlert(h.env.client, 'latency_ewma', { pipeline: 'nope' }, { detector: 'latency_ewma', note: 'x', clearedAt: new Date().toISOString() })).cleared).toBe(false);
  });
});
