/**
 * Grouping and timing over a scripted timeline, the real Alertmanager v0.35.0 against the
 * platform's alert workflows (Temporal test server, real notify activity, real audit activities on
 * ClickHouse). Both get the same alerts at the same offsets; Alertmanager's notifications are
 * captured by a local webhook receiver, ours by the harness's receiver. Same routing group
 * (`group_by: [alertname]`), group_wait 2s, group_interval 4s.
 *
 * Asserted equal: how many group notifications, in which order, at which times (group_wait after
 * a group's first alert, group_interval after the group's previous notification), and which
 * alerts are new in each. Asserted as the documented difference (README, "Differences from
 * Alertmanager"): Alertmanager's later notification repeats the group's earlier alerts, ours
 * carries only the alerts not yet notified (each incident notifies once, then escalates or repeats
 * on its own policy).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fireAlert } from '../../../activities/alerting/alert-firing.js';
import type { AlertingConfigInput } from '../../../schemas/alerting/alert-policy.js';
import { uniqueId } from '../../support/stack.js';
import { createAlertHarness, waitFor, type AlertHarness } from '../../workflows/alert-harness.js';
import { alertmanagerYaml, ensureReference, ReferenceAlertmanager } from '../reference.js';

const groupWaitMs = 2000;
const groupIntervalMs = 4000;
/** Timer, task and delivery latency allowed on a busy machine (both sides). */
const toleranceMs = 1200;

/** The script: when each alert starts firing, in ms after the start. */
const script = [
  { at: 0, alertname: 'errors', service: 'A' },
  { at: 500, alertname: 'errors', service: 'B' },
  { at: 1000, alertname: 'latency', service: 'D' },
  { at: 3000, alertname: 'errors', service: 'C' },
];

interface Batch {
  at: number;
  group: string;
  services: string[];
}

const alerting: AlertingConfigInput = {
  version: 1,
  receivers: { team: { targets: ['webhook:team'] } },
  policies: { quiet: { levels: [{ receivers: [] }], repeatInterval: '1h' } },
  route: { receiver: 'team', policy: 'quiet', groupBy: ['alertname'], groupWait: '2s', groupInterval: '4s', repeatInterval: '1h' },
};

let h: AlertHarness;
let am: ReferenceAlertmanager;
let hook: Server;
let hookUrl = '';
const amBatches: Batch[] = [];
let amStart = 0;

beforeAll(async () => {
  hook = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { groupLabels: Record<string, string>; alerts: { labels: Record<string, string> }[] };
      amBatches.push({ at: Date.now() - amStart, group: body.groupLabels.alertname ?? '', services: body.alerts.map((a) => a.labels.service ?? '').sort() });
      res.end('ok');
    });
  });
  await new Promise<void>((r) => hook.listen(0, '127.0.0.1', r));
  hookUrl = `http://127.0.0.1:${(hook.address() as AddressInfo).port}`;
  const { alertmanager } = ensureReference();
  am = await ReferenceAlertmanager.start(
    alertmanager,
    alertmanagerYaml({ route: { receiver: 'team', groupBy: ['alertname'], groupWait: '2s', groupInterval: '4s', repeatInterval: '1h' }, receivers: ['team'], webhookUrl: hookUrl }),
  );
  h = await createAlertHarness(alerting, (url) => ({ 'webhook:team': { type: 'webhook', url: `${url}/team` } }));
  // Warm-up: the first incident pays for the worker's cold start (bundle load, first activity,
  // first ClickHouse queries), which is not what the timeline measures.
  await fireAlert(h.env.client, h.taskQueue, {
    detector: 'warmup',
    labels: { run: uniqueId('warmup') },
    severity: 'warning',
    summary: 'warm-up',
    value: 1,
    threshold: 0,
    windowStart: '2026-01-01T00:00:00Z',
    windowEnd: '2026-01-01T00:01:00Z',
    firedAt: new Date().toISOString(),
  });
  await waitFor('the warm-up notification', () => h.receiver.received.length > 0, 120_000);
}, 300_000);

afterAll(async () => {
  await h?.teardown();
  await am?.stop();
  await new Promise((r) => hook?.close(r));
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, Math.max(0, ms)));

async function runAlertmanager(run: string): Promise<void> {
  amStart = Date.now();
  for (const step of script) {
    await sleep(amStart + step.at - Date.now());
    await am.postAlerts([{ labels: { alertname: step.alertname, severity: 'warning', service: step.service, run } }]);
  }
}

async function runPlatform(run: string): Promise<Batch[]> {
  const batches: Batch[] = [];
  const firstRequest = h.receiver.received.length;
  const start = Date.now();
  const ids = new Map<string, string>();
  for (const step of script) {
    await sleep(start + step.at - Date.now());
    const { workflowId } = await fireAlert(h.env.client, h.taskQueue, {
      detector: step.alertname,
      labels: { service: step.service, run },
      severity: 'warning',
      summary: `${step.alertname} on ${step.service}`,
      value: 1,
      threshold: 0,
      windowStart: '2026-01-01T00:00:00Z',
      windowEnd: '2026-01-01T00:01:00Z',
      firedAt: new Date().toISOString(),
    });
    ids.set(workflowId, step.service);
  }
  // Each request the receiver gets is one group notification; note when it is first seen.
  let seen = firstRequest;
  const deadline = start + 12_000;
  while (Date.now() < deadline) {
    while (seen < h.receiver.received.length) {
      const r = h.receiver.received[seen++]!;
      const services = r.body.alerts.map((a) => ids.get(a.incidentId) ?? '?').sort();
      batches.push({ at: Date.now() - start, group: script.find((s) => s.service === services[0])?.alertname ?? '?', services });
    }
    await sleep(25);
  }
  return batches;
}

describe('grouping and timing vs the real Alertmanager (group_wait 2s, group_interval 4s)', () => {
  it('same notifications at the same times; later notifications carry only new alerts (documented difference)', async () => {
    const run = uniqueId('run');
    const [, ours] = await Promise.all([runAlertmanager(run), runPlatform(run)]);
    await sleep(Math.max(0, amStart + 12_000 - Date.now()));

    // Alertmanager: errors[A,B] at group_wait, latency[D] at 1s + group_wait, errors[A,B,C] group_interval after the first.
    expect(amBatches.map((b) => [b.group, b.services])).toEqual([
      ['errors', ['A', 'B']],
      ['latency', ['D']],
      ['errors', ['A', 'B', 'C']],
    ]);
    const expectedTimes = [groupWaitMs, 1000 + groupWaitMs, groupWaitMs + groupIntervalMs];
    amBatches.forEach((b, i) => expect(Math.abs(b.at - expectedTimes[i]!), `Alertmanager batch ${i} at ${b.at} ms`).toBeLessThan(toleranceMs));

    // Ours: the same groups in the same order at the same times (within the tolerance)...
    expect(ours.map((b) => b.group), JSON.stringify({ ours, amBatches })).toEqual(amBatches.map((b) => b.group));
    ours.forEach((b, i) => expect(Math.abs(b.at - amBatches[i]!.at), `our batch ${i} at ${b.at} ms vs ${amBatches[i]!.at} ms`).toBeLessThan(toleranceMs));
    // ...carrying exactly the alerts that are new in Alertmanager's notification of that group.
    const notified = new Map<string, Set<string>>();
    amBatches.forEach((b, i) => {
      const before = notified.get(b.group) ?? new Set<string>();
      expect(ours[i]!.services).toEqual(b.services.filter((s) => !before.has(s)));
      notified.set(b.group, new Set([...before, ...b.services]));
    });
  });
});
