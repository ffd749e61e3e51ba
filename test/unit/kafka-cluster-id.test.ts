/**
 * The local broker's KRaft cluster id never starts with `-` (Kafka's `Uuid.randomUuid()` rule): an
 * id like `-E__E4oo...` was read as an option by `kafka-storage format -t <id>` and the broker did
 * not start (a private broker of undecodable-batch.test.ts, session 8).
 */
import { describe, expect, it } from 'vitest';
import { newClusterId } from '../../infra/local/kafka.js';

describe('newClusterId', () => {
  it('draws again when the base64url of the 16 bytes starts with "-"', () => {
    // 0xf8: top six bits 62, the base64url digit '-'.
    const draws = [Buffer.alloc(16, 0xf8), Buffer.alloc(16, 0x11)];
    let calls = 0;
    const id = newClusterId((n) => {
      expect(n).toBe(16);
      return draws[calls++]!;
    });
    expect(calls).toBe(2);
    expect(id).toBe(Buffer.alloc(16, 0x11).toString('base64url'));
  });

  it('gives 22 base64url characters, never a leading "-", over many draws', () => {
    for (let i = 0; i < 5000; i++) {
      const id = newClusterId();
      expect(id).toMatch(/^[A-Za-z0-9_][A-Za-z0-9_-]{21}$/);
    }
  });
});
