/**
 * People's controls on an incident, in skipped time: snooze (then escalation resumes), manual
 * escalate, a malformed signal (recorded, never fatal), and continue-as-new of a long-repeating
 * incident that keeps its identity, timeline and audit trail.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fireAlert } from '../../activities/alerting/alert-firing.js';
import { alertFingerprint, alertWorkflowId, type AlertFiring } from '../../schemas/alerting/alert.js';
import type { AlertingConfigInput } from '../../schemas/alerting/alert-policy.js';
import type { TimelineEntry } from '../../schemas/alerting/alert-incident.js';
import { acknowledgeSignal, acknowledgeUpdate, escalateUpdate, resolveUpdate, snoozeUpdate, stateQuery, timelineQuery, type alert } from '../../workflows/alerting/alert.js';
import { uniqueId } from '../support/stack.js';
import { createAlertHarness, waitFor, type AlertHarness } from './alert-harness.js';

const alerting: AlertingConfigInput = {
  version: 1,
  receivers: { team: { targets: ['webhook:team'] }, primary: { targets: ['webhook:primary'] }, secondary: { targets: ['webhook:secondary'] } },
  policies: {
    critical: {
      levels: [
        { receivers: ['primary'], delay: '0s' },
        { receivers: ['secondary'], delay: '15m' },
      ],
      repeatInterval: '30m',
    },
  },
  route: { receiver: 'team', policy: 'critical', groupBy: [], groupWait: '0s', groupInterval: '5m', repeatInterval: '4h' },
};

const minute = 60_000;
let h: AlertHarness;

beforeAll(async () => {
  h = await createAlertHarness(alerting, (url) => ({
    'webhook:team': { type: 'webhook', url: `${url}/team` },
    'webhook:primary': { type: 'webhook', url: `${url}/primary` },
    'webhook:secondary': { type: 'webhook', url: `${url}/secondary` },
  }));
});

afterAll(async () => {
  await h?.teardown();
});

function firing(): AlertFiring {
  return {
    detector: 'lag_high',
    labels: { pipeline: uniqueId('p') },
    severity: 'critical',
    summary: 'consumer lag 120k > 10k',
    value: 120_000,
    threshold: 10_000,
    windowStart: '2026-01-01T10:00:00Z',
    windowEnd: '2026-01-01T10:01:00Z',
    firedAt: '2026-01-01T10:01:00Z',
  };
}

const handle = (id: string) => h.env.client.workflow.getHandle<typeof alert>(id);
const entries = async (id: string, type: TimelineEntry['type']) => (await handle(id).query(timelineQuery)).filter((e) => e.type === type);
async function sleepUntil(instant: number): Promise<void> {
  const now = await h.env.currentTimeMs();
  if (instant > now) await h.env.sleep(instant - now);
}
async function notified(id: string, n: number): Promise<void> {
  await waitFor(`${n} notification outcomes`, async () => (await entries(id, 'notification')).length >= n);
}

describe('incident controls (time-skipping)', () => {
  it('snooze holds notifications until the given time, then escalation resumes unacknowledged', async () => {
    const { workflowId } = await fireAlert(h.env.client, h.taskQueue, firing());
    await notified(workflowId, 2);
    const opened = Date.parse((await handle(workflowId).query(stateQuery)).openedAt);

    const past = await handle(workflowId).executeUpdate(snoozeUpdate, { args: [{ until: new Date(opened - minute).toISOString(), by: 'ann' }] }).catch((e: unknown) => e);
    expect(String((past as Error & { cause?: Error }).cause?.message)).toMatch(/snooze: input\.until: expected a time after now/);

    const until = opened + 2 * 60 * minute;
    const snoozed = await handle(workflowId).executeUpdate(snoozeUpdate, { args: [{ until: new Date(until).toISOString(), by: 'ann', note: 'deploy window' }] });
    expect(snoozed).toMatchObject({ status: 'snoozed', snoozedUntil: new Date(until).toISOString() });

    await sleepUntil(until - 1000);
    expect(h.receiver.about(workflowId).filter((r) => r.body.kind !== 'trigger')).toEqual([]);
    await sleepUntil(until + 1000);
    await waitFor('re-notified after snooze', () => h.receiver.about(workflowId).some((r) => r.body.kind === 'repeat' && r.path === '/primary'));
    const unsnoozed = await entries(workflowId, 'unsnoozed');
    expect(unsnoozed).toHaveLength(1);
    expect(Date.parse(unsnoozed[0]!.at) - until).toBeLessThan(1000);
    expect((await handle(workflowId).query(stateQuery)).nextEscalationAt).toBe(new Date(Date.parse(unsnoozed[0]!.at) + 15 * minute).toISOString());
    await notified(workflowId, 3);
    await handle(workflowId).executeUpdate(resolveUpdate, { args: [{ by: 'ann' }] });
  });

  it('manual escalate notifies the next level at once and restarts its clock', async () => {
    const { workflowId } = await fireAlert(h.env.client, h.taskQueue, firing());
    await notified(workflowId, 2);
    const state = await handle(workflowId).executeUpdate(escalateUpdate, { args: [{ by: 'bob', note: 'need the database team' }] });
    expect(state).toMatchObject({ status: 'notified', level: 1 });
    await waitFor('level 1 payload', () => h.receiver.about(workflowId).some((r) => r.path === '/secondary' && r.body.kind === 'escalate'));
    const escalated = await entries(workflowId, 'escalated');
    expect(escalated.map((e) => [e.by, e.note, e.level])).toEqual([['bob', 'need the database team', 1]]);
    const s = await handle(workflowId).query(stateQuery);
    expect(Date.parse(s.nextEscalationAt!) - Date.parse(escalated[0]!.at)).toBe(30 * minute);
    await notified(workflowId, 3);
    await handle(workflowId).executeUpdate(resolveUpdate, { args: [{ by: 'bob' }] });
  });

  it('a malformed signal is recorded with its reason and changes nothing', async () => {
    const { workflowId } = await fireAlert(h.env.client, h.taskQueue, firing());
    await notified(workflowId, 2);
    await handle(workflowId).signal(acknowledgeSignal, { by: '' });
    const rejected = await waitFor('rejection recorded', async () => (await entries(workflowId, 'signal_rejected'))[0]);
    expect(rejected.note).toMatch(/acknowledge: input\.by: expected a non-empty name/);
    expect((await handle(workflowId).query(stateQuery)).status).toBe('notified');
    await handle(workflowId).signal(acknowledgeSignal, { by: 'carol' });
    await waitFor('acknowledged by signal', async () => (await handle(workflowId).query(stateQuery)).acknowledgedBy === 'carol');
    await handle(workflowId).executeUpdate(resolveUpdate, { args: [{ by: 'carol' }] });
  });

  it('continues as new when the history grows, keeping incident id, timeline, counters and audit', async () => {
    const f = firing();
    const fingerprint = alertFingerprint(f.detector, f.labels);
    const workflowId = alertWorkflowId(fingerprint);
    await h.env.client.workflow.signalWithStart('alert', {
      workflowId,
      taskQueue: h.taskQueue,
      args: [{ fingerprint, firing: f, historyLimit: 60 }],
      signal: 'fire',
      signalArgs: [f],
    });
    await notified(workflowId, 2);
    const first = await handle(workflowId).query(stateQuery);
    const firstRun = (await handle(workflowId).describe()).runId;
    // 15m to level 1, then a repeat every 30m: 6h gives 12 more notifications, several runs.
    await sleepUntil(Date.parse(first.openedAt) + 6 * 60 * minute + 1000);
    await waitFor('all repeats recorded', async () => (await handle(workflowId).query(stateQuery)).notificationsDelivered >= 14);
    const later = await handle(workflowId).query(stateQuery);
    expect((await handle(workflowId).describe()).runId).not.toBe(firstRun);
    expect(later.incidentId).toBe(first.incidentId);
    expect(later.count).toBe(1);
    const seqs = later.timeline.map((e) => e.seq);
    expect(seqs).toEqual([...seqs].sort((a, b) => a - b));
    expect(seqs[0]).toBe(1);

    const acked = await handle(workflowId).executeUpdate(acknowledgeUpdate, { args: [{ by: 'dave' }] });
    expect(acked.status).toBe('acknowledged');
    await handle(workflowId).executeUpdate(resolveUpdate, { args: [{ by: 'dave' }] });
    const final = await handle(workflowId).result();
    const rows = await waitFor('audit rows', async () => {
      const r = await (
        await h.warehouse.query({
          query: 'SELECT count() AS n, uniqExact(seq) AS u, max(seq) AS m FROM alert_events FINAL WHERE incident_id = {id:String}',
          query_params: { id: final.incidentId },
          format: 'JSONEachRow',
        })
      ).json<{ n: string; u: string; m: string }>();
      return Number(r[0]?.m) === final.eventSeq ? r[0] : undefined;
    });
    expect([Number(rows.n), Number(rows.u)]).toEqual([final.eventSeq, final.eventSeq]);
  });
});
