import { createHmac } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { ackUrl, signAckToken, verifyAckToken } from '../../activities/alerting/ack-token.js';

const secret = 'unit-test-secret-0123456789';
const now = Date.parse('2026-11-27T06:00:00Z');
const claims = { workflowId: 'alert-0123456789abcdef', incident: '2026-11-27T05:59:00.000Z', action: 'acknowledge' as const, expiresAt: now + 60_000 };

/** Replaces the character at `index` with a different base64url character. */
function flip(token: string, index: number): string {
  const c = token[index]!;
  const replacement = c === 'A' ? 'B' : 'A';
  return token.slice(0, index) + replacement + token.slice(index + 1);
}

describe('ack tokens', () => {
  it('accepts a valid token and returns its claims', () => {
    const token = signAckToken(claims, secret);
    expect(token).toMatch(/^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/);
    expect(verifyAckToken(token, secret, now)).toEqual({ ok: true, claims });
  });

  it('signs the recipient in: it round-trips, cannot be swapped without breaking the signature, and is bounded', () => {
    const withRecipient = { ...claims, recipient: 'email:oncall' };
    const token = signAckToken(withRecipient, secret);
    expect(verifyAckToken(token, secret, now)).toEqual({ ok: true, claims: withRecipient });
    // A payload naming someone else, with the original signature, is refused.
    const forged = `${Buffer.from(JSON.stringify({ v: 1, w: claims.workflowId, i: claims.incident, a: 'acknowledge', r: 'slack:ceo', e: claims.expiresAt })).toString('base64url')}.${token.split('.')[1]}`;
    expect(verifyAckToken(forged, secret, now)).toEqual({ ok: false, reason: 'bad_signature' });
    expect(() => signAckToken({ ...claims, recipient: '' }, secret)).toThrow(/recipient of 1-200 characters/);
  });

  it('keeps claims without an incident marker', () => {
    const noRun = { workflowId: claims.workflowId, expiresAt: claims.expiresAt };
    const result = verifyAckToken(signAckToken({ ...noRun, action: 'resolve' }, secret), secret, new Date(now));
    expect(result).toEqual({ ok: true, claims: { ...noRun, action: 'resolve' } });
  });

  it('refuses a token with any single character changed', () => {
    const token = signAckToken(claims, secret);
    for (let i = 0; i < token.length; i++) {
      if (token[i] === '.') continue;
      const result = verifyAckToken(flip(token, i), secret, now);
      expect(result.ok, `position ${i}`).toBe(false);
      expect(['bad_signature', 'malformed']).toContain((result as { reason: string }).reason);
    }
    // Changing the payload specifically reports a bad signature (the payload is not trusted first).
    expect(verifyAckToken(flip(token, 3), secret, now)).toEqual({ ok: false, reason: 'bad_signature' });
  });

  it('refuses a payload swapped in from another valid token', () => {
    const mine = signAckToken(claims, secret);
    const other = signAckToken({ ...claims, workflowId: 'alert-ffffffffffffffff' }, secret);
    const forged = `${other.split('.')[0]}.${mine.split('.')[1]}`;
    expect(verifyAckToken(forged, secret, now)).toEqual({ ok: false, reason: 'bad_signature' });
  });

  it('refuses an expired token, and accepts it just before expiry', () => {
    const token = signAckToken(claims, secret);
    expect(verifyAckToken(token, secret, claims.expiresAt - 1).ok).toBe(true);
    expect(verifyAckToken(token, secret, claims.expiresAt)).toEqual({ ok: false, reason: 'expired' });
    expect(verifyAckToken(token, secret, claims.expiresAt + 86_400_000)).toEqual({ ok: false, reason: 'expired' });
  });

  it('refuses a token signed with another secret', () => {
    const token = signAckToken(claims, 'another-secret-0123456789');
    expect(verifyAckToken(token, secret, now)).toEqual({ ok: false, reason: 'bad_signature' });
  });

  it('refuses malformed tokens', () => {
    const token = signAckToken(claims, secret);
    const [payload, signature] = token.split('.') as [string, string];
    const unsignedJunk = (json: string): string => {
      const encoded = Buffer.from(json).toString('base64url');
      return signAckToken(claims, secret).replace(/^[^.]+/, encoded);
    };
    for (const bad of ['', 'abc', `${payload}.`, `.${signature}`, `${payload}.${signature}.x`, `${payload}.sig!`, 'a'.repeat(5000)]) {
      expect(verifyAckToken(bad, secret, now), JSON.stringify(bad.slice(0, 40))).toEqual({ ok: false, reason: 'malformed' });
    }
    // Well-formed but unsigned junk never gets as far as the payload parser.
    expect(verifyAckToken(unsignedJunk('{"v":1}'), secret, now)).toEqual({ ok: false, reason: 'bad_signature' });
  });

  it('refuses a correctly signed payload that is not a valid claim set', () => {
    // Sign arbitrary JSON with the real key by going through the same format, to prove the claim
    // checks run after the signature check.
    const encoded = Buffer.from(JSON.stringify({ v: 1, w: 'x', a: 'delete', e: now + 1000 })).toString('base64url');
    const sig = createHmac('sha256', secret).update(`streamwarden.ack.v1.${encoded}`).digest('base64url');
    expect(verifyAckToken(`${encoded}.${sig}`, secret, now)).toEqual({ ok: false, reason: 'malformed' });
  });

  it('builds the link under the public URL, keeping a path prefix', () => {
    expect(ackUrl('http://localhost:8787', 'a.b')).toBe('http://localhost:8787/ack?token=a.b');
    expect(ackUrl('https://ops.example.com/streamwarden/', 'a.b')).toBe('https://ops.example.com/streamwarden/ack?token=a.b');
  });
});
