/**
 * `pseudonymise`: replaces an identifier (a tenant id, a user id) with its SipHash-2-4 pseudonym
 * under a secret key, so analytics tables can count and join per tenant without holding the id.
 * Two implementations give the same answer: TypeScript (`siphash.ts`) and WebAssembly (compiled
 * from `infra/wasm/siphash.ts` by AssemblyScript); a processor version selects one with its
 * `implementation`. The WebAssembly one works on a whole micro-batch in one call (strings copied
 * into linear memory once), which is where it can win. Pure; the WebAssembly instance is handed in
 * by the worker through {@link setWasmSipHash}.
 */
import type { Implementation } from '../define.js';
import { emit, type Stage, type StageContext } from '../stage.js';
import { sipHash64String, sipKeyFromHex, type SipKey } from './siphash.js';

/** A batch SipHash: 16-hex-digit pseudonyms of `texts` under the 32-hex-digit key. */
export type BatchSipHash = (keyHex: string, texts: readonly string[]) => string[];

let wasmSipHash: BatchSipHash | null = null;

/** Installs the WebAssembly batch SipHash (the worker loads it once per process). */
export function setWasmSipHash(impl: BatchSipHash | null): void {
  wasmSipHash = impl;
}

/** Whether the WebAssembly implementation is installed in this process. */
export function hasWasmSipHash(): boolean {
  return wasmSipHash !== null;
}

/** Options of {@link pseudonymise}. */
export interface PseudonymiseOptions<T> {
  /** Reads the identifier. */
  readonly get: (event: T) => string;
  /** Writes the pseudonym (returns the next event). */
  readonly set: (event: T, pseudonym: string) => T;
  /** Name of the secret in `ctx.secrets` holding the key as 32 hex digits. */
  readonly secret: string;
  /** @default "typescript" */
  readonly implementation?: Implementation;
}

const keys = new Map<string, SipKey>();

function keyOf(ctx: StageContext, secret: string): string {
  const hex = ctx.secrets?.[secret];
  if (hex === undefined) throw new Error(`secret ${secret} is not configured in this worker`);
  return hex;
}

/** The pseudonymisation stage; see the module comment. */
export function pseudonymise<T>(name: string, options: PseudonymiseOptions<T>): Stage<T, T> {
  const implementation = options.implementation ?? 'typescript';
  const ts = (event: T, ctx: StageContext): T => {
    const hex = keyOf(ctx, options.secret);
    let key = keys.get(hex);
    if (!key) {
      key = sipKeyFromHex(hex);
      keys.set(hex, key);
    }
    return options.set(event, sipHash64String(key, options.get(event)));
  };
  if (implementation === 'typescript') {
    return { name, kind: 'custom', implementation, apply: (event, ctx) => emit(ts(event, ctx)) };
  }
  return {
    name,
    kind: 'custom',
    implementation,
    apply(event, ctx) {
      if (!wasmSipHash) throw new Error('the WebAssembly SipHash is not loaded in this worker');
      return emit(options.set(event, wasmSipHash(keyOf(ctx, options.secret), [options.get(event)])[0]!));
    },
    applyBatch(events, ctx) {
      if (!wasmSipHash) throw new Error('the WebAssembly SipHash is not loaded in this worker');
      const hashes = wasmSipHash(keyOf(ctx, options.secret), events.map(options.get));
      return events.map((e, i) => emit(options.set(e, hashes[i]!)));
    },
  };
}
