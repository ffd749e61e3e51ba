/**
 * Signed acknowledge links end to end, against the shared Temporal dev server: a real worker runs
 * the alert workflow on a unique task queue, the webhook channel delivers its first notification
 * to a local receiver, and the link in that notification is used against the platform's HTTP
 * endpoint. Tampered, expired and stale links are refused and leave the incident as it was; the
 * identity recorded is the recipient signed into the link, never a name in the request; requests
 * over the per-client or per-incident budget get 429 and change nothing.
 */
import type { ClickHouseClient } from '@clickhouse/client';
import { Client, Connection } from '@temporalio/client';
import { NativeConnection, Worker } from '@temporalio/worker';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { signAckToken, verifyAckToken } from '../../activities/alerting/ack-token.js';
import { createAlertAuditActivities } from '../../activities/alerting/alert-audit.js';
import { fireAlert } from '../../activities/alerting/alert-firing.js';
import { createAlertRoutingActivities } from '../../activities/alerting/alert-routing.js';
import { createNotifyActivities } from '../../activities/alerting/notify.js';
import { migrate } from '../../infra/clickhouse/migrate.js';
import type { AlertFiring } from '../../schemas/alerting/alert.js';
import { alertingConfigSchema } from '../../schemas/alerting/alert-policy.js';
import { createWarehouse } from '../../workers/connections.js';
import { startHttpServer, type RunningHttpServer } from '../../workers/http-server.js';
import { stackEndpoints, testConfig, uniqueId } from '../support/stack.js';

const secret = 'ack-link-test-secret-0123456789';
const id = uniqueId('ack');
const taskQueue = `ack-link-${id}`;
const config = testConfig();

interface Delivered {
  kind: string;
  ackUrl?: string;
  alerts: { incidentId: string; firstSeen: string }[];
}

/** Local webhook receiver; `next(kind)` resolves with the next notification of that kind. */
class Inbox {
  private readonly received: Delivered[] = [];
  private readonly waiters: { kind: string; resolve: (d: Delivered) => void }[] = [];
  private server: Server | undefined;
  url = '';

  async start(): Promise<void> {
    this.server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        res.end('ok');
        const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as Delivered;
        const waiter = this.waiters.findIndex((w) => w.kind === body.kind);
        if (waiter >= 0) this.waiters.splice(waiter, 1)[0]!.resolve(body);
        else this.received.push(body);
      });
    });
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  next(kind: string): Promise<Delivered> {
    const index = this.received.findIndex((d) => d.kind === kind);
    if (index >= 0) return Promise.resolve(this.received.splice(index, 1)[0]!);
    return new Promise((resolve) => this.waiters.push({ kind, resolve }));
  }

  async stop(): Promise<void> {
    this.server?.closeAllConnections();
    await new Promise<void>((resolve) => this.server?.close(() => resolve()));
  }
}

interface IncidentView {
  status: string;
  acknowledgedBy?: string;
  firstSeen: string;
  timeline: { type: string; by: string; note: string }[];
}

let connection: Connection;
let client: Client;
let nativeConnection: NativeConnection;
let worker: Worker;
let workerRun: Promise<void>;
let http: RunningHttpServer;
let admin: ClickHouseClient;
let warehouse: ClickHouseClient;
const inbox = new Inbox();
const refusals: Record<string, unknown>[] = [];
let workflowId = '';
let firstLink = '';

function firing(firedAt: string): AlertFiring {
  return {
    detector: `ack_link_${id}`,
    labels: { pipeline: 'orders', test: id },
    severity: 'critical',
    summary: 'Error rate 12% on orders',
    value: 0.12,
    threshold: 0.05,
    windowStart: '2026-11-27T06:00:00Z',
    windowEnd: '2026-11-27T06:01:00Z',
    pipeline: 'orders',
    firedAt,
  };
}

async function post(body: Record<string, string>, accept = 'application/json'): Promise<{ status: number; json: Record<string, unknown>; text: string }> {
  const res = await fetch(`${http.url}/ack`, { method: 'POST', headers: { 'content-type': 'application/json', accept }, body: JSON.stringify(body) });
  const text = await res.text();
  return { status: res.status, json: accept === 'application/json' ? (JSON.parse(text) as Record<string, unknown>) : {}, text };
}

async function state(): Promise<IncidentView> {
  return client.workflow.getHandle(workflowId).query<IncidentView>('state');
}

function tokenOf(link: string): string {
  return new URL(link).searchParams.get('token')!;
}

beforeAll(async () => {
  const endpoints = stackEndpoints();
  admin = createWarehouse(config, endpoints, 'default');
  warehouse = createWarehouse(config, endpoints, id);
  await migrate(warehouse, id, { admin });
  connection = await Connection.connect({ address: endpoints.temporalAddress });
  client = new Client({ connection, namespace: config.TEMPORAL_NAMESPACE });
  await inbox.start();
  http = await startHttpServer({
    client,
    secret,
    port: 0,
    // The default bind (127.0.0.1) is what is tested; a roomy budget: the limits get their own server below.
    rateLimit: { perClient: { points: 1000, durationSeconds: 60 } },
    log: { info: () => undefined, warn: (message, meta) => refusals.push({ message, ...meta }) },
  });
  const alerting = alertingConfigSchema.parse({
    version: 1,
    receivers: { ops: { targets: ['webhook:ops'] } },
    policies: { critical: { levels: [{ receivers: [], delay: '0s' }, { receivers: ['ops'], delay: '1h' }], repeatInterval: '1h' } },
    route: { receiver: 'ops', policy: 'critical', groupBy: [], groupWait: '0s', groupInterval: '1m', repeatInterval: '1h' },
  });
  nativeConnection = await NativeConnection.connect({ address: endpoints.temporalAddress });
  worker = await Worker.create({
    connection: nativeConnection,
    namespace: config.TEMPORAL_NAMESPACE,
    taskQueue,
    workflowsPath: fileURLToPath(new URL('../../workflows/index.ts', import.meta.url)),
    activities: {
      ...createAlertRoutingActivities({ alerting, client, taskQueue }),
      ...createAlertAuditActivities({ warehouse }),
      ...createNotifyActivities({
        targets: { 'webhook:ops': { type: 'webhook', url: `${inbox.url}/hook`, timeoutMs: 5000 } },
        signingSecret: secret,
        publicUrl: http.url,
        log: { info: () => undefined, warn: () => undefined },
      }),
    },
  });
  workerRun = worker.run();
  ({ workflowId } = await fireAlert(client, taskQueue, firing('2026-11-27T06:01:00.000Z')));
  const trigger = await inbox.next('trigger');
  expect(trigger.alerts[0]!.incidentId).toBe(workflowId);
  firstLink = trigger.ackUrl!;
});

afterAll(async () => {
  if (workflowId) {
    // Resolve rather than terminate, so the run drains its audit writes before the worker stops.
    const handle = client.workflow.getHandle(workflowId);
    const resolved = await handle.executeUpdate('resolve', { args: [{ by: 'test', note: 'cleanup' }] }).then(() => handle.result()).catch(() => undefined);
    if (resolved === undefined) await handle.terminate('ack-link test done').catch(() => undefined);
  }
  worker?.shutdown();
  await workerRun?.catch(() => undefined);
  await nativeConnection?.close();
  await http?.close();
  await inbox.stop();
  await connection?.close();
  await admin?.command({ query: 'DROP DATABASE IF EXISTS {db:Identifier}', query_params: { db: id } });
  await admin?.close();
  await warehouse?.close();
});

describe('acknowledge links (real worker, real Temporal)', () => {
  it('the notification carries a link to this endpoint for this incident', () => {
    expect(firstLink.startsWith(`${http.url}/ack?token=`)).toBe(true);
    expect(verifyAckToken(tokenOf(firstLink), secret)).toMatchObject({
      ok: true,
      claims: { workflowId, incident: '2026-11-27T06:01:00.000Z', action: 'acknowledge', recipient: 'webhook:ops' },
    });
    expect(http.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
  });

  it('GET only shows a confirmation form; the incident is not acknowledged by opening the link', async () => {
    const res = await fetch(firstLink, { headers: { accept: 'text/html' } });
    expect(res.status).toBe(200);
    expect(res.headers.get('cache-control')).toBe('no-store');
    expect(res.headers.get('referrer-policy')).toBe('no-referrer');
    const html = await res.text();
    expect(html).toContain('<form method="post" action="ack">');
    expect(html).toContain(`value="${tokenOf(firstLink)}"`);
    expect(html).toContain(workflowId);
    // The page shows what is being acknowledged (read from the incident's `state` query).
    expect(html).toContain('<strong>CRITICAL</strong> Error rate 12% on orders');
    // The page says who is recorded, and asks for no name.
    expect(html).toContain('acknowledged by <strong>webhook:ops</strong>, the recipient this link was sent to');
    expect(html).not.toContain('name="by"');
    const s = await state();
    expect(s.status).toBe('notified');
    expect(s.acknowledgedBy).toBeUndefined();
  });

  it('refuses tampered, foreign, malformed, expired and stale-incident tokens, logs the reason without the token, and changes nothing', async () => {
    const token = tokenOf(firstLink);
    const flipped = token.slice(0, 5) + (token[5] === 'A' ? 'B' : 'A') + token.slice(6);
    const cases: [string, string, number, string][] = [
      ['tampered', flipped, 403, 'bad_signature'],
      ['other secret', signAckToken({ workflowId, action: 'acknowledge', expiresAt: Date.now() + 60_000 }, 'some-other-secret-0123456789'), 403, 'bad_signature'],
      ['malformed', 'not-a-token', 400, 'malformed'],
      ['expired', signAckToken({ workflowId, incident: '2026-11-27T06:01:00.000Z', action: 'acknowledge', expiresAt: Date.now() - 1000 }, secret), 410, 'expired'],
    ];
    for (const [name, bad, status, error] of cases) {
      const res = await post({ token: bad, by: 'mallory' });
      expect(res.status, name).toBe(status);
      expect(res.json.error, name).toBe(error);
      const get = await fetch(`${http.url}/ack?token=${encodeURIComponent(bad)}`);
      expect(get.status, `GET ${name}`).toBe(status);
    }
    // Correctly signed, but for an earlier incident of the same alert.
    const stale = signAckToken({ workflowId, incident: '2026-11-26T00:00:00.000Z', action: 'acknowledge', expiresAt: Date.now() + 60_000 }, secret);
    const staleRes = await post({ token: stale, by: 'mallory' });
    expect(staleRes.status).toBe(410);
    expect(staleRes.json.error).toBe('incident_closed');
    const staleGet = await fetch(`${http.url}/ack?token=${encodeURIComponent(stale)}`, { headers: { accept: 'text/html' } });
    expect(staleGet.status).toBe(410);
    expect(await staleGet.text()).not.toContain('<form');

    const logged = JSON.stringify(refusals);
    expect(refusals.filter((r) => r.message === 'ack link refused').map((r) => r.reason)).toEqual(
      expect.arrayContaining(['bad_signature', 'malformed', 'expired']),
    );
    expect(logged).not.toContain(flipped);
    expect(logged).not.toContain(token);

    const s = await state();
    expect(s.status).toBe('notified');
    expect(s.acknowledgedBy).toBeUndefined();
    expect(s.timeline.some((e) => e.by === 'mallory')).toBe(false);
  });

  it('POST with the link acknowledges the incident as the recipient the link was sent to, whatever name the request claims', async () => {
    const res = await post({ token: tokenOf(firstLink), by: 'Ada Lovelace', note: 'on it' });
    expect(res.status).toBe(200);
    expect(res.json).toMatchObject({ ok: true, workflowId, action: 'acknowledge', by: 'webhook:ops', state: { status: 'acknowledged', acknowledgedBy: 'webhook:ops' } });
    const s = await state();
    expect(s.status).toBe('acknowledged');
    expect(s.acknowledgedBy).toBe('webhook:ops');
    expect(s.timeline.find((e) => e.type === 'acknowledged')).toMatchObject({ by: 'webhook:ops', note: 'on it' });
    expect(JSON.stringify(s.timeline)).not.toContain('Ada Lovelace');
    const notice = await inbox.next('acknowledge');
    expect(notice.alerts[0]).toMatchObject({ incidentId: workflowId });
    // Acknowledge notices carry no link: there is nothing left to acknowledge.
    expect(notice.ackUrl).toBeUndefined();
  });

  it('the browser form flow answers with a page, and a second acknowledgement keeps the first person', async () => {
    const res = await fetch(`${http.url}/ack`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'text/html' },
      body: new URLSearchParams({ token: tokenOf(firstLink), by: 'Grace Hopper' }).toString(),
    });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toContain('text/html');
    expect(await res.text()).toContain('Acknowledged by webhook:ops');
    expect((await state()).acknowledgedBy).toBe('webhook:ops');
  });

  it('a resolve link closes the incident; its ack link is then refused as closed (410)', async () => {
    const resolveToken = signAckToken({ workflowId, incident: '2026-11-27T06:01:00.000Z', action: 'resolve', expiresAt: Date.now() + 60_000 }, secret);
    const res = await post({ token: resolveToken, by: 'Ada Lovelace', note: 'fixed the consumer' });
    expect(res.status).toBe(200);
    expect(res.json).toMatchObject({ action: 'resolve', state: { status: 'resolved' } });
    await client.workflow.getHandle(workflowId).result();
    const again = await post({ token: tokenOf(firstLink), by: 'Ada Lovelace' });
    expect(again.status).toBe(410);
    expect(again.json.error).toBe('incident_closed');
    // Opening the link now says so, and offers no button to press.
    const page = await fetch(firstLink, { headers: { accept: 'text/html' } });
    expect(page.status).toBe(410);
    const html = await page.text();
    expect(html).toContain('This incident is closed');
    expect(html).not.toContain('<form');
  });

  it('a link from the resolved incident cannot acknowledge the next incident of the same alert', async () => {
    const next = await fireAlert(client, taskQueue, firing('2026-11-27T07:30:00.000Z'));
    expect(next.workflowId).toBe(workflowId);
    const trigger = await inbox.next('trigger');
    expect(trigger.alerts[0]!.firstSeen).toBe('2026-11-27T07:30:00.000Z');

    const old = await post({ token: tokenOf(firstLink), by: 'mallory' });
    expect(old.status).toBe(410);
    expect(old.json.error).toBe('incident_closed');
    expect((await state()).status).toBe('notified');

    const fresh = await post({ token: tokenOf(trigger.ackUrl!), by: 'Ada Lovelace' });
    expect(fresh.status).toBe(200);
    expect((await state())).toMatchObject({ status: 'acknowledged', acknowledgedBy: 'webhook:ops', firstSeen: '2026-11-27T07:30:00.000Z' });
  });

  it('rate limits: too many /ack requests from one client, or POSTs on one incident, get 429 with Retry-After and change nothing', async () => {
    const limited = await startHttpServer({
      client,
      secret,
      port: 0,
      rateLimit: { perClient: { points: 3, durationSeconds: 60 }, perIncident: { points: 100, durationSeconds: 60 } },
      log: { info: () => undefined, warn: () => undefined },
    });
    const perIncident = await startHttpServer({
      client,
      secret,
      port: 0,
      rateLimit: { perClient: { points: 100, durationSeconds: 60 }, perIncident: { points: 1, durationSeconds: 60 } },
      log: { info: () => undefined, warn: () => undefined },
    });
    try {
      // Per client: counted on every /ack request, valid token or not (guessing is throttled too).
      const statuses: number[] = [];
      for (let i = 0; i < 5; i++) statuses.push((await fetch(`${limited.url}/ack?token=guess-${i}`)).status);
      expect(statuses).toEqual([400, 400, 400, 429, 429]);
      const refused = await fetch(`${limited.url}/ack`, { method: 'POST', headers: { 'content-type': 'application/json', accept: 'application/json' }, body: JSON.stringify({ token: tokenOf(firstLink) }) });
      expect(refused.status).toBe(429);
      expect(Number(refused.headers.get('retry-after'))).toBeGreaterThan(0);
      expect(await refused.json()).toMatchObject({ ok: false, error: 'rate_limited', scope: 'client' });
      expect((await fetch(`${limited.url}/healthz`)).status).toBe(200);

      // Per incident: the second POST on the same incident within the window is refused before Temporal is asked.
      const before = (await state()).timeline.length;
      const ask = () => fetch(`${perIncident.url}/ack`, { method: 'POST', headers: { 'content-type': 'application/json', accept: 'application/json' }, body: JSON.stringify({ token: tokenOf(firstLink), note: 'again' }) });
      expect((await ask()).status).toBe(410); // the first link's incident is closed: answered by the incident
      const second = await ask();
      expect(second.status).toBe(429);
      expect(await second.json()).toMatchObject({ error: 'rate_limited', scope: 'incident' });
      expect((await state()).timeline.length).toBe(before);
    } finally {
      await limited.close();
      await perIncident.close();
    }
  });

  it('answers /healthz, and 404/405 elsewhere', async () => {
    expect((await fetch(`${http.url}/healthz`)).status).toBe(200);
    expect((await fetch(`${http.url}/nope`)).status).toBe(404);
    expect((await fetch(`${http.url}/ack`, { method: 'DELETE' })).status).toBe(405);
  });
});
