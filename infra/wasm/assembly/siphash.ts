// SipHash-2-4 (Aumasson & Bernstein 2012) over a micro-batch, in AssemblyScript (compiled to
// WebAssembly by infra/wasm/build.ts). The host writes the UTF-8 bytes of every input back to back
// at `data`, the count + 1 byte offsets (u32) at `offsets`, and reads count u64 results at `out`.
// Same answers as schemas/processing/pseudonymise/siphash.ts and ClickHouse's sipHash64Keyed.

let v0: u64 = 0;
let v1: u64 = 0;
let v2: u64 = 0;
let v3: u64 = 0;

@inline function round(): void {
  v0 += v1; v1 = rotl<u64>(v1, 13); v1 ^= v0; v0 = rotl<u64>(v0, 32);
  v2 += v3; v3 = rotl<u64>(v3, 16); v3 ^= v2;
  v0 += v3; v3 = rotl<u64>(v3, 21); v3 ^= v0;
  v2 += v1; v1 = rotl<u64>(v1, 17); v1 ^= v2; v2 = rotl<u64>(v2, 32);
}

function sip(k0: u64, k1: u64, p: usize, len: u32): u64 {
  v0 = k0 ^ 0x736f6d6570736575;
  v1 = k1 ^ 0x646f72616e646f6d;
  v2 = k0 ^ 0x6c7967656e657261;
  v3 = k1 ^ 0x7465646279746573;
  const full: u32 = len & ~7;
  let i: u32 = 0;
  for (; i < full; i += 8) {
    const m = load<u64>(p + <usize>i); // WebAssembly memory is little-endian, as SipHash reads words
    v3 ^= m;
    round(); round();
    v0 ^= m;
  }
  let b: u64 = (<u64>(len & 0xff)) << 56;
  const rest: u32 = len - full;
  for (let j: u32 = 0; j < rest; j++) b |= (<u64>load<u8>(p + <usize>(i + j))) << (<u64>(8 * j));
  v3 ^= b;
  round(); round();
  v0 ^= b;
  v2 ^= 0xff;
  round(); round(); round(); round();
  return v0 ^ v1 ^ v2 ^ v3;
}

/** Frees everything and returns a region of `bytes` bytes (one batch at a time). */
export function reserve(bytes: i32): usize {
  heap.reset();
  return heap.alloc(<usize>bytes);
}

/** Hashes `count` inputs; see the file comment for the layout. */
export function hashBatch(k0: u64, k1: u64, data: usize, offsets: usize, count: i32, out: usize): void {
  for (let i = 0; i < count; i++) {
    const start = load<u32>(offsets + (<usize>i << 2));
    const end = load<u32>(offsets + (<usize>(i + 1) << 2));
    store<u64>(out + (<usize>i << 3), sip(k0, k1, data + <usize>start, end - start));
  }
}
