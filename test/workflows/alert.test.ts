/**
 * The alert incident workflow in skipped time (Temporal's time-skipping test server), with the real
 * notify activity posting to a local HTTP receiver and the real audit activities writing to
 * ClickHouse. Escalation timing is asserted in workflow time (timeline `at`), and against the HTTP
 * payloads received before and after each level's instant.
 */
import { WorkflowUpdateFailedError } from '@temporalio/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fireAlert } from '../../activities/alerting/alert-firing.js';
import { createSilence } from '../../activities/alerting/alert-audit.js';
import type { AlertFiring } from '../../schemas/alerting/alert.js';
import type { AlertingConfigInput } from '../../schemas/alerting/alert-policy.js';
import type { IncidentState, TimelineEntry } from '../../schemas/alerting/alert-incident.js';
import type { alert } from '../../workflows/alerting/alert.js';
import { acknowledgeUpdate, resolveSignal, resolveUpdate, stateQuery, timelineQuery } from '../../workflows/alerting/alert.js';
import { uniqueId } from '../support/stack.js';
import { createAlertHarness, waitFor, type AlertHarness } from './alert-harness.js';

const alerting: AlertingConfigInput = {
  version: 7,
  receivers: {
    team: { targets: ['webhook:team'] },
    primary: { targets: ['webhook:primary'] },
    secondary: { targets: ['webhook:secondary', 'webhook:broken'] },
    manager: { targets: ['webhook:manager'] },
  },
  policies: {
    critical: {
      levels: [
        { receivers: ['primary'], delay: '0s' },
        { receivers: ['secondary'], delay: '15m' },
        { receivers: ['manager'], delay: '30m' },
      ],
      repeatInterval: '1h',
    },
    warning: { levels: [{ receivers: [], delay: '0s' }, { receivers: ['primary'], delay: '1h' }], repeatInterval: '4h' },
  },
  route: {
    receiver: 'team',
    policy: 'warning',
    groupBy: ['alertname', 'pipeline'],
    groupWait: '0s',
    groupInterval: '5m',
    repeatInterval: '4h',
    routes: [
      { matchers: ['batch=yes'], groupWait: '30s' },
      { matchers: ['severity=critical'], policy: 'critical' },
    ],
  },
  inhibitRules: [{ sourceMatchers: ['severity=critical'], targetMatchers: ['severity=warning'], equal: ['pipeline'] }],
};

const minute = 60_000;
let h: AlertHarness;

beforeAll(async () => {
  h = await createAlertHarness(alerting, (url) => ({
    'webhook:team': { type: 'webhook', url: `${url}/team` },
    'webhook:primary': { type: 'webhook', url: `${url}/primary` },
    'webhook:secondary': { type: 'webhook', url: `${url}/secondary` },
    'webhook:broken': { type: 'webhook', url: `${url}/broken` },
    'webhook:manager': { type: 'webhook', url: `${url}/manager` },
  }));
  h.receiver.failing.add('/broken');
});

afterAll(async () => {
  await h?.teardown();
});

function firing(overrides: Partial<AlertFiring> = {}): AlertFiring {
  return {
    detector: 'error_rate_high',
    labels: { pipeline: uniqueId('p'), service: 'checkout' },
    severity: 'critical',
    summary: 'error rate 12% > 5% on checkout',
    value: 0.12,
    threshold: 0.05,
    windowStart: '2026-01-01T10:00:00Z',
    windowEnd: '2026-01-01T10:01:00Z',
    pipeline: 'demo',
    firedAt: new Date().toISOString(),
    ...overrides,
  };
}

/** Advances the test server's clock to `instant` (ms since epoch), whatever real time already passed. */
async function sleepUntil(instant: number): Promise<void> {
  const now = await h.env.currentTimeMs();
  if (instant > now) await h.env.sleep(instant - now);
}

const state = (id: string) => h.env.client.workflow.getHandle(id).query(stateQuery);
const timeline = (id: string) => h.env.client.workflow.getHandle(id).query(timelineQuery);
const entries = async (id: string, type: TimelineEntry['type']) => (await timeline(id)).filter((e) => e.type === type);
const paths = (id: string) => h.receiver.about(id).map((r) => `${r.path}:${r.body.kind}:${r.body.alerts[0]!.level}`);

/**
 * A level fires at its instant plus the workflow task's own latency (the timer is exact; the entry
 * is stamped when the task that handles it starts). The schedule itself is asserted exactly via
 * `nextEscalationAt`, and the payload's absence one second before the instant.
 */
const within = (elapsed: number, instant: number) => elapsed >= instant && elapsed < instant + 1000;

/** Waits until every notification attempt started so far has its outcome in the timeline. */
async function settled(id: string, notifications: number): Promise<void> {
  await waitFor(`${notifications} notification outcomes of ${id}`, async () => (await entries(id, 'notification')).length >= notifications);
}

describe('alert incident workflow (time-skipping)', () => {
  it('escalates level by level at the exact policy times, repeats at the last level, and resolve stops it', async () => {
    const { workflowId } = await fireAlert(h.env.client, h.taskQueue, firing());
    // Level 0: the route receiver (team) and the policy's first level (primary), at once.
    await settled(workflowId, 2);
    expect(paths(workflowId).sort()).toEqual(['/primary:trigger:0', '/team:trigger:0']);
    const opened = Date.parse((await state(workflowId)).openedAt);
    expect(Date.parse((await state(workflowId)).nextEscalationAt!) - opened).toBe(15 * minute);

    // Level 1 (secondary + broken) after 15m: nothing before, exactly at 15m.
    await sleepUntil(opened + 15 * minute - 1000);
    expect(paths(workflowId).filter((p) => p.startsWith('/secondary'))).toEqual([]);
    await sleepUntil(opened + 15 * minute + 1000);
    await waitFor('level 1 payload', () => h.receiver.about(workflowId).some((r) => r.path === '/secondary'));
    const escalated = await entries(workflowId, 'escalated');
    expect(escalated.map((e) => [e.level, within(Date.parse(e.at) - opened, 15 * minute)])).toEqual([[1, true]]);
    expect(Date.parse((await state(workflowId)).nextEscalationAt!) - opened).toBe(45 * minute);
    expect(paths(workflowId)).toContain('/secondary:escalate:1');

    // Level 2 (manager) 30m after level 1, whatever the broken channel did.
    await sleepUntil(opened + 45 * minute - 1000);
    expect(h.receiver.about(workflowId).some((r) => r.path === '/manager')).toBe(false);
    await sleepUntil(opened + 45 * minute + 1000);
    await waitFor('level 2 payload', () => h.receiver.about(workflowId).some((r) => r.path === '/manager'));
    // Meanwhile the broken target was retried (4 attempts, in skipped time) and recorded as failed.
    await settled(workflowId, 5);
    expect((await entries(workflowId, 'escalated')).map((e) => [e.level, within(Date.parse(e.at) - opened, 45 * minute)])).toEqual([
      [1, false],
      [2, true],
    ]);
    expect(Date.parse((await state(workflowId)).nextEscalationAt!) - opened).toBe(105 * minute);

    // Last level: repeated every hour.
    await sleepUntil(opened + 105 * minute - 1000);
    expect(h.receiver.about(workflowId).some((r) => r.body.kind === 'repeat')).toBe(false);
    await sleepUntil(opened + 105 * minute + 1000);
    await waitFor('repeat payload', () => h.receiver.about(workflowId).some((r) => r.path === '/manager' && r.body.kind === 'repeat'));
    const repeated = await entries(workflowId, 'repeated');
    expect(repeated.map((e) => within(Date.parse(e.at) - opened, 105 * minute))).toEqual([true]);

    const handle = h.env.client.workflow.getHandle<typeof alert>(workflowId);
    await h.replay(workflowId);
    const final = await handle.executeUpdate(resolveUpdate, { args: [{ by: 'ann', note: 'rolled back' }] });
    expect(final.status).toBe('resolved');
    // The run stays open while its resolve notice to the broken target is retried: an
    // acknowledge now reaches the validator, which refuses it with the reason.
    const late = await handle.executeUpdate(acknowledgeUpdate, { args: [{ by: 'bob' }] }).catch((e: unknown) => e);
    expect(late).toBeInstanceOf(WorkflowUpdateFailedError);
    expect(String((late as WorkflowUpdateFailedError).cause?.message)).toMatch(/acknowledge: incident alert-[0-9a-f]{16} is already resolved \(by ann at .*\); nothing to acknowledge/);
    const result = await handle.result();
    expect(result.resolvedBy).toBe('ann');
    // Resolve notices reach every target that was paged.
    const resolves = h.receiver.about(workflowId).filter((r) => r.body.kind === 'resolve').map((r) => r.path);
    expect(new Set(resolves)).toEqual(new Set(['/team', '/primary', '/secondary', '/broken', '/manager']));
    const failed = result.timeline.filter((e) => e.type === 'notification' && e.target === 'webhook:broken' && e.kind === 'escalate');
    expect(failed).toHaveLength(1);
    expect(failed[0]).toMatchObject({ delivered: false, attempts: 4 });
    expect(h.receiver.received.filter((r) => r.path === '/broken' && r.body.kind === 'escalate' && r.body.alerts[0]!.incidentId === workflowId)).toHaveLength(4);

    // The audit rows in ClickHouse are the timeline, entry for entry.
    const rows = await waitFor('audit rows', async () => {
      const r = await (
        await h.warehouse.query({
          query: `SELECT seq, event_type, actor, level, status, target, delivered, toUnixTimestamp64Milli(event_time) AS t
                  FROM alert_events FINAL WHERE incident_id = {id:String} ORDER BY seq`,
          query_params: { id: result.incidentId },
          format: 'JSONEachRow',
        })
      ).json<{ seq: number; event_type: string; actor: string; level: number; status: string; target: string; delivered: number | null; t: string }>();
      return r.length === result.timeline.length ? r : undefined;
    });
    expect(rows.map((r) => [r.seq, r.event_type, r.actor, r.level, r.status, r.target, Number(r.t)])).toEqual(
      result.timeline.map((e) => [e.seq, e.type, e.by, e.level, e.status, e.target ?? '', Date.parse(e.at)]),
    );
  });

  it('acknowledge (update) stops escalation and returns the new state; invalid input is refused with a message', async () => {
    const { workflowId } = await fireAlert(h.env.client, h.taskQueue, firing());
    await settled(workflowId, 2);
    const handle = h.env.client.workflow.getHandle<typeof alert>(workflowId);

    const refused = await handle.executeUpdate(acknowledgeUpdate, { args: [{ by: '' }] }).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(WorkflowUpdateFailedError);
    expect(String((refused as WorkflowUpdateFailedError).cause?.message)).toMatch(/acknowledge: input\.by: expected a non-empty name/);

    const acked: IncidentState = await handle.executeUpdate(acknowledgeUpdate, { args: [{ by: 'ann', note: 'on it' }] });
    expect(acked).toMatchObject({ status: 'acknowledged', acknowledgedBy: 'ann', level: 0 });
    await h.env.sleep(3 * 60 * minute);
    await settled(workflowId, 4); // two trigger + two acknowledge notices
    expect(paths(workflowId).sort()).toEqual(['/primary:acknowledge:0', '/primary:trigger:0', '/team:acknowledge:0', '/team:trigger:0']);
    expect(await entries(workflowId, 'escalated')).toEqual([]);
    const described = await handle.describe();
    expect(described.searchAttributes).toMatchObject({ AlertStatus: ['acknowledged'], AlertAcknowledgedBy: ['ann'], AlertSeverity: ['critical'], AlertLevel: [0] });

    await handle.signal(resolveSignal, { by: 'ann' });
    expect((await handle.result()).status).toBe('resolved');
    await h.replay(workflowId);
  });

  it('dedupes repeated firings into one incident and opens a new one after resolution', async () => {
    const f = firing();
    const first = await fireAlert(h.env.client, h.taskQueue, f);
    const second = await fireAlert(h.env.client, h.taskQueue, { ...f, value: 0.2, firedAt: new Date(Date.now() + 1000).toISOString() });
    expect(second.workflowId).toBe(first.workflowId);
    const s = await waitFor('count 2', async () => ((await state(first.workflowId)).count === 2 ? state(first.workflowId) : undefined));
    expect((await entries(first.workflowId, 'opened')).length).toBe(1);
    expect((await entries(first.workflowId, 'fired_again')).length).toBe(1);
    const handle = h.env.client.workflow.getHandle<typeof alert>(first.workflowId);
    await handle.executeUpdate(resolveUpdate, { args: [{ by: 'bob' }] });
    await handle.result();

    await fireAlert(h.env.client, h.taskQueue, f);
    const next = await waitFor('new incident', async () => {
      const n = await state(first.workflowId).catch(() => undefined);
      return n && n.incidentId !== s.incidentId && n.status !== 'resolved' ? n : undefined;
    });
    expect(next.count).toBe(1);
    await h.env.client.workflow.getHandle<typeof alert>(first.workflowId).executeUpdate(resolveUpdate, { args: [{ by: 'bob' }] });
  });

  it('a silence suppresses notifications; the incident stays open, visible and recorded', async () => {
    const f = firing({ labels: { pipeline: uniqueId('p'), service: 'silenced-svc' } });
    // Silences are evaluated at the incident's (workflow) time: the test server's clock.
    const now = await h.env.currentTimeMs();
    await createSilence(h.warehouse, {
      matchers: ['service=silenced-svc'],
      startsAt: new Date(now - minute).toISOString(),
      endsAt: new Date(now + 24 * 60 * minute).toISOString(),
      createdBy: 'ann',
      comment: 'maintenance',
    });
    const { workflowId } = await fireAlert(h.env.client, h.taskQueue, f);
    const suppressed = await waitFor('suppressed entry', async () => (await entries(workflowId, 'suppressed'))[0]);
    expect(suppressed.note).toMatch(/silence /);
    await h.env.sleep(20 * minute);
    await waitFor('level 1 suppressed too', async () => (await entries(workflowId, 'suppressed')).length === 2);
    expect(h.receiver.about(workflowId)).toEqual([]);
    expect((await state(workflowId)).status).toBe('firing');
    await h.env.client.workflow.getHandle<typeof alert>(workflowId).executeUpdate(resolveUpdate, { args: [{ by: 'ann' }] });
  });

  it('an open critical incident inhibits a warning with the same pipeline label', async () => {
    const pipeline = uniqueId('p');
    const critical = await fireAlert(h.env.client, h.taskQueue, firing({ labels: { pipeline } }));
    const incident = (await state(critical.workflowId)).incidentId;
    await waitFor('critical incident recorded in alert_events', async () => {
      const r = await (
        await h.warehouse.query({ query: 'SELECT count() AS n FROM alert_events WHERE incident_id = {id:String}', query_params: { id: incident }, format: 'JSONEachRow' })
      ).json<{ n: string }>();
      return Number(r[0]?.n) > 0;
    });
    const warning = await fireAlert(h.env.client, h.taskQueue, firing({ detector: 'latency_high', severity: 'warning', labels: { pipeline } }));
    const suppressed = await waitFor('inhibited', async () => (await entries(warning.workflowId, 'suppressed'))[0]);
    expect(suppressed.note).toContain(`incident ${critical.workflowId}`);
    expect(h.receiver.about(warning.workflowId)).toEqual([]);
    for (const id of [warning.workflowId, critical.workflowId]) {
      await h.env.client.workflow.getHandle<typeof alert>(id).executeUpdate(resolveUpdate, { args: [{ by: 'ann' }] });
    }
  });

  it('group_wait batches the first notifications of one group into one payload; later ones wait for group_interval', async () => {
    const pipeline = uniqueId('p');
    const a = await fireAlert(h.env.client, h.taskQueue, firing({ severity: 'warning', labels: { pipeline, batch: 'yes', partition: '0' } }));
    const b = await fireAlert(h.env.client, h.taskQueue, firing({ severity: 'warning', labels: { pipeline, batch: 'yes', partition: '1' } }));
    await waitFor('both queued', async () => (await entries(a.workflowId, 'queued_for_group')).length === 1 && (await entries(b.workflowId, 'queued_for_group')).length === 1);
    expect(h.receiver.about(a.workflowId)).toEqual([]);
    await h.env.sleep(31_000);
    await waitFor('batch delivered', async () => (await entries(a.workflowId, 'notification')).length === 1 && (await entries(b.workflowId, 'notification')).length === 1);
    const batches = h.receiver.received.filter((r) => r.body.alerts.some((x) => x.incidentId === a.workflowId));
    expect(batches).toHaveLength(1);
    expect(batches[0]!.path).toBe('/team');
    expect(batches[0]!.body.alerts.map((x) => x.incidentId).sort()).toEqual([a.workflowId, b.workflowId].sort());

    // A later alert of the same group waits for group_interval (5m) after the previous batch.
    const sentAt = Date.parse((await entries(a.workflowId, 'notification'))[0]!.at);
    const c = await fireAlert(h.env.client, h.taskQueue, firing({ severity: 'warning', labels: { pipeline, batch: 'yes', partition: '2' } }));
    await waitFor('third queued', async () => (await entries(c.workflowId, 'queued_for_group')).length === 1);
    await sleepUntil(sentAt + 5 * minute - 2000);
    expect(h.receiver.about(c.workflowId)).toEqual([]);
    await sleepUntil(sentAt + 5 * minute + 2000);
    await waitFor('second batch', async () => (await entries(c.workflowId, 'notification')).length === 1);
    expect(h.receiver.about(c.workflowId).map((r) => r.body.alerts.map((x) => x.incidentId))).toEqual([[c.workflowId]]);
    for (const id of [a.workflowId, b.workflowId, c.workflowId]) {
      await h.env.client.workflow.getHandle<typeof alert>(id).executeUpdate(resolveUpdate, { args: [{ by: 'ann' }] });
    }
  });

  it('a worker restart in the middle of an escalation changes nothing', async () => {
    const { workflowId } = await fireAlert(h.env.client, h.taskQueue, firing());
    await settled(workflowId, 2);
    const opened = Date.parse((await state(workflowId)).openedAt);
    await sleepUntil(opened + 10 * minute);
    await h.stopWorker();
    await h.startWorker();
    await sleepUntil(opened + 15 * minute - 1000);
    expect(h.receiver.about(workflowId).some((r) => r.path === '/secondary')).toBe(false);
    await sleepUntil(opened + 15 * minute + 1000);
    await waitFor('level 1 after restart', () => h.receiver.about(workflowId).some((r) => r.path === '/secondary'));
    expect((await entries(workflowId, 'escalated')).map((e) => [e.level, within(Date.parse(e.at) - opened, 15 * minute)])).toEqual([[1, true]]);
    // The secondary's outcome; the broken target keeps retrying in the background (first test covers it).
    await settled(workflowId, 3);
    await h.replay(workflowId);
    await h.env.client.workflow.getHandle<typeof alert>(workflowId).executeUpdate(resolveUpdate, { args: [{ by: 'ann' }] });
  });

  it('a malformed workflow input fails the run with a message naming the field', async () => {
    const handle = await h.env.client.workflow.start('alert', {
      taskQueue: h.taskQueue,
      workflowId: uniqueId('alert-bad'),
      args: [{ fingerprint: 'nothex', firing: { ...firing(), severity: 'loud' } }],
    });
    const err = await handle.result().catch((e: unknown) => e);
    expect(String((err as Error & { cause?: Error }).cause?.message)).toMatch(/alert input: input\.fingerprint: expected the 16-hex-digit fingerprint.*input\.firing\.severity/);
  });
});
