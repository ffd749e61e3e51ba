/**
 * Stage bench (CPU only, no servers): the same generated request-telemetry events through
 * (1) the pseudonymise stage in TypeScript and in WebAssembly, and (2) every stage of the demo
 * processor v1 (TypeScript SipHash) and v2 (WebAssembly SipHash), in micro-batches of the platform's
 * batch size, interleaved round by round so both see the same machine load. Reference data is a fixed
 * snapshot of the service catalogue handed to the stages as the runtime would (no ClickHouse in the
 * loop: this measures the stages, the landing is measured by (a)). Reports events/s and ratios.
 */
import { performance } from 'node:perf_hooks';
import { loadWasmSipHash } from '../../activities/processing/wasm-siphash.js';
import type { ValidEvent } from '../../schemas/contracts/envelope.js';
import { runStage, runStages } from '../../schemas/processing/run.js';
import { setWasmSipHash } from '../../schemas/processing/pseudonymise/stage.js';
import type { StageContext } from '../../schemas/processing/stage.js';
import { requestEnrichedV1, requestEnrichedV2 } from '../../schemas/processors/index.js';
import { generateEvents } from '../../workers/generator.js';

/** One measured variant. */
export interface StageRate {
  readonly name: string;
  readonly events: number;
  readonly seconds: number;
  readonly perSecond: number;
}

/** What {@link measureStages} reports. */
export interface StageBench {
  readonly events: number;
  readonly batchSize: number;
  readonly rounds: number;
  readonly rates: readonly StageRate[];
  /** WebAssembly over TypeScript, events/s, for the stage alone and for the whole processor. */
  readonly ratios: { readonly stageWasmOverTs: number; readonly processorV2OverV1: number };
}

/** Runs the stage bench over `count` events. */
export async function measureStages(count = 50_000, batchSize = 2000, rounds = 5): Promise<StageBench> {
  setWasmSipHash(await loadWasmSipHash());
  const events: ValidEvent[] = [];
  for (const r of generateEvents({ count, seed: 7, startTime: Date.parse('2026-11-30T00:00:00Z') })) {
    if (r.expectedReason !== null || !r.data) continue;
    const parsed = JSON.parse(r.value) as ValidEvent;
    events.push({ ...parsed, version: 2, data: { ...r.data, protocol: 'http/1.1' } });
  }
  const catalog = new Map(['api-gateway', 'checkout', 'search', 'catalog', 'auth', 'payments'].map((s, i) => [s, { team: `team-${i % 3}`, tier: (i % 3) + 1 }]));
  const ctx: StageContext = { flags: requestEnrichedV1.flags.parse({}) as Record<string, unknown>, lookups: new Map([['service-catalog', catalog]]), seenBefore: new Map(), secrets: { pseudonymKey: '0123456789abcdeffedcba9876543210' } };
  const pseudoTs = requestEnrichedV1.stages.find((s) => s.name === 'pseudonymise-tenant')!;
  const pseudoWasm = requestEnrichedV2.stages.find((s) => s.name === 'pseudonymise-tenant')!;
  // The pseudonymise stage's input: events after the enrichment.
  const enriched = events.map((event) => ({ event, team: null, tier: null }));
  const batches = <T>(items: readonly T[]): T[][] => {
    const out: T[][] = [];
    for (let i = 0; i < items.length; i += batchSize) out.push(items.slice(i, i + batchSize));
    return out;
  };
  const variants: { name: string; run: () => Promise<void> }[] = [
    { name: 'pseudonymise stage, TypeScript', run: async () => void batches(enriched).forEach((b) => runStage(pseudoTs, b, ctx)) },
    { name: 'pseudonymise stage, WebAssembly', run: async () => void batches(enriched).forEach((b) => runStage(pseudoWasm, b, ctx)) },
    { name: 'request-enriched v1 stages (TypeScript SipHash)', run: async () => { for (const b of batches(events)) await runStages(requestEnrichedV1.stages, b, ctx); } },
    { name: 'request-enriched v2 stages (WebAssembly SipHash)', run: async () => { for (const b of batches(events)) await runStages(requestEnrichedV2.stages, b, ctx); } },
  ];
  for (const v of variants) await v.run(); // warm-up (JIT, WebAssembly tier-up)
  const seconds = new Map<string, number>(variants.map((v) => [v.name, 0]));
  for (let round = 0; round < rounds; round++) {
    for (const v of variants) {
      const t0 = performance.now();
      await v.run();
      seconds.set(v.name, seconds.get(v.name)! + (performance.now() - t0) / 1000);
    }
  }
  const rates = variants.map((v) => {
    const s = seconds.get(v.name)!;
    return { name: v.name, events: events.length * rounds, seconds: s, perSecond: (events.length * rounds) / s };
  });
  const rate = (i: number) => rates[i]!.perSecond;
  return { events: events.length, batchSize, rounds, rates, ratios: { stageWasmOverTs: rate(1) / rate(0), processorV2OverV1: rate(3) / rate(2) } };
}

/** The bench's table of stage rates. */
export function formatStages(b: StageBench): string {
  const lines = [`stages (CPU only, ${b.events} events x ${b.rounds} rounds, micro-batches of ${b.batchSize}):`];
  for (const r of b.rates) lines.push(`  ${r.name.padEnd(52)} ${Math.round(r.perSecond).toLocaleString('en').padStart(12)} events/s`);
  lines.push(`  ratio WebAssembly / TypeScript, pseudonymise stage alone: ${b.ratios.stageWasmOverTs.toFixed(2)}`);
  lines.push(`  ratio v2 (WebAssembly) / v1 (TypeScript), all stages:     ${b.ratios.processorV2OverV1.toFixed(2)}`);
  return lines.join('\n');
}

if (process.argv[1]?.endsWith('stages.ts')) {
  measureStages().then((b) => console.log(formatStages(b)), (err: unknown) => {
    console.error(err);
    process.exit(1);
  });
}
