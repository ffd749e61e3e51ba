import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { defineSubject, migration } from '../../schemas/contracts/index.js';
import { duplicateIdReason, validateEvent, type DeadLetterReason, type ValidationResult } from '../../schemas/contracts/validate.js';

const v1Data = {
  service: 'checkout',
  route: '/orders/:id',
  method: 'GET',
  status: 503,
  duration_ms: 12.5,
  region: 'eu-west-1',
  tenant_id: 'acme',
  error_code: 'PAYMENT_TIMEOUT',
};

function envelope(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    id: '6f1c1f4e-8a39-4b8e-9d55-3f1b2c7a9e10',
    subject: 'request-telemetry',
    version: 1,
    time: '2026-11-27T06:00:00.000Z',
    key: 'acme',
    data: v1Data,
    ...overrides,
  };
}

function without(value: Record<string, unknown>, ...keys: string[]): Record<string, unknown> {
  return Object.fromEntries(Object.entries(value).filter(([k]) => !keys.includes(k)));
}

const encode = (value: unknown): Uint8Array => new TextEncoder().encode(typeof value === 'string' ? value : JSON.stringify(value));

function reasonOf(result: ValidationResult): DeadLetterReason {
  if (result.ok) throw new Error(`expected a rejection, got a valid ${result.subject} v${result.version} event`);
  return result.reason;
}

describe('validateEvent: accepted events', () => {
  it('upcasts a v1 request-telemetry event to v2 through the declared migration', () => {
    const result = validateEvent(encode(envelope()), { maxBytes: 10_000 });
    expect(result.ok).toBe(true);
    if (!result.ok) return;
    expect(result).toMatchObject({ subject: 'request-telemetry', version: 2, writtenVersion: 1 });
    expect(result.event.version).toBe(2);
    expect(result.event.data).toEqual({
      ...v1Data,
      error: { code: 'PAYMENT_TIMEOUT', retryable: false },
      protocol: 'http/1.1',
      bytes_in: 0,
      bytes_out: 0,
    });
  });

  it('keeps the written version when upcasting is off', () => {
    const result = validateEvent(encode(envelope()), { maxBytes: 10_000, upcast: false });
    expect(result).toMatchObject({ ok: true, version: 1, writtenVersion: 1 });
  });

  it('accepts a v2 event as written', () => {
    const data = { ...v1Data, error_code: undefined, error: { code: 'X' }, protocol: 'h2', upstream_ms: 3 };
    const result = validateEvent(encode(envelope({ version: 2, data })), { maxBytes: 10_000 });
    expect(result).toMatchObject({ ok: true, version: 2, writtenVersion: 2 });
    if (result.ok) expect(result.event.data).toMatchObject({ error: { code: 'X', retryable: false }, protocol: 'h2' });
  });

  it('takes subject and version from Kafka headers when the envelope lacks them', () => {
    const bare = without(
      envelope({ data: { deploy_id: 'd-1', service: 'checkout', environment: 'production', state: 'started', version: '1.2.3', actor: 'ci' } }),
      'subject',
      'version',
    );
    const headers = { subject: Buffer.from('deploy-events'), version: '1' };
    const result = validateEvent(encode(bare), { maxBytes: 10_000, headers });
    expect(result).toMatchObject({ ok: true, subject: 'deploy-events', version: 1 });
    if (result.ok) expect(result.event.data).toMatchObject({ traffic_percent: 100 });
  });

  it('prefers the envelope over headers', () => {
    const result = validateEvent(encode(envelope()), { maxBytes: 10_000, headers: { subject: 'deploy-events', version: '9' } });
    expect(result).toMatchObject({ ok: true, subject: 'request-telemetry', writtenVersion: 1 });
  });
});

describe('validateEvent: every dead-letter reason with its details', () => {
  it('oversized, with the configured limit and the size', () => {
    const raw = encode(envelope());
    const reason = reasonOf(validateEvent(raw, { maxBytes: 100 }));
    expect(reason.code).toBe('oversized');
    expect(reason.details).toEqual({ bytes: raw.byteLength, maxBytes: 100 });
    expect(reason.message).toContain('at most 100');
  });

  it('malformed_json for text that does not parse and for bytes that are not UTF-8', () => {
    expect(reasonOf(validateEvent(encode('{"id": '), { maxBytes: 1000 })).code).toBe('malformed_json');
    const reason = reasonOf(validateEvent(new Uint8Array([0xff, 0xfe, 0x7b]), { maxBytes: 1000 }));
    expect(reason).toMatchObject({ code: 'malformed_json', details: { bytes: 3 } });
  });

  it('not_an_object for arrays, null and scalars', () => {
    for (const value of ['[1,2]', 'null', '42', '"text"']) {
      expect(reasonOf(validateEvent(encode(value), { maxBytes: 1000 })).code).toBe('not_an_object');
    }
  });

  it('unknown_subject names the subject', () => {
    const reason = reasonOf(validateEvent(encode(envelope({ subject: 'no-such-thing' })), { maxBytes: 10_000 }));
    expect(reason).toMatchObject({ code: 'unknown_subject', details: { subject: 'no-such-thing', version: 1 } });
  });

  it('unknown_version lists the known versions', () => {
    const reason = reasonOf(validateEvent(encode(envelope({ version: 7 })), { maxBytes: 10_000 }));
    expect(reason).toMatchObject({ code: 'unknown_version', details: { subject: 'request-telemetry', version: 7, knownVersions: [1, 2] } });
  });

  it('contract_violation carries every zod issue path and message', () => {
    const data = { ...v1Data, status: 42, method: 'FETCH', duration_ms: -1, extra: true, route: undefined };
    const reason = reasonOf(validateEvent(encode(envelope({ data })), { maxBytes: 10_000 }));
    expect(reason.code).toBe('contract_violation');
    const paths = reason.details.issues!.map((i) => i.path).sort();
    expect(paths).toEqual(['data', 'data.duration_ms', 'data.method', 'data.route', 'data.status']);
    const status = reason.details.issues!.find((i) => i.path === 'data.status')!;
    expect(status.message).toBe('expected an HTTP status 100-599');
    expect(reason.details).toMatchObject({ subject: 'request-telemetry', version: 1 });
    expect(reason.message).toContain('data.status: expected an HTTP status 100-599');
  });

  it('contract_violation for a bad envelope, with the envelope field paths', () => {
    const reason = reasonOf(validateEvent(encode(envelope({ id: 'nope', time: 'yesterday' })), { maxBytes: 10_000 }));
    expect(reason.code).toBe('contract_violation');
    expect(reason.details.issues!.map((i) => i.path).sort()).toEqual(['id', 'time']);
  });

  it('contract_violation at `version` when a version header is not a number', () => {
    const bare = without(envelope(), 'version');
    const reason = reasonOf(validateEvent(encode(bare), { maxBytes: 10_000, headers: { version: 'two' } }));
    expect(reason.code).toBe('contract_violation');
    expect(reason.details.issues!.map((i) => i.path)).toEqual(['version']);
  });

  it('contract_violation when a declared upcast produces invalid data', () => {
    const from = z.object({ n: z.number() });
    const to = z.object({ n: z.number(), half: z.number().int() });
    const catalogue = [
      defineSubject({
        subject: 'halves',
        description: 'test',
        versions: [
          { version: 1, schema: from },
          { version: 2, schema: to, upcast: migration(from, to, (v) => ({ n: v.n, half: v.n / 2 })) },
        ],
      }),
    ];
    const ok = validateEvent(encode(envelope({ subject: 'halves', data: { n: 4 } })), { maxBytes: 10_000, catalogue });
    expect(ok).toMatchObject({ ok: true, version: 2, event: { data: { n: 4, half: 2 } } });
    const reason = reasonOf(validateEvent(encode(envelope({ subject: 'halves', data: { n: 3 } })), { maxBytes: 10_000, catalogue }));
    expect(reason).toMatchObject({ code: 'contract_violation', details: { subject: 'halves', version: 1, upcastTo: 2 } });
    expect(reason.details.issues![0]!.path).toBe('data.half');
  });

  it('duplicate_id names the first offset', () => {
    const reason = duplicateIdReason('6f1c1f4e-8a39-4b8e-9d55-3f1b2c7a9e10', { topic: 'orders', partition: 2, offset: '17' });
    expect(reason).toMatchObject({ code: 'duplicate_id', details: { firstOffset: '17', firstPartition: 2, firstTopic: 'orders', id: '6f1c1f4e-8a39-4b8e-9d55-3f1b2c7a9e10', scope: 'batch' } });
    const earlier = duplicateIdReason('6f1c1f4e-8a39-4b8e-9d55-3f1b2c7a9e10', { topic: 'orders', partition: 0, offset: '3', batchId: 'p/orders/0/0-10' }, 'pipeline');
    expect(earlier.message).toBe('event id 6f1c1f4e-8a39-4b8e-9d55-3f1b2c7a9e10 already landed at orders[0] offset 3 (batch p/orders/0/0-10)');
  });
});
