/**
 * A channel target disabled because its environment variable is not set
 * (`ALERT_CHANNELS_MISSING_SECRETS=disable`, what `npm start` runs with) is skipped, not failed:
 * the incident counts it apart from failures, its timeline says "skipped", the notify activity does
 * not fail (so no activity failure is logged for every page), and escalation to the other targets
 * goes on. Time-skipping test server, real notify and audit activities, a local HTTP receiver.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fireAlert } from '../../activities/alerting/alert-firing.js';
import type { AlertingConfigInput } from '../../schemas/alerting/alert-policy.js';
import type { alert } from '../../workflows/alerting/alert.js';
import { stateQuery, timelineQuery } from '../../workflows/alerting/alert.js';
import { uniqueId } from '../support/stack.js';
import { createAlertHarness, waitFor, type AlertHarness } from './alert-harness.js';

const alerting: AlertingConfigInput = {
  version: 1,
  receivers: { primary: { targets: ['webhook:primary', 'pagerduty:primary'] } },
  policies: { critical: { levels: [{ receivers: ['primary'], delay: '0s' }], repeatInterval: '1h' } },
  route: { receiver: 'primary', policy: 'critical', groupBy: ['alertname'], groupWait: '0s', groupInterval: '5m', repeatInterval: '4h', routes: [] },
  inhibitRules: [],
};

let h: AlertHarness;
beforeAll(async () => {
  h = await createAlertHarness(
    alerting,
    (url) => ({
      'webhook:primary': { type: 'webhook', url: `${url}/primary` },
      'pagerduty:primary': { type: 'pagerduty', url: `${url}/pd`, routingKeyEnv: 'SW_TEST_UNSET_ROUTING_KEY' },
    }),
    { secrets: {}, missingSecrets: 'disable' },
  );
});
afterAll(async () => {
  await h?.teardown();
});

describe('a disabled channel target', () => {
  it('is recorded as skipped, not as a failed notification, and the other target is paged', async () => {
    const labels = { pipeline: 'demo', service: uniqueId('svc') };
    const { workflowId } = await fireAlert(h.env.client, h.taskQueue, {
      detector: 'error_rate_high',
      labels,
      severity: 'critical',
      summary: 'error rate 0.4',
      value: 0.4,
      threshold: 0.05,
      windowStart: '2026-01-01T10:00:00Z',
      windowEnd: '2026-01-01T10:01:00Z',
      pipeline: 'demo',
      firedAt: new Date().toISOString(),
    });
    const handle = h.env.client.workflow.getHandle<typeof alert>(workflowId);
    const state = await waitFor('both targets answered', async () => {
      const s = await handle.query(stateQuery);
      return s.notificationsDelivered + s.notificationsFailed + (s.notificationsSkipped ?? 0) >= 2 ? s : undefined;
    });
    expect(state).toMatchObject({ notificationsDelivered: 1, notificationsFailed: 0, notificationsSkipped: 1, status: 'notified' });
    const timeline = await handle.query(timelineQuery);
    const pd = timeline.filter((e) => e.type === 'notification' && e.target === 'pagerduty:primary');
    expect(pd).toHaveLength(1);
    expect(pd[0]).toMatchObject({ delivered: false, skipped: true, attempts: 1 });
    expect(pd[0]!.note).toContain('skipped (target disabled)');
    expect(pd[0]!.detail).toContain('SW_TEST_UNSET_ROUTING_KEY');
    expect(h.receiver.about(workflowId).map((r) => r.path)).toEqual(['/primary']);
    await h.replay(workflowId);
  });
});
