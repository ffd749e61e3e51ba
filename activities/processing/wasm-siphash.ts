/**
 * The WebAssembly implementation of the pseudonymise stage's SipHash-2-4: loads the module built
 * from `infra/wasm/assembly/siphash.ts` (building it first if needed) and exposes a batch function
 * for `setWasmSipHash`. One call per micro-batch: the UTF-8 bytes of every input are encoded straight
 * into the module's linear memory, hashed in one `hashBatch` call, and read back as 64-bit words.
 */
import { readFile } from 'node:fs/promises';
import { buildWasm } from '../../infra/wasm/build.js';
import type { BatchSipHash } from '../../schemas/processing/pseudonymise/stage.js';

interface SipExports {
  memory: { readonly buffer: ArrayBuffer };
  reserve(bytes: number): number;
  hashBatch(k0: bigint, k1: bigint, data: number, offsets: number, count: number, out: number): void;
}

const encoder = new TextEncoder();

// The project's lib settings (ES2022, @types/node 20) do not declare the WebAssembly global Node has.
const wasmApi = (globalThis as unknown as { WebAssembly: { instantiate(bytes: Uint8Array, imports: object): Promise<{ instance: { exports: unknown } }> } }).WebAssembly;

/** Instantiates the module (building it when missing) and returns the batch SipHash. */
export async function loadWasmSipHash(log?: (line: string) => void): Promise<BatchSipHash> {
  const path = await buildWasm('siphash', log);
  const { instance } = await wasmApi.instantiate(await readFile(path), {
    env: {
      abort: () => {
        throw new Error('siphash.wasm aborted');
      },
    },
  });
  const wasm = instance.exports as unknown as SipExports;
  const keys = new Map<string, [bigint, bigint]>();
  return (keyHex, texts) => {
    let key = keys.get(keyHex);
    if (!key) {
      if (!/^[0-9a-fA-F]{32}$/.test(keyHex)) throw new TypeError(`SipHash key: expected 32 hex digits, got ${keyHex.length} characters`);
      key = [BigInt(`0x${keyHex.slice(0, 16)}`), BigInt(`0x${keyHex.slice(16)}`)];
      keys.set(keyHex, key);
    }
    const count = texts.length;
    let maxBytes = 0;
    for (const t of texts) maxBytes += t.length * 3;
    // Layout: offsets (count + 1 u32), results (count u64, 8-aligned), then the bytes.
    const offsetsBytes = (count + 1) * 4;
    const outAt = (offsetsBytes + 7) & ~7;
    const dataAt = outAt + count * 8;
    const base = wasm.reserve(dataAt + maxBytes + 8);
    const bytes = new Uint8Array(wasm.memory.buffer);
    const offsets = new Uint32Array(wasm.memory.buffer, base, count + 1);
    let at = 0;
    for (let i = 0; i < count; i++) {
      offsets[i] = at;
      at += encoder.encodeInto(texts[i]!, bytes.subarray(base + dataAt + at)).written;
    }
    offsets[count] = at;
    wasm.hashBatch(key[0], key[1], base + dataAt, base, count, base + outAt);
    const words = new Uint32Array(wasm.memory.buffer, base + outAt, count * 2);
    const result = new Array<string>(count);
    for (let i = 0; i < count; i++) {
      result[i] = words[2 * i + 1]!.toString(16).padStart(8, '0') + words[2 * i]!.toString(16).padStart(8, '0');
    }
    return result;
  };
}
