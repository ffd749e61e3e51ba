/**
 * Which processor version a rollout's `version` names, checked against a processor catalogue before
 * the rollout starts: the target must be a registered version and the canary flags must parse with
 * that version's flag schema. Used by the `checkRolloutTarget` activity (the worker's catalogue)
 * and by `platform rollouts start` (the tool's catalogue). Pure; importable from workflows.
 */
import type { ProcessorFamily } from '../processing/define.js';
import { lookupProcessor } from '../processors/index.js';
import { canaryProcessorName } from './routing.js';

/** A resolved rollout target: the processor version and its parsed flags. */
export interface RolloutTarget {
  readonly name: string;
  readonly version: number;
  readonly flags: Record<string, unknown>;
}

/**
 * Result of {@link resolveRolloutTarget} (and of the start checks built on it): the target, or a
 * refusal naming the input field.
 */
export type RolloutTargetCheck =
  | { readonly ok: true; readonly target: RolloutTarget }
  | { readonly ok: false; readonly field: 'input.pipeline' | 'input.version' | `input.flags${string}` | `input.analysis.metrics.${number}.name`; readonly message: string };

/**
 * Resolves a rollout's `version` (`3`, `v3` or `name@3`) and `flags` in `catalogue`.
 *
 * `pipelineProcessor` is the processor name the pipeline runs (from its `processor` query). When it
 * is null (pipeline not running, or running without a processor), a plain `3` / `v3` must name a
 * version of exactly one processor family of the catalogue; `name@3` is always checked as written.
 * Refusals name the field and what is expected, e.g.
 * `input.version: processor request-enriched has versions 1, 2, 3, not 9 (expected a registered version: 3, v3 or name@3)`.
 */
export function resolveRolloutTarget(
  version: string,
  flags: Record<string, unknown>,
  pipelineProcessor: string | null,
  catalogue: readonly ProcessorFamily[],
): RolloutTargetCheck {
  const expected = 'expected a registered version: 3, v3 or name@3';
  let named = canaryProcessorName(version, pipelineProcessor ?? '');
  if (!named) return { ok: false, field: 'input.version', message: `${JSON.stringify(version)} names no processor version (${expected})` };
  if (!pipelineProcessor && !version.includes('@')) {
    const holders = catalogue.filter((f) => f.versions.some((v) => v.version === named!.version));
    if (holders.length !== 1) {
      const known = catalogue.map((f) => `${f.name} ${f.versions.map((v) => v.version).join(', ')}`).join('; ') || 'none';
      const why = holders.length === 0 ? 'no registered processor has that version' : `it is ambiguous (${holders.map((f) => f.name).join(', ')}); write name@${named.version}`;
      return { ok: false, field: 'input.version', message: `${JSON.stringify(version)}: the pipeline runs no processor, and ${why} (registered: ${known})` };
    }
    named = { name: holders[0]!.name, version: named.version };
  }
  const found = lookupProcessor(named.name, named.version, catalogue);
  if (!found.found) return { ok: false, field: 'input.version', message: `${found.message} (${expected})` };
  const parsed = found.processor.flags.safeParse(flags);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const path = issue.path.map(String).join('.');
    return { ok: false, field: path ? `input.flags.${path}` : 'input.flags', message: `${issue.message} (flags of ${named.name} v${named.version})` };
  }
  return { ok: true, target: { name: named.name, version: named.version, flags: parsed.data as Record<string, unknown> } };
}

/** A refusal in the form every rollout input refusal takes: `<field>: <message>`. */
export function describeTargetRefusal(check: Extract<RolloutTargetCheck, { ok: false }>): string {
  return `${check.field}: ${check.message}`;
}
