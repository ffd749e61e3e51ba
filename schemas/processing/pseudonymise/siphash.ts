/**
 * SipHash-2-4 (Aumasson & Bernstein, "SipHash: a fast short-input PRF", 2012), 64-bit output, in
 * plain TypeScript on 32-bit halves (no BigInt on the hot path). It is the keyed hash ClickHouse
 * exposes as `sipHash64Keyed((k0, k1), s)`, which the tests use as the reference implementation.
 * Used to pseudonymise identifiers (tenant ids) before they reach analytics tables: equal inputs map
 * to equal pseudonyms under one key, and without the key the mapping cannot be recomputed.
 * Pure; importable from workflows.
 */

/** A 128-bit SipHash key as two 64-bit halves, each as [high 32 bits, low 32 bits]. */
export interface SipKey {
  readonly k0: readonly [number, number];
  readonly k1: readonly [number, number];
}

/** Parses a key written as 32 hex digits (k0 then k1, each big-endian as ClickHouse's UInt64 literals). */
export function sipKeyFromHex(hex: string): SipKey {
  if (!/^[0-9a-fA-F]{32}$/.test(hex)) throw new TypeError(`SipHash key: expected 32 hex digits, got ${hex.length} characters`);
  const w = (i: number) => Number.parseInt(hex.slice(i, i + 8), 16) >>> 0;
  return { k0: [w(0), w(8)], k1: [w(16), w(24)] };
}

// State as eight 32-bit words (v0..v3, high then low), module-level for speed.
let v0h = 0, v0l = 0, v1h = 0, v1l = 0, v2h = 0, v2l = 0, v3h = 0, v3l = 0;

function round(): void {
  let t = 0;
  let h = 0;
  // v0 += v1; v1 = rotl(v1, 13); v1 ^= v0; v0 = rotl(v0, 32)
  t = (v0l + v1l) >>> 0; v0h = (v0h + v1h + (t < v0l ? 1 : 0)) >>> 0; v0l = t;
  h = ((v1h << 13) | (v1l >>> 19)) >>> 0; v1l = ((v1l << 13) | (v1h >>> 19)) >>> 0; v1h = h;
  v1h = (v1h ^ v0h) >>> 0; v1l = (v1l ^ v0l) >>> 0;
  t = v0h; v0h = v0l; v0l = t;
  // v2 += v3; v3 = rotl(v3, 16); v3 ^= v2
  t = (v2l + v3l) >>> 0; v2h = (v2h + v3h + (t < v2l ? 1 : 0)) >>> 0; v2l = t;
  h = ((v3h << 16) | (v3l >>> 16)) >>> 0; v3l = ((v3l << 16) | (v3h >>> 16)) >>> 0; v3h = h;
  v3h = (v3h ^ v2h) >>> 0; v3l = (v3l ^ v2l) >>> 0;
  // v0 += v3; v3 = rotl(v3, 21); v3 ^= v0
  t = (v0l + v3l) >>> 0; v0h = (v0h + v3h + (t < v0l ? 1 : 0)) >>> 0; v0l = t;
  h = ((v3h << 21) | (v3l >>> 11)) >>> 0; v3l = ((v3l << 21) | (v3h >>> 11)) >>> 0; v3h = h;
  v3h = (v3h ^ v0h) >>> 0; v3l = (v3l ^ v0l) >>> 0;
  // v2 += v1; v1 = rotl(v1, 17); v1 ^= v2; v2 = rotl(v2, 32)
  t = (v2l + v1l) >>> 0; v2h = (v2h + v1h + (t < v2l ? 1 : 0)) >>> 0; v2l = t;
  h = ((v1h << 17) | (v1l >>> 15)) >>> 0; v1l = ((v1l << 17) | (v1h >>> 15)) >>> 0; v1h = h;
  v1h = (v1h ^ v2h) >>> 0; v1l = (v1l ^ v2l) >>> 0;
  t = v2h; v2h = v2l; v2l = t;
}

/** SipHash-2-4 of `bytes[start, end)` under `key`; the 64-bit result as 16 lowercase hex digits. */
export function sipHash64(key: SipKey, bytes: Uint8Array, start = 0, end = bytes.length): string {
  const [k0h, k0l] = key.k0;
  const [k1h, k1l] = key.k1;
  v0h = (k0h ^ 0x736f6d65) >>> 0; v0l = (k0l ^ 0x70736575) >>> 0;
  v1h = (k1h ^ 0x646f7261) >>> 0; v1l = (k1l ^ 0x6e646f6d) >>> 0;
  v2h = (k0h ^ 0x6c796765) >>> 0; v2l = (k0l ^ 0x6e657261) >>> 0;
  v3h = (k1h ^ 0x74656462) >>> 0; v3l = (k1l ^ 0x79746573) >>> 0;
  const len = end - start;
  const full = start + (len & ~7);
  let i = start;
  for (; i < full; i += 8) {
    const ml = (bytes[i]! | (bytes[i + 1]! << 8) | (bytes[i + 2]! << 16) | (bytes[i + 3]! << 24)) >>> 0;
    const mh = (bytes[i + 4]! | (bytes[i + 5]! << 8) | (bytes[i + 6]! << 16) | (bytes[i + 7]! << 24)) >>> 0;
    v3h = (v3h ^ mh) >>> 0; v3l = (v3l ^ ml) >>> 0;
    round(); round();
    v0h = (v0h ^ mh) >>> 0; v0l = (v0l ^ ml) >>> 0;
  }
  // Last block: the remaining bytes, little-endian, with the length's low byte on top.
  let bl = 0;
  let bh = (len & 0xff) << 24;
  const rest = end - i;
  for (let j = 0; j < rest; j++) {
    const b = bytes[i + j]!;
    if (j < 4) bl |= b << (8 * j);
    else bh |= b << (8 * (j - 4));
  }
  bl >>>= 0; bh >>>= 0;
  v3h = (v3h ^ bh) >>> 0; v3l = (v3l ^ bl) >>> 0;
  round(); round();
  v0h = (v0h ^ bh) >>> 0; v0l = (v0l ^ bl) >>> 0;
  v2l = (v2l ^ 0xff) >>> 0;
  round(); round(); round(); round();
  const rh = (v0h ^ v1h ^ v2h ^ v3h) >>> 0;
  const rl = (v0l ^ v1l ^ v2l ^ v3l) >>> 0;
  return rh.toString(16).padStart(8, '0') + rl.toString(16).padStart(8, '0');
}

const encoder = new TextEncoder();
let scratch = new Uint8Array(256);

/** SipHash-2-4 of a string's UTF-8 bytes, as 16 hex digits. */
export function sipHash64String(key: SipKey, text: string): string {
  if (text.length * 3 > scratch.length) scratch = new Uint8Array(text.length * 3);
  const { written } = encoder.encodeInto(text, scratch);
  return sipHash64(key, scratch, 0, written);
}
