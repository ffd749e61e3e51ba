/**
 * Signed, expiring acknowledge links. A token is `<payload>.<signature>`, both base64url: the
 * payload is a small JSON object (workflow id, optional incident marker, action, recipient, expiry),
 * the signature an HMAC-SHA256 over a domain-separated prefix plus the encoded payload. Verification
 * is constant-time and says why it refused (malformed, bad signature, expired) so the endpoint can
 * answer 400 / 403 / 410 and log the reason without logging the token.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';

/** What a link may do to its incident. */
export type AckAction = 'acknowledge' | 'resolve';

/** The signed content of a token. */
export interface AckClaims {
  /** Workflow id of the incident. */
  workflowId: string;
  /**
   * Which incident of that workflow id the link is for (the alert's `firstSeen`). A firing after
   * resolution opens a new incident under the same id; the endpoint compares this with the open
   * incident's `firstSeen`, so a link from an earlier incident cannot acknowledge a newer one.
   */
  incident?: string;
  action: AckAction;
  /**
   * Who the link was sent to: the channel target id of the notification (`email:oncall`,
   * `slack:ops`, ...). The endpoint records this as the acknowledging identity, never a name typed
   * into the form: whoever holds the link acts on behalf of the recipient it was issued to.
   * Tokens issued before this claim existed have none.
   */
  recipient?: string;
  /** Expiry, epoch milliseconds. */
  expiresAt: number;
}

/** Why a token was refused. */
export type AckTokenRefusal = 'malformed' | 'bad_signature' | 'expired';

/** Outcome of {@link verifyAckToken}. */
export type AckTokenResult = { ok: true; claims: AckClaims } | { ok: false; reason: AckTokenRefusal };

// Domain separation: the same secret also signs other things (webhook bodies), never with this prefix.
const signaturePrefix = 'streamwarden.ack.v1.';
const maxTokenLength = 2048;
const base64url = /^[A-Za-z0-9_-]+$/;

function sign(encodedPayload: string, secret: string): Buffer {
  return createHmac('sha256', secret).update(signaturePrefix + encodedPayload).digest();
}

/** Creates a token for these claims. */
export function signAckToken(claims: AckClaims, secret: string): string {
  if (secret.length === 0) throw new TypeError('signAckToken: expected a non-empty secret');
  if (claims.recipient !== undefined && (claims.recipient.length === 0 || claims.recipient.length > 200)) {
    throw new TypeError(`signAckToken: expected a recipient of 1-200 characters, got ${claims.recipient.length}`);
  }
  if (!Number.isFinite(claims.expiresAt)) throw new TypeError(`signAckToken: expected expiresAt as epoch milliseconds, got ${claims.expiresAt}`);
  const payload = {
    v: 1,
    w: claims.workflowId,
    ...(claims.incident === undefined ? {} : { i: claims.incident }),
    a: claims.action,
    ...(claims.recipient === undefined ? {} : { r: claims.recipient }),
    e: Math.floor(claims.expiresAt),
  };
  const encoded = Buffer.from(JSON.stringify(payload), 'utf8').toString('base64url');
  return `${encoded}.${sign(encoded, secret).toString('base64url')}`;
}

function parseClaims(encoded: string): AckClaims | undefined {
  let value: unknown;
  try {
    value = JSON.parse(Buffer.from(encoded, 'base64url').toString('utf8'));
  } catch {
    return undefined;
  }
  if (typeof value !== 'object' || value === null) return undefined;
  const p = value as Record<string, unknown>;
  if (p.v !== 1) return undefined;
  if (typeof p.w !== 'string' || p.w.length === 0) return undefined;
  if (p.i !== undefined && (typeof p.i !== 'string' || p.i.length === 0)) return undefined;
  if (p.a !== 'acknowledge' && p.a !== 'resolve') return undefined;
  if (p.r !== undefined && (typeof p.r !== 'string' || p.r.length === 0 || p.r.length > 200)) return undefined;
  if (typeof p.e !== 'number' || !Number.isSafeInteger(p.e)) return undefined;
  return {
    workflowId: p.w,
    ...(p.i === undefined ? {} : { incident: p.i as string }),
    action: p.a,
    ...(p.r === undefined ? {} : { recipient: p.r as string }),
    expiresAt: p.e,
  };
}

/**
 * Checks a token: shape, then signature (constant time), then expiry against `now`. The signature
 * is checked before the payload is trusted, so a tampered token reports `bad_signature` even when
 * its payload still parses.
 */
export function verifyAckToken(token: string, secret: string, now: number | Date = Date.now()): AckTokenResult {
  if (typeof token !== 'string' || token.length === 0 || token.length > maxTokenLength) return { ok: false, reason: 'malformed' };
  const parts = token.split('.');
  if (parts.length !== 2) return { ok: false, reason: 'malformed' };
  const [encoded, signature] = parts as [string, string];
  if (!base64url.test(encoded) || !base64url.test(signature)) return { ok: false, reason: 'malformed' };
  const expected = sign(encoded, secret);
  const given = Buffer.from(signature, 'base64url');
  // Re-encoding catches non-canonical base64url (extra trailing bits), which would otherwise
  // let several strings carry the same signature bytes.
  if (given.length !== expected.length || given.toString('base64url') !== signature) return { ok: false, reason: 'bad_signature' };
  if (!timingSafeEqual(given, expected)) return { ok: false, reason: 'bad_signature' };
  const claims = parseClaims(encoded);
  if (!claims) return { ok: false, reason: 'malformed' };
  const nowMs = now instanceof Date ? now.getTime() : now;
  if (nowMs >= claims.expiresAt) return { ok: false, reason: 'expired' };
  return { ok: true, claims };
}

/** The link people click: `<publicUrl>/ack?token=...` (publicUrl may carry a path prefix). */
export function ackUrl(publicUrl: string, token: string): string {
  const url = new URL(publicUrl);
  url.pathname = `${url.pathname.replace(/\/+$/, '')}/ack`;
  url.search = '';
  url.searchParams.set('token', token);
  url.hash = '';
  return url.toString();
}
