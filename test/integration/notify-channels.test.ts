/**
 * The notification channels against real local receivers: a node:http server that records what
 * arrives (and answers as told), and real SMTP servers from npm `smtp-server`. No mocks of the
 * channels: bytes go over sockets and are checked on the receiving side.
 */
import { ApplicationFailure } from '@temporalio/common';
import { MockActivityEnvironment } from '@temporalio/testing';
import { createHmac } from 'node:crypto';
import { createServer, type IncomingHttpHeaders, type Server, type ServerResponse } from 'node:http';
import { createServer as createNetServer, type AddressInfo } from 'node:net';
import { SMTPServer, type SMTPServerError, type SMTPServerOptions } from 'smtp-server';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { verifyAckToken } from '../../activities/alerting/ack-token.js';
import { createNotifyActivities, type NotifyLog } from '../../activities/alerting/notify.js';
import { sendMail } from '../../activities/alerting/email.js';
import { simpleParser } from 'mailparser';
import type { Notification, NotifiedAlert, NotifyResult } from '../../schemas/alerting/notification.js';
import { channelTargetsSchema, undefinedTargetProblems, type ChannelTargets } from '../../schemas/alerting/receivers.js';

const signingSecret = 'integration-signing-secret-0123456789';
const publicUrl = 'http://ack.example.test:8787';

interface Recorded {
  method: string;
  path: string;
  headers: IncomingHttpHeaders;
  raw: Buffer;
}

type Reply = { status: number; body?: string; headers?: Record<string, string> } | 'hang';

/** A local HTTP receiver: records every request; answers from a per-path script, else 200. */
class Receiver {
  readonly requests: Recorded[] = [];
  private readonly scripts = new Map<string, Reply[]>();
  private readonly hanging: ServerResponse[] = [];
  private server: Server | undefined;
  url = '';

  async start(): Promise<void> {
    this.server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const path = (req.url ?? '/').split('?')[0]!;
        this.requests.push({ method: req.method ?? '', path, headers: req.headers, raw: Buffer.concat(chunks) });
        const reply = this.scripts.get(path)?.shift() ?? { status: 200, body: 'ok' };
        if (reply === 'hang') {
          this.hanging.push(res);
          return;
        }
        res.writeHead(reply.status, { 'content-type': 'text/plain', ...reply.headers });
        res.end(reply.body ?? '');
      });
    });
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  script(path: string, replies: Reply[]): void {
    this.scripts.set(path, [...replies]);
  }

  at(path: string): Recorded[] {
    return this.requests.filter((r) => r.path === path);
  }

  reset(): void {
    this.requests.length = 0;
    this.scripts.clear();
    for (const res of this.hanging.splice(0)) res.destroy();
  }

  async stop(): Promise<void> {
    this.reset();
    this.server?.closeAllConnections();
    await new Promise<void>((resolve) => this.server?.close(() => resolve()));
  }
}

interface ReceivedMail {
  from: string;
  to: string[];
  raw: string;
  user: string | undefined;
  secure: boolean;
}

/** A real SMTP server on port 0 that keeps what it received. */
async function startSmtp(options: Partial<SMTPServerOptions>): Promise<{ port: number; mails: ReceivedMail[]; close(): Promise<void> }> {
  const mails: ReceivedMail[] = [];
  const server = new SMTPServer({
    logger: false,
    ...options,
    onData(stream, session, callback) {
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', () => {
        mails.push({
          from: session.envelope.mailFrom ? session.envelope.mailFrom.address : '',
          to: session.envelope.rcptTo.map((r) => r.address),
          raw: Buffer.concat(chunks).toString('utf8'),
          user: session.user as string | undefined,
          secure: session.secure,
        });
        callback(null, 'Message queued as TEST1');
      });
    },
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.server.address() as AddressInfo).port;
  return { port, mails, close: () => new Promise<void>((resolve) => server.close(() => resolve())) };
}

function alert(overrides: Partial<NotifiedAlert> = {}): NotifiedAlert {
  return {
    incidentId: 'alert-00000000000000aa',
    fingerprint: '00000000000000aa',
    detector: 'error_rate_high',
    severity: 'page',
    status: 'firing',
    summary: 'Error rate 12% on orders (threshold 5%)',
    labels: { pipeline: 'orders', topic: 'orders.v1' },
    level: 0,
    firstSeen: '2026-11-27T06:00:00.000Z',
    lastSeen: '2026-11-27T06:05:00.000Z',
    count: 3,
    pipeline: 'orders',
    query: 'SELECT count() FROM events WHERE topic = {topic:String}',
    ...overrides,
  };
}

function notification(target: string, overrides: Partial<Notification> = {}): Notification {
  return {
    notificationId: `alert-00000000000000aa/${target}/1`,
    kind: 'trigger',
    receiver: 'ops',
    target,
    alerts: [alert()],
    ...overrides,
  };
}

/** Runs a promise that must fail with an ApplicationFailure and returns it. */
async function failure(promise: Promise<unknown>): Promise<ApplicationFailure> {
  try {
    await promise;
  } catch (error) {
    expect(error).toBeInstanceOf(ApplicationFailure);
    return error as ApplicationFailure;
  }
  throw new Error('expected the call to fail');
}

const logLines: { level: string; message: string; meta: Record<string, unknown> | undefined }[] = [];
const log: NotifyLog = {
  info: (message, meta) => logLines.push({ level: 'info', message, meta }),
  warn: (message, meta) => logLines.push({ level: 'warn', message, meta }),
};

describe('notification channels (real local receivers)', () => {
  const http = new Receiver();
  let plainSmtp: Awaited<ReturnType<typeof startSmtp>>;
  let tlsSmtp: Awaited<ReturnType<typeof startSmtp>>;
  let targets: ChannelTargets;
  let notify: ReturnType<typeof createNotifyActivities>['notify'];
  const secrets = {
    PD_ROUTING_KEY: 'R0UTINGKEY0000000000000000000000',
    SLACK_URL: '',
    PARTNER_SECRET: 'partner-own-secret-abcdef',
    PARTNER_AUTH: 'Bearer partner-token',
    SMTP_HOST: '127.0.0.1',
    SMTP_USER: 'alerts',
    SMTP_PASSWORD: 'p@ss word',
  };

  beforeAll(async () => {
    await http.start();
    secrets.SLACK_URL = `${http.url}/slack/T000/B000/XXXX`;
    const checkAuth: SMTPServerOptions['onAuth'] = (auth, _session, callback) => {
      if (auth.username === secrets.SMTP_USER && auth.password === secrets.SMTP_PASSWORD) callback(null, { user: auth.username });
      else callback(new Error('Invalid username or password'));
    };
    plainSmtp = await startSmtp({ allowInsecureAuth: true, authOptional: true, hideSTARTTLS: true, authMethods: ['PLAIN', 'LOGIN'], onAuth: checkAuth });
    // Offers STARTTLS with smtp-server's built-in self-signed certificate, and only AUTH LOGIN.
    tlsSmtp = await startSmtp({ authMethods: ['LOGIN'], onAuth: checkAuth });
    targets = channelTargetsSchema.parse({
      'webhook:ops': { type: 'webhook', url: `${http.url}/hook`, headers: { 'X-Team': 'ops', 'Idempotency-Key': 'configured', 'Content-Type': 'text/plain' }, timeoutMs: 5000 },
      'slack:ops': { type: 'slack', urlEnv: 'SLACK_URL' },
      'pagerduty:ops': { type: 'pagerduty', url: `${http.url}/pd/enqueue`, routingKeyEnv: 'PD_ROUTING_KEY' },
      'email:oncall': {
        type: 'email',
        hostEnv: 'SMTP_HOST',
        port: plainSmtp.port,
        allowInsecureAuth: true,
        from: 'Streamwarden <alerts@streamwarden.test>',
        to: ['oncall@example.test', 'Backup Person <backup@example.test>'],
        userEnv: 'SMTP_USER',
        passwordEnv: 'SMTP_PASSWORD',
      },
      'log:ops': { type: 'log' },
      'webhook:partner': { type: 'webhook', url: `${http.url}/partner`, secretEnv: 'PARTNER_SECRET', headersFromEnv: { Authorization: 'PARTNER_AUTH' } },
      'webhook:slow': { type: 'webhook', url: `${http.url}/slow`, timeoutMs: 300 },
      'webhook:down': { type: 'webhook', url: 'http://127.0.0.1:1/nothing-listens-here' },
      'email:partner@example.test': {
        type: 'email',
        host: '127.0.0.1',
        port: tlsSmtp.port,
        startTls: 'required',
        tlsRejectUnauthorized: false,
        from: 'alerts@streamwarden.test',
        to: ['partner@example.test'],
        userEnv: 'SMTP_USER',
        passwordEnv: 'SMTP_PASSWORD',
      },
    });
    notify = createNotifyActivities({ targets, secrets, signingSecret, publicUrl, log }).notify;
  });

  afterAll(async () => {
    await http.stop();
    await plainSmtp.close();
    await tlsSmtp.close();
  });

  beforeEach(() => {
    http.reset();
    logLines.length = 0;
    plainSmtp.mails.length = 0;
    tlsSmtp.mails.length = 0;
  });

  it('checks target ids against their type and against the receivers that refer to them', () => {
    const mismatch = channelTargetsSchema.safeParse({ 'slack:ops': { type: 'webhook', url: 'http://x.test/' } });
    expect(mismatch.error?.issues[0]?.message).toBe('expected type "slack" to match the id slack:ops, got "webhook"');
    expect(channelTargetsSchema.safeParse({ 'sms:ops': { type: 'log' } }).success).toBe(false);
    expect(undefinedTargetProblems({ ops: { targets: ['webhook:ops', 'log:ops'] } }, targets)).toEqual([]);
    expect(undefinedTargetProblems({ ops: { targets: ['webhook:nope'] } }, targets)[0]).toMatch(/^receivers\.ops\.targets: "webhook:nope" is not a configured channel target; configured: webhook:ops, /);
  });

  it('webhook: signed JSON body, idempotency key, timestamp, extra headers, working ack link', async () => {
    const result = await notify(notification('webhook:ops'));
    expect(result).toEqual({ notificationId: 'alert-00000000000000aa/webhook:ops/1', target: 'webhook:ops', delivered: true, duplicate: false, detail: 'HTTP 200 ok', attempts: 1 });

    const [request] = http.at('/hook');
    expect(request).toBeDefined();
    const { headers, raw } = request!;
    expect(request!.method).toBe('POST');
    expect(headers['content-type']).toBe('application/json');
    expect(headers['idempotency-key']).toBe('alert-00000000000000aa/webhook:ops/1');
    expect(headers['x-team']).toBe('ops');
    // What a receiver does: HMAC-SHA256 of the raw body bytes with the shared secret, compared.
    const expected = `sha256=${createHmac('sha256', signingSecret).update(raw).digest('hex')}`;
    expect(headers['x-streamwarden-signature']).toBe(expected);
    const body = JSON.parse(raw.toString('utf8')) as Record<string, unknown> & { alerts: Record<string, unknown>[]; ackUrl: string; sentAt: string };
    expect(Number(headers['x-streamwarden-timestamp'])).toBe(Math.floor(Date.parse(body.sentAt) / 1000));
    expect(body).toMatchObject({ type: 'streamwarden.notification', version: 1, notificationId: 'alert-00000000000000aa/webhook:ops/1', kind: 'trigger', receiver: 'ops', target: 'webhook:ops' });
    expect(body.alerts[0]).toMatchObject({ ...alert(), ackUrl: body.ackUrl });

    const link = new URL(body.ackUrl);
    expect(`${link.origin}${link.pathname}`).toBe(`${publicUrl}/ack`);
    // The link names the incident by its firstSeen, so it cannot act on a later incident with the same id.
    const verified = verifyAckToken(link.searchParams.get('token')!, signingSecret);
    expect(verified).toMatchObject({ ok: true, claims: { workflowId: 'alert-00000000000000aa', incident: '2026-11-27T06:00:00.000Z', action: 'acknowledge' } });
  });

  it('webhook: a target with its own secret signs with it and sends secret headers from the environment', async () => {
    await notify(notification('webhook:partner'));
    const [request] = http.at('/partner');
    expect(request!.headers.authorization).toBe('Bearer partner-token');
    expect(request!.headers['x-streamwarden-signature']).toBe(`sha256=${createHmac('sha256', 'partner-own-secret-abcdef').update(request!.raw).digest('hex')}`);
    expect(request!.headers['x-streamwarden-signature']).not.toBe(`sha256=${createHmac('sha256', signingSecret).update(request!.raw).digest('hex')}`);
  });

  it('webhook: reports a duplicate only when the receiver says it replayed the key', async () => {
    http.script('/hook', [{ status: 200, body: 'seen', headers: { 'Idempotent-Replayed': 'true' } }]);
    const result = await notify(notification('webhook:ops'));
    expect(result.duplicate).toBe(true);
    expect(result.delivered).toBe(true);
  });

  it('inside an activity: the attempt number is reported', async () => {
    const env = new MockActivityEnvironment({
      attempt: 3,
      workflowExecution: { workflowId: 'alert-00000000000000aa', runId: '11111111-2222-3333-4444-555555555555' },
    });
    const result: NotifyResult = await env.run(notify, notification('webhook:ops'));
    expect(result.attempts).toBe(3);
    expect(http.at('/hook')).toHaveLength(1);
  });

  it('slack: incoming-webhook body with text fallback, blocks and an Acknowledge button', async () => {
    const result = await notify(notification('slack:ops', { kind: 'escalate', alerts: [alert({ level: 1, summary: 'Lag <high> & rising' })] }));
    expect(result.delivered).toBe(true);
    const [request] = http.at('/slack/T000/B000/XXXX');
    const body = JSON.parse(request!.raw.toString('utf8')) as { text: string; blocks: { type: string; text?: { text: string }; elements?: { url?: string; text?: unknown }[] }[] };
    expect(body.text).toContain('[PAGE] escalated to level 2: Lag <high> & rising');
    expect(body.blocks[0]).toMatchObject({ type: 'header' });
    const section = body.blocks.find((b) => b.type === 'section');
    // Slack mrkdwn needs &, < and > escaped or it reads them as links/entities.
    expect(section!.text!.text).toContain('Lag &lt;high&gt; &amp; rising');
    expect(section!.text!.text).toContain('pipeline=orders, topic=orders.v1');
    const actions = body.blocks.find((b) => b.type === 'actions');
    const button = actions!.elements![0]!;
    expect(verifyAckToken(new URL(button.url!).searchParams.get('token')!, signingSecret).ok).toBe(true);
    expect(body.text).toContain(button.url!);
  });

  it('pagerduty: Events v2 trigger with routing key, dedup_key = fingerprint, mapped severity, custom details and link', async () => {
    const second = alert({ incidentId: 'alert-00000000000000bb', fingerprint: '00000000000000bb', severity: 'warning', summary: 'Lag growing' });
    const result = await notify(notification('pagerduty:ops', { alerts: [alert(), second] }));
    expect(result.detail).toBe('trigger 00000000000000aa: HTTP 200; trigger 00000000000000bb: HTTP 200');
    const events = http.at('/pd/enqueue').map((r) => JSON.parse(r.raw.toString('utf8')) as Record<string, unknown> & { payload: Record<string, unknown>; links: { href: string }[] });
    expect(events).toHaveLength(2);
    expect(events[0]).toMatchObject({
      routing_key: secrets.PD_ROUTING_KEY,
      event_action: 'trigger',
      dedup_key: '00000000000000aa',
      client: 'streamwarden',
      payload: {
        summary: 'Error rate 12% on orders (threshold 5%)',
        source: 'streamwarden:orders',
        severity: 'critical',
        timestamp: '2026-11-27T06:05:00.000Z',
        component: 'error_rate_high',
        group: 'orders',
        custom_details: { incident_id: 'alert-00000000000000aa', count: 3, level: 0, labels: { pipeline: 'orders', topic: 'orders.v1' } },
      },
    });
    expect(events[1]).toMatchObject({ dedup_key: '00000000000000bb', payload: { severity: 'warning' } });
    expect(events[1]!.client_url).toBe(events[1]!.links[0]!.href);
    const link = verifyAckToken(new URL(events[1]!.links[0]!.href).searchParams.get('token')!, signingSecret);
    expect(link).toMatchObject({ ok: true, claims: { workflowId: 'alert-00000000000000bb' } });
  });

  it('pagerduty: acknowledge and resolve become the matching event actions on the same dedup_key', async () => {
    await notify(notification('pagerduty:ops', { kind: 'acknowledge', notificationId: 'n-ack', alerts: [alert({ status: 'acknowledged', acknowledgedBy: 'alice' })] }));
    await notify(notification('pagerduty:ops', { kind: 'resolve', notificationId: 'n-res', alerts: [alert({ status: 'resolved' })] }));
    const events = http.at('/pd/enqueue').map((r) => JSON.parse(r.raw.toString('utf8')) as Record<string, unknown>);
    expect(events).toEqual([
      { routing_key: secrets.PD_ROUTING_KEY, event_action: 'acknowledge', dedup_key: '00000000000000aa' },
      { routing_key: secrets.PD_ROUTING_KEY, event_action: 'resolve', dedup_key: '00000000000000aa' },
    ]);
  });

  it('email: SMTP with AUTH PLAIN; envelope, headers, Message-ID from the notification id, ack link in the body', async () => {
    const result = await notify(notification('email:oncall'));
    expect(result.detail).toMatch(/^SMTP 250 .*queued as TEST1/);
    expect(plainSmtp.mails).toHaveLength(1);
    const mail = plainSmtp.mails[0]!;
    expect(mail.user).toBe('alerts');
    expect(mail.from).toBe('alerts@streamwarden.test');
    expect(mail.to).toEqual(['oncall@example.test', 'backup@example.test']);
    // Read back with a reference MIME parser (mailparser), as a mail client would.
    const parsed = await simpleParser(mail.raw);
    expect(parsed.from?.value).toEqual([{ name: 'Streamwarden', address: 'alerts@streamwarden.test' }]);
    const to = Array.isArray(parsed.to) ? parsed.to.flatMap((a) => a.value) : (parsed.to?.value ?? []);
    expect(to).toEqual([
      { name: '', address: 'oncall@example.test' },
      { name: 'Backup Person', address: 'backup@example.test' },
    ]);
    expect(parsed.subject).toBe('[PAGE] Error rate 12% on orders (threshold 5%)');
    expect(Math.abs(parsed.date!.getTime() - Date.now())).toBeLessThan(60_000);
    expect(parsed.headers.get('x-streamwarden-notification-id')).toBe('alert-00000000000000aa/email:oncall/1');
    expect(parsed.headers.get('auto-submitted')).toBe('auto-generated');
    const messageId = /^<([^>]+)>$/.exec(parsed.messageId!)![1]!;
    expect(messageId).toMatch(/^[0-9a-f]{32}@streamwarden\.test$/);
    const body = parsed.text!;
    const link = /Acknowledge: (\S+)/.exec(body)![1]!;
    expect(verifyAckToken(new URL(link).searchParams.get('token')!, signingSecret)).toMatchObject({ ok: true, claims: { workflowId: 'alert-00000000000000aa' } });
    expect(body).toContain('Labels: pipeline=orders, topic=orders.v1');

    // The same notification again carries the same Message-ID (a retry is recognisable as such).
    await notify(notification('email:oncall'));
    expect((await simpleParser(plainSmtp.mails[1]!.raw)).messageId).toBe(`<${messageId}>`);
  });

  it('email: STARTTLS (required) then AUTH LOGIN; non-ASCII subject is encoded', async () => {
    await notify(notification('email:partner@example.test', { alerts: [alert({ summary: 'Débit en baisse — commandes' })] }));
    expect(tlsSmtp.mails).toHaveLength(1);
    const mail = tlsSmtp.mails[0]!;
    expect(mail.secure).toBe(true);
    expect(mail.user).toBe('alerts');
    // The header is RFC 2047-encoded on the wire (not raw UTF-8), and decodes to the original.
    const rawSubject = /\r\nSubject: ((?:.|\r\n[ \t])+)\r\n/i.exec(mail.raw)![1]!;
    expect(rawSubject).toMatch(/^[\x20-\x7e\r\n\t]+$/);
    expect(rawSubject).toContain('=?UTF-8?');
    const parsed = await simpleParser(mail.raw);
    expect(parsed.subject).toBe('[PAGE] Débit en baisse — commandes');
    expect(parsed.text).toContain('Débit en baisse — commandes');
  });

  it('smtp: dot-stuffing survives the round trip', async () => {
    const text = 'line one\r\n.\r\n..two dots\r\n.leading dot\r\nlast';
    await sendMail(
      { host: '127.0.0.1', port: plainSmtp.port, secure: false, startTls: 'off', rejectUnauthorized: true, allowInsecureAuth: false, heloName: 'test.local', timeoutMs: 5000 },
      { envelope: { from: 'a@streamwarden.test', to: ['b@example.test'] }, raw: `Subject: dots\r\n\r\n${text}` },
    );
    expect(plainSmtp.mails[0]!.raw).toBe(`Subject: dots\r\n\r\n${text}\r\n`);
  });

  it('smtp: credentials are not sent over a plain connection unless allowed', async () => {
    const options = { host: '127.0.0.1', port: plainSmtp.port, secure: false, startTls: 'auto' as const, rejectUnauthorized: true, allowInsecureAuth: false, heloName: 'test.local', timeoutMs: 5000, auth: { user: 'alerts', pass: 'x' } };
    const mail = { envelope: { from: 'a@streamwarden.test', to: ['b@example.test'] }, raw: 'Subject: x\r\n\r\nx' };
    // The server offers no STARTTLS: with credentials, the client must not fall back to plain AUTH.
    const error = await sendMail(options, mail).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'channel_config', retriable: false });
    // startTls "off" with credentials is refused before connecting.
    expect(await sendMail({ ...options, startTls: 'off' }, mail).catch((e: unknown) => e)).toMatchObject({ code: 'channel_config', retriable: false });
    expect(plainSmtp.mails).toHaveLength(0);
    // Allowed explicitly (a local relay): AUTH goes through and the mail is accepted.
    await sendMail({ ...options, allowInsecureAuth: true, auth: { user: 'alerts', pass: 'p@ss word' } }, mail);
    expect(plainSmtp.mails).toHaveLength(1);
    expect(plainSmtp.mails[0]!.user).toBe('alerts');
  });

  it('smtp: a permanent 5xx refusal is final, a 4xx is retryable', async () => {
    const reject = (code: number) => async () => {
      const server = await startSmtp({
        hideSTARTTLS: true,
        authOptional: true,
        onRcptTo(_address, _session, callback) {
          const error = new Error(code >= 500 ? 'No such user here' : 'Try again later') as SMTPServerError;
          error.responseCode = code;
          callback(error);
        },
      });
      try {
        const notifyVia = createNotifyActivities({
          targets: { 'email:m': { type: 'email', host: '127.0.0.1', port: server.port, from: 'a@streamwarden.test', to: ['nobody@example.test'] } },
          signingSecret,
          publicUrl,
          log,
        }).notify;
        return await failure(notifyVia(notification('email:m')));
      } finally {
        await server.close();
      }
    };
    const permanent = await reject(550)();
    expect(permanent.type).toBe('channel_rejected');
    expect(permanent.nonRetryable).toBe(true);
    expect(permanent.message).toContain('550');
    const transient = await reject(451)();
    expect(transient.type).toBe('channel_unavailable');
    expect(transient.nonRetryable).toBe(false);
  });

  it('smtp: a server that never greets is a retryable timeout, a closed port is retryable', async () => {
    const silent = createNetServer(() => undefined);
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    const options = { host: '127.0.0.1', secure: false, startTls: 'off' as const, rejectUnauthorized: true, allowInsecureAuth: false, heloName: 'test.local', timeoutMs: 2000 };
    try {
      // The socket's idle timer used to share the greeting's duration and, for a connect within one
      // millisecond, fire first (a bare "CONN: Timeout", 1 send in 10 at 20 ms; CI saw it at 2 s).
      // Many short sends make that race show on the old code. Every error must name the phase it
      // timed out in: the greeting, or (a loaded machine taking over 20 ms to connect) the connect.
      const messages = new Map<string, number>();
      for (let i = 0; i < 150; i += 1) {
        const timeout = await sendMail({ ...options, timeoutMs: 20, port: (silent.address() as AddressInfo).port }, { envelope: { from: 'a@streamwarden.test', to: ['b@example.test'] }, raw: 'Subject: x\r\n\r\nx' }).catch((e: unknown) => e);
        expect(timeout).toMatchObject({ code: 'channel_timeout', retriable: true });
        const message = (timeout as Error).message.replace(/:\d+:/, ':PORT:');
        messages.set(message, (messages.get(message) ?? 0) + 1);
      }
      for (const message of messages.keys()) expect(message).toMatch(/^SMTP 127\.0\.0\.1:PORT: CONN: (Greeting never received|Connection timeout)$/);
      // The 2 s limit leaves the connect ample time: then it is the greeting that is waited for.
      const slow = await sendMail({ ...options, port: (silent.address() as AddressInfo).port }, { envelope: { from: 'a@streamwarden.test', to: ['b@example.test'] }, raw: 'x' }).catch((e: unknown) => e);
      expect((slow as Error).message).toMatch(/Greeting never received/);
    } finally {
      silent.close();
    }
    const refused = await sendMail({ ...options, port: 1 }, { envelope: { from: 'a@streamwarden.test', to: ['b@example.test'] }, raw: 'x' }).catch((e: unknown) => e);
    expect(refused).toMatchObject({ code: 'channel_unavailable', retriable: true });
  });

  it('log: one structured line with the alert and its ack link', async () => {
    const result = await notify(notification('log:ops'));
    expect(result).toMatchObject({ delivered: true, detail: 'logged' });
    const line = logLines.find((l) => l.message === 'alert notification');
    expect(line?.meta).toMatchObject({ channel: 'log', notificationId: 'alert-00000000000000aa/log:ops/1', kind: 'trigger', target: 'log:ops' });
    const [logged] = (line!.meta!.alerts as { ackUrl: string; severity: string }[]);
    expect(logged!.severity).toBe('page');
    expect(verifyAckToken(new URL(logged!.ackUrl).searchParams.get('token')!, signingSecret).ok).toBe(true);
  });

  it('5xx is retryable and the next attempt delivers', async () => {
    http.script('/hook', [{ status: 503, body: 'upstream down' }]);
    const first = await failure(notify(notification('webhook:ops')));
    expect(first.type).toBe('channel_unavailable');
    expect(first.nonRetryable).toBe(false);
    expect(first.message).toContain('HTTP 503');
    expect(first.details?.[0]).toMatchObject({ status: 503, body: 'upstream down' });
    const second = await notify(notification('webhook:ops'));
    expect(second.delivered).toBe(true);
    // Both attempts carried the same idempotency key: the receiver can drop a late duplicate.
    expect(http.at('/hook').map((r) => r.headers['idempotency-key'])).toEqual(['alert-00000000000000aa/webhook:ops/1', 'alert-00000000000000aa/webhook:ops/1']);
    const warned = logLines.find((l) => l.level === 'warn');
    expect(warned?.meta).toMatchObject({ code: 'channel_unavailable', retriable: true, target: 'webhook:ops' });
  });

  it('429 is retryable and passes Retry-After on as the next retry delay', async () => {
    http.script('/hook', [{ status: 429, body: 'slow down', headers: { 'Retry-After': '7' } }]);
    const error = await failure(notify(notification('webhook:ops')));
    expect(error.type).toBe('channel_unavailable');
    expect(error.nonRetryable).toBe(false);
    expect(error.nextRetryDelay).toBe(7000);
  });

  it('400 is a final rejection with status and body excerpt', async () => {
    http.script('/pd/enqueue', [{ status: 400, body: '{"status":"invalid event","errors":["\'routing_key\' is invalid"]}' }]);
    const error = await failure(notify(notification('pagerduty:ops')));
    expect(error.type).toBe('channel_rejected');
    expect(error.nonRetryable).toBe(true);
    expect(error.message).toContain('HTTP 400');
    expect(error.message).toContain('routing_key');
    // The routing key is a secret and stays out of the error.
    expect(error.message).not.toContain(secrets.PD_ROUTING_KEY);
  });

  it('a redirect is not followed and is final', async () => {
    http.script('/hook', [{ status: 302, headers: { Location: 'http://elsewhere.test/hook' } }]);
    const error = await failure(notify(notification('webhook:ops')));
    expect(error.type).toBe('channel_rejected');
    expect(error.message).toContain('redirect 302 to http://elsewhere.test');
  });

  it('Slack errors do not leak the secret webhook URL', async () => {
    http.script('/slack/T000/B000/XXXX', [{ status: 404, body: 'no_service' }]);
    const error = await failure(notify(notification('slack:ops')));
    expect(error.type).toBe('channel_rejected');
    expect(error.message).toContain('no_service');
    expect(error.message).not.toContain('/T000/');
  });

  it('a receiver that does not answer in time is a retryable timeout', async () => {
    http.script('/slow', ['hang']);
    const error = await failure(notify(notification('webhook:slow')));
    expect(error.type).toBe('channel_timeout');
    expect(error.nonRetryable).toBe(false);
    expect(http.at('/slow')).toHaveLength(1);
  });

  it('a refused connection is retryable', async () => {
    const error = await failure(notify(notification('webhook:down')));
    expect(error.type).toBe('channel_unavailable');
    expect(error.nonRetryable).toBe(false);
  });

  it('unknown targets and invalid notifications are final and say what was expected', async () => {
    const unknown = await failure(notify(notification('webhook:nobody')));
    expect(unknown).toMatchObject({ type: 'channel_config', nonRetryable: true });
    expect(unknown.message).toContain('target "webhook:nobody" (receiver ops) is not a configured channel target; expected one of webhook:ops, slack:ops');
    // Inherited object keys are not targets.
    expect(await failure(notify(notification('constructor')))).toMatchObject({ type: 'channel_config' });
    const invalid = await failure(notify({ ...notification('log:ops'), alerts: [] }));
    expect(invalid).toMatchObject({ type: 'notification_invalid', nonRetryable: true });
    expect(invalid.message).toContain('alerts');
    expect(http.requests).toHaveLength(0);
  });

  it('with missingSecrets "disable", an unset secret disables only its target, with a warning naming the variable', async () => {
    const partial: Record<string, string> = { ...secrets };
    delete partial.PD_ROUTING_KEY;
    const lenient = createNotifyActivities({ targets, secrets: partial, signingSecret, publicUrl, log, missingSecrets: 'disable' }).notify;
    const warning = logLines.find((l) => l.message === 'channel targets disabled until their environment variables are set');
    expect(warning?.meta).toMatchObject({ targets: ['pagerduty:ops'] });
    expect(JSON.stringify(warning?.meta)).toContain('PD_ROUTING_KEY');
    // A disabled target is skipped, not failed: nothing is sent, nothing is thrown (so no activity
    // failure is logged per page), and the result says why.
    const warningsBefore = logLines.filter((l) => l.level === 'warn').length;
    const skipped = await lenient(notification('pagerduty:ops'));
    expect(skipped).toMatchObject({ delivered: false, skipped: true, target: 'pagerduty:ops' });
    expect(skipped.detail).toContain('target disabled: routingKeyEnv names environment variable PD_ROUTING_KEY, which is not set');
    expect(logLines.filter((l) => l.level === 'warn').length).toBe(warningsBefore);
    expect(http.at('/pd/enqueue')).toHaveLength(0);
    expect((await lenient(notification('webhook:ops'))).delivered).toBe(true);
  });

  it('refuses to start when a secret named in the config is not set, naming the variable', () => {
    const partial: Record<string, string> = { ...secrets };
    delete partial.PD_ROUTING_KEY;
    expect(() => createNotifyActivities({ targets, secrets: partial, signingSecret, publicUrl, log })).toThrow(
      /pagerduty:ops: routingKeyEnv names environment variable PD_ROUTING_KEY, which is not set/,
    );
  });
});
