/**
 * The platform's small HTTP endpoint: signed acknowledge links and a health check.
 *
 * `GET /ack?token=...` only shows a confirmation page with a button: link previews, mail scanners
 * and chat unfurlers fetch links, and must not acknowledge anything. The button POSTs the token
 * (plus an optional note) to `POST /ack`, which verifies the token and executes the Temporal Update
 * named by the token's action (`acknowledge` or `resolve`) with `{ by, note }`, answering 200 with
 * the incident's new state. `by` is the recipient signed into the token (the channel target the
 * link was sent to); a `by` field in the request is ignored, so nobody can act under another name.
 * A malformed token is 400, a wrong or tampered one 403, an expired one or a closed incident 410, a
 * refusal by the workflow (already resolved) 409, too many requests 429 (per client address on
 * every `/ack` request, and per incident on `POST /ack`, with `Retry-After`). Refusals are logged
 * with their reason, never with the token.
 *
 * Safe by default: it binds 127.0.0.1 unless told otherwise (see workers/ack-endpoint.ts for the
 * refusal to bind elsewhere without a configured signing secret).
 */
import { WorkflowNotFoundError, WorkflowUpdateFailedError, type Client } from '@temporalio/client';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { RateLimiterMemory, RateLimiterRes } from 'rate-limiter-flexible';
import { verifyAckToken, type AckClaims, type AckTokenRefusal } from '../activities/alerting/ack-token.js';

/** The logging surface the endpoint needs (the worker's logger and `console` both fit). */
export interface HttpServerLog {
  info(message: string, meta?: Record<string, unknown>): void;
  warn(message: string, meta?: Record<string, unknown>): void;
}

/** Options of {@link startHttpServer}. */
export interface HttpServerOptions {
  /** Temporal client the updates go through. */
  client: Client;
  /** HMAC key the links were signed with (ALERT_SIGNING_SECRET). */
  secret: string;
  /** TCP port; 0 picks a free one (tests). @default 8787 */
  port?: number;
  /** Interface to bind. @default "127.0.0.1" (only this machine; see workers/ack-endpoint.ts) */
  host?: string;
  log: HttpServerLog;
  /** How long POST /ack waits for the workflow to answer the update. @default 30000 */
  updateTimeoutMs?: number;
  /** Request budgets; a request over budget gets 429 with `Retry-After`. */
  rateLimit?: {
    /** Every `/ack` request (GET or POST, valid token or not) per client address. @default { points: 30, durationSeconds: 60 } */
    perClient?: RateBudget;
    /** `POST /ack` with a valid token, per incident (workflow id), whatever the client. @default { points: 10, durationSeconds: 60 } */
    perIncident?: RateBudget;
  };
}

/** A fixed-window request budget: `points` requests per `durationSeconds`. */
export interface RateBudget {
  points: number;
  durationSeconds: number;
}

/** A running endpoint. */
export interface RunningHttpServer {
  /** Base URL it listens on, e.g. `http://127.0.0.1:8787`. */
  url: string;
  close(): Promise<void>;
}

const maxBodyBytes = 16 * 1024;
const maxNoteLength = 500;
/** Recorded as the actor when a token carries no recipient (issued before the claim existed). */
export const unknownRecipient = 'unknown recipient (ack link)';

const refusalStatus: Record<AckTokenRefusal, number> = { malformed: 400, bad_signature: 403, expired: 410 };
const refusalText: Record<AckTokenRefusal, string> = {
  malformed: 'This link is not a valid acknowledge link (the token is missing or damaged). Copy the whole link from the notification.',
  bad_signature: 'This link was not issued by this platform, or it was changed. Nothing was done.',
  expired: 'This link has expired. Acknowledge the incident from the Temporal UI, the CLI (platform alerts ack ID --by NAME) or a newer notification.',
};

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

const closedText = 'This incident is closed (resolved, or replaced by a newer incident); nothing was changed.';
const staleText =
  'This link belongs to an earlier incident of the same alert, which is closed; a newer incident is open and was not changed. Use its own notification, the Temporal UI or the CLI.';

function page(title: string, body: string): string {
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1"><meta name="robots" content="noindex">
<title>${escapeHtml(title)}</title><style>body{font:16px/1.5 system-ui,sans-serif;max-width:40rem;margin:3rem auto;padding:0 1rem}input,textarea{font:inherit;width:100%;margin:.25rem 0 1rem}button{font:inherit;padding:.5rem 1.5rem}pre{background:#f4f4f4;padding:1rem;overflow:auto}</style></head>
<body><h1>${escapeHtml(title)}</h1>${body}</body></html>`;
}

// The token is a bearer capability in the URL: keep it out of caches, Referer headers and frames.
const securityHeaders = {
  'cache-control': 'no-store',
  'referrer-policy': 'no-referrer',
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'content-security-policy': "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
};

function send(res: ServerResponse, status: number, contentType: string, body: string, extra: Record<string, string> = {}): void {
  res.writeHead(status, { ...securityHeaders, 'content-type': contentType, 'content-length': String(Buffer.byteLength(body)), ...extra });
  res.end(body);
}

function wantsHtml(req: IncomingMessage): boolean {
  return (req.headers.accept ?? '').includes('text/html');
}

/** Answers in JSON, or as a small page for a browser. */
function reply(req: IncomingMessage, res: ServerResponse, status: number, json: Record<string, unknown>, title: string, htmlBody: string): void {
  if (wantsHtml(req)) send(res, status, 'text/html; charset=utf-8', page(title, htmlBody));
  else send(res, status, 'application/json; charset=utf-8', `${JSON.stringify(json)}\n`);
}

/** The link's incident marker does not match the open incident. */
class StaleLinkError extends Error {}

class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

async function readBody(req: IncomingMessage): Promise<Record<string, string>> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > maxBodyBytes) throw new HttpError(413, `request body larger than ${maxBodyBytes} bytes`);
    chunks.push(chunk);
  }
  const text = Buffer.concat(chunks).toString('utf8');
  if (text.trim() === '') return {};
  const type = (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
  if (type === 'application/json') {
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch {
      throw new HttpError(400, 'body: expected a JSON object like {"token": "...", "by": "alice"}');
    }
    if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new HttpError(400, 'body: expected a JSON object like {"token": "...", "by": "alice"}');
    return Object.fromEntries(Object.entries(value).flatMap(([k, v]) => (typeof v === 'string' ? [[k, v]] : [])));
  }
  if (type === 'application/x-www-form-urlencoded' || type === '') return Object.fromEntries(new URLSearchParams(text));
  throw new HttpError(415, `content-type: expected application/x-www-form-urlencoded or application/json, got ${type}`);
}

/** Collapses whitespace and drops control characters; the workflow validates the result again. */
function cleanText(value: string | undefined, field: string, max: number): string | undefined {
  if (value === undefined) return undefined;
  // eslint-disable-next-line no-control-regex
  const clean = value.replace(/[\u0000-\u001f\u007f]+/g, ' ').replace(/\s+/g, ' ').trim();
  if (clean.length > max) throw new HttpError(400, `${field}: expected at most ${max} characters, got ${clean.length}`);
  return clean === '' ? undefined : clean;
}

/** Starts the endpoint (see the module comment for the routes and status codes). */
export async function startHttpServer(options: HttpServerOptions): Promise<RunningHttpServer> {
  const { client, secret, log } = options;
  const updateTimeoutMs = options.updateTimeoutMs ?? 30_000;
  const perClient = options.rateLimit?.perClient ?? { points: 30, durationSeconds: 60 };
  const perIncident = options.rateLimit?.perIncident ?? { points: 10, durationSeconds: 60 };
  // rate-limiter-flexible's in-memory limiter: one process, fixed windows, expired keys swept.
  const clientLimiter = new RateLimiterMemory({ keyPrefix: 'ack-client', points: perClient.points, duration: perClient.durationSeconds });
  const incidentLimiter = new RateLimiterMemory({ keyPrefix: 'ack-incident', points: perIncident.points, duration: perIncident.durationSeconds });

  /** Takes one point; on refusal answers 429 and returns false. */
  async function withinBudget(req: IncomingMessage, res: ServerResponse, limiter: RateLimiterMemory, key: string, scope: 'client' | 'incident'): Promise<boolean> {
    try {
      await limiter.consume(key);
      return true;
    } catch (refusal) {
      if (!(refusal instanceof RateLimiterRes)) throw refusal;
      const retryAfter = Math.max(1, Math.ceil(refusal.msBeforeNext / 1000));
      log.warn('ack request rate-limited', { scope, remote: req.socket.remoteAddress, retryAfterSeconds: retryAfter });
      const message = scope === 'client' ? 'Too many requests from your address; try again shortly.' : 'Too many attempts on this incident; try again shortly.';
      const body = { ok: false, error: 'rate_limited', scope, message, retryAfterSeconds: retryAfter };
      if (wantsHtml(req)) send(res, 429, 'text/html; charset=utf-8', page('Slow down', `<p>${escapeHtml(message)}</p>`), { 'retry-after': String(retryAfter) });
      else send(res, 429, 'application/json; charset=utf-8', `${JSON.stringify(body)}\n`, { 'retry-after': String(retryAfter) });
      return false;
    }
  }

  function verify(req: IncomingMessage, res: ServerResponse, token: string | undefined): AckClaims | undefined {
    const result = verifyAckToken(token ?? '', secret);
    if (result.ok) return result.claims;
    log.warn('ack link refused', { reason: result.reason, method: req.method, remote: req.socket.remoteAddress, userAgent: req.headers['user-agent'] });
    reply(req, res, refusalStatus[result.reason], { ok: false, error: result.reason, message: refusalText[result.reason] }, 'Link refused', `<p>${escapeHtml(refusalText[result.reason])}</p>`);
    return undefined;
  }

  /**
   * What the incident says about itself, for the confirmation page: a description, or why the link
   * can no longer change anything (`closed`: the workflow is not running, the incident is resolved,
   * or the link belongs to an earlier incident of the alert). Nothing when it cannot be asked: the
   * POST then gives the definitive answer.
   */
  async function incidentView(claims: AckClaims): Promise<{ html: string; closed?: string }> {
    try {
      return await client.withDeadline(Date.now() + 5_000, async () => {
        const handle = client.workflow.getHandle(claims.workflowId);
        const { status } = await handle.describe();
        if (status.name !== 'RUNNING') return { html: '', closed: closedText };
        const state: unknown = await handle.query('state');
        if (typeof state !== 'object' || state === null) return { html: '' };
        const s = state as Record<string, unknown>;
        const text = (key: string): string => (typeof s[key] === 'string' || typeof s[key] === 'number' ? String(s[key]) : '?');
        if (claims.incident !== undefined && typeof s.firstSeen === 'string' && s.firstSeen !== claims.incident) return { html: '', closed: staleText };
        if (s.status === 'resolved') return { html: '', closed: closedText };
        return {
          html: `<p><strong>${escapeHtml(text('severity').toUpperCase())}</strong> ${escapeHtml(text('summary'))}<br>Status ${escapeHtml(text('status'))}, level ${escapeHtml(text('level'))}, first seen ${escapeHtml(text('firstSeen'))}${typeof s.acknowledgedBy === 'string' ? `, acknowledged by ${escapeHtml(s.acknowledgedBy)}` : ''}.</p>`,
        };
      });
    } catch {
      // Unknown or unreachable: the POST gives the definitive answer.
      return { html: '' };
    }
  }

  async function confirmPage(req: IncomingMessage, res: ServerResponse, token: string, claims: AckClaims): Promise<void> {
    const verb = claims.action === 'resolve' ? 'Resolve' : 'Acknowledge';
    const view = await incidentView(claims);
    if (view.closed !== undefined) {
      // No button for an incident nothing can change any more (the POST would answer 410 too).
      reply(req, res, 410, { ok: false, error: 'incident_closed', message: view.closed, workflowId: claims.workflowId, action: claims.action }, 'Incident closed', `<p>${escapeHtml(view.closed)}</p>`);
      return;
    }
    const body = `<p>${verb} incident <code>${escapeHtml(claims.workflowId)}</code>? Nothing happens until you press the button.</p>${view.html}
<p>This is recorded as acknowledged by <strong>${escapeHtml(claims.recipient ?? unknownRecipient)}</strong>, the recipient this link was sent to.</p>
<form method="post" action="ack"><input type="hidden" name="token" value="${escapeHtml(token)}">
<label>Note (optional)<textarea name="note" rows="2" maxlength="${maxNoteLength}"></textarea></label>
<button type="submit">${verb}</button></form>
<p><small>Link valid until ${escapeHtml(new Date(claims.expiresAt).toISOString())}.</small></p>`;
    send(res, 200, 'text/html; charset=utf-8', page(`${verb} incident`, body));
  }

  async function execute(req: IncomingMessage, res: ServerResponse, claims: AckClaims, by: string, note: string): Promise<void> {
    const done = { workflowId: claims.workflowId, action: claims.action, by };
    try {
      const state = await client.withDeadline(Date.now() + updateTimeoutMs, async () => {
        // A firing after resolution opens a new incident under the same workflow id. Pin the
        // current run, check that it is the incident the link was issued for, and send the update
        // to that run only (if it moved on meanwhile, the update fails as not found: 410).
        const { runId, status } = await client.workflow.getHandle(claims.workflowId).describe();
        if (status.name !== 'RUNNING') throw new WorkflowNotFoundError('workflow execution already completed', claims.workflowId, runId);
        const handle = client.workflow.getHandle(claims.workflowId, runId);
        if (claims.incident !== undefined) {
          const current: unknown = await handle.query('state');
          const firstSeen = typeof current === 'object' && current !== null ? (current as { firstSeen?: unknown }).firstSeen : undefined;
          if (typeof firstSeen !== 'string') {
            log.warn('ack link: incident state has no firstSeen; cannot tell incidents apart', { workflowId: claims.workflowId });
          } else if (firstSeen !== claims.incident) {
            throw new StaleLinkError();
          }
        }
        return handle.executeUpdate(claims.action, { args: [{ by, note }] });
      });
      log.info('incident updated from ack link', { ...done, remote: req.socket.remoteAddress });
      const title = claims.action === 'resolve' ? 'Resolved' : 'Acknowledged';
      reply(req, res, 200, { ok: true, ...done, state }, title, `<p>${title} by ${escapeHtml(by)}. Escalation for <code>${escapeHtml(claims.workflowId)}</code> stops here.</p><pre>${escapeHtml(JSON.stringify(state, null, 2))}</pre>`);
    } catch (error) {
      if (error instanceof StaleLinkError) {
        log.warn('ack link for an earlier incident', { ...done });
        reply(req, res, 410, { ok: false, error: 'incident_closed', message: staleText, ...done }, 'Incident closed', `<p>${escapeHtml(staleText)}</p>`);
        return;
      }
      if (error instanceof WorkflowNotFoundError) {
        log.warn('ack link for a closed incident', { ...done });
        reply(req, res, 410, { ok: false, error: 'incident_closed', message: closedText, ...done }, 'Incident closed', `<p>${escapeHtml(closedText)}</p>`);
        return;
      }
      if (error instanceof WorkflowUpdateFailedError) {
        const reason = error.cause instanceof Error ? error.cause.message : error.message;
        log.warn('ack link refused by the incident', { ...done, reason });
        reply(req, res, 409, { ok: false, error: 'refused_by_incident', message: reason, ...done }, 'Not changed', `<p>The incident refused: ${escapeHtml(reason)}</p>`);
        return;
      }
      log.warn('ack link could not reach the incident', { ...done, error: error instanceof Error ? error.message : String(error) });
      const message = 'The platform could not reach the incident right now; try again in a minute or use the Temporal UI / CLI.';
      reply(req, res, 503, { ok: false, error: 'temporal_unavailable', message, ...done }, 'Try again', `<p>${escapeHtml(message)}</p>`);
    }
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://localhost');
    if (url.pathname === '/healthz') {
      if (req.method !== 'GET' && req.method !== 'HEAD') {
        send(res, 405, 'text/plain; charset=utf-8', 'method not allowed\n', { allow: 'GET, HEAD' });
        return;
      }
      send(res, 200, 'application/json; charset=utf-8', '{"ok":true}\n');
      return;
    }
    if (url.pathname !== '/ack') {
      send(res, 404, 'text/plain; charset=utf-8', 'not found\n');
      return;
    }
    if (!(await withinBudget(req, res, clientLimiter, req.socket.remoteAddress ?? 'unknown', 'client'))) return;
    if (req.method === 'GET' || req.method === 'HEAD') {
      const token = url.searchParams.get('token') ?? undefined;
      const claims = verify(req, res, token);
      if (claims) await confirmPage(req, res, token!, claims);
      return;
    }
    if (req.method !== 'POST') {
      send(res, 405, 'text/plain; charset=utf-8', 'method not allowed\n', { allow: 'GET, HEAD, POST' });
      return;
    }
    const form = await readBody(req);
    const claims = verify(req, res, form.token ?? url.searchParams.get('token') ?? undefined);
    if (!claims) return;
    if (!(await withinBudget(req, res, incidentLimiter, claims.workflowId, 'incident'))) return;
    // The identity comes from the link, never from the request: a `by` field is ignored.
    const by = claims.recipient ?? unknownRecipient;
    const note = cleanText(form.note, 'note', maxNoteLength) ?? `${claims.action === 'resolve' ? 'resolved' : 'acknowledged'} via signed link`;
    await execute(req, res, claims, by, note);
  }

  const server = createServer((req, res) => {
    handle(req, res).catch((error: unknown) => {
      const status = error instanceof HttpError ? error.status : 500;
      const message = error instanceof HttpError ? error.message : 'internal error';
      if (!(error instanceof HttpError)) log.warn('http endpoint error', { path: req.url?.split('?')[0], error: error instanceof Error ? error.message : String(error) });
      if (!res.headersSent) reply(req, res, status, { ok: false, error: 'bad_request', message }, 'Request refused', `<p>${escapeHtml(message)}</p>`);
      else res.destroy();
    });
  });
  // Slow-loris protection for a port that faces people's browsers.
  server.requestTimeout = 30_000;
  server.headersTimeout = 10_000;
  const host = options.host ?? '127.0.0.1';
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 8787, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;
  const shownHost = host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host.includes(':') ? `[${host}]` : host;
  return {
    url: `http://${shownHost}:${port}`,
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.close((error) => (error ? reject(error) : resolve()));
        server.closeIdleConnections();
      }),
  };
}
