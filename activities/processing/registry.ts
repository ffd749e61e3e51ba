/**
 * The processor registry in ClickHouse (`processor_registry`): register a version, list, fetch one,
 * and plan the working tree's catalogue against it (the `platform processors check` gate). Versions
 * are immutable: a different descriptor under a registered version is refused, the same one again
 * is a no-op; a new version must keep its outputs' tables compatible with the earlier versions'
 * (`schemas/processing/compat.ts`, which reuses the contracts' checker).
 */
import { createHash } from 'node:crypto';
import type { ClickHouseClient } from '@clickhouse/client';
import { canonicalJson } from '../../schemas/compat/index.js';
import { checkOutputCompatibility, type OutputChange } from '../../schemas/processing/compat.js';
import { describeProcessor, descriptorOutputs, type ProcessorDescriptor } from '../../schemas/processing/describe.js';
import type { ProcessorFamily } from '../../schemas/processing/define.js';
import { PlatformError } from '../errors.js';

/** sha256 of a descriptor's canonical JSON. */
export function processorFingerprint(descriptor: ProcessorDescriptor): string {
  return createHash('sha256').update(canonicalJson(descriptor)).digest('hex');
}

/** One registered processor version. */
export interface RegisteredProcessor {
  readonly name: string;
  readonly version: number;
  readonly fingerprint: string;
  readonly descriptor: ProcessorDescriptor;
  readonly registeredBy: string;
  /** ClickHouse DateTime64 text, UTC. */
  readonly registeredAt: string;
}

/** Thrown when a requested processor version is not registered. */
export class ProcessorNotFoundError extends PlatformError {
  constructor(message: string) {
    super('processor_not_found', message, false);
    this.name = 'ProcessorNotFoundError';
  }
}

/** The status of one working-tree (or registered) version against the registry and the lock file. */
export type VersionPlan =
  | { readonly status: 'registered'; readonly version: number; readonly fingerprint: string }
  | { readonly status: 'new'; readonly version: number; readonly fingerprint: string; readonly changes: readonly OutputChange[] }
  | { readonly status: 'changed'; readonly version: number; readonly fingerprint: string; readonly was: string; readonly message: string }
  | { readonly status: 'missing'; readonly version: number; readonly message: string };

/** The plan of one processor. */
export interface ProcessorPlan {
  readonly name: string;
  readonly ok: boolean;
  readonly versions: readonly VersionPlan[];
}

interface Row {
  name: string;
  version: number;
  fingerprint: string;
  descriptor: string;
  registered_by: string;
  registered_at: string;
}

/** The registry's operations; see the module comment. */
export type ProcessorRegistry = ReturnType<typeof createProcessorRegistry>;

/** Builds the registry around a client bound to the migrated platform database. */
export function createProcessorRegistry(deps: { warehouse: ClickHouseClient; actor?: string }) {
  const { warehouse } = deps;
  const actor = deps.actor ?? 'platform';

  async function all(): Promise<RegisteredProcessor[]> {
    const result = await warehouse.query({
      query: `SELECT name, version, fingerprint, descriptor, registered_by, registered_at FROM processor_registry ORDER BY name, version, registered_at, fingerprint`,
      format: 'JSONEachRow',
    });
    const seen = new Set<string>();
    const out: RegisteredProcessor[] = [];
    for (const r of await result.json<Row>()) {
      const id = `${r.name}@${r.version}`;
      if (seen.has(id)) continue; // the earliest row of a version is authoritative
      seen.add(id);
      out.push({ name: r.name, version: Number(r.version), fingerprint: r.fingerprint, descriptor: JSON.parse(r.descriptor) as ProcessorDescriptor, registeredBy: r.registered_by, registeredAt: r.registered_at });
    }
    return out;
  }

  async function insert(descriptor: ProcessorDescriptor, fp: string): Promise<void> {
    await warehouse.insert({
      table: 'processor_registry',
      values: [
        {
          name: descriptor.name,
          version: descriptor.version,
          fingerprint: fp,
          descriptor: canonicalJson(descriptor),
          output_schemas: canonicalJson(descriptorOutputs(descriptor)),
          description: descriptor.description,
          notes: descriptor.notes,
          registered_by: actor,
        },
      ],
      format: 'JSONEachRow',
      clickhouse_settings: { insert_deduplicate: 1, insert_deduplication_token: `processor_registry/${descriptor.name}/${descriptor.version}/${fp}` },
    });
  }

  return {
    /** Every registered version (authoritative rows), by name then version. */
    list: all,

    /** One registered version (default: the latest). Throws {@link ProcessorNotFoundError}. */
    async get(name: string, version?: number): Promise<RegisteredProcessor> {
      const versions = (await all()).filter((p) => p.name === name);
      const found = version === undefined ? versions.at(-1) : versions.find((p) => p.version === version);
      if (!found) {
        throw new ProcessorNotFoundError(
          versions.length === 0 ? `processor ${name} is not registered` : `processor ${name} has registered versions ${versions.map((p) => p.version).join(', ')}, not ${version}`,
        );
      }
      return found;
    },

    /** Plans `catalogue` against the registry and the lock (name -> version -> fingerprint). */
    async plan(catalogue: readonly ProcessorFamily[], lock: Readonly<Record<string, Readonly<Record<string, string>>>> = {}): Promise<ProcessorPlan[]> {
      return planAgainst(await all(), catalogue, lock);
    },

    /** Registers every new version of `catalogue` that the plan accepts; returns the plan used. */
    async register(catalogue: readonly ProcessorFamily[], lock: Readonly<Record<string, Readonly<Record<string, string>>>> = {}): Promise<{ ok: boolean; plans: ProcessorPlan[]; registered: string[] }> {
      const plans = planAgainst(await all(), catalogue, lock);
      const registered: string[] = [];
      for (const plan of plans) {
        if (!plan.ok) continue;
        const family = catalogue.find((f) => f.name === plan.name)!;
        for (const v of plan.versions) {
          if (v.status !== 'new') continue;
          await insert(describeProcessor(family.versions.find((d) => d.version === v.version)!), v.fingerprint);
          registered.push(`${plan.name}@${v.version}`);
        }
      }
      return { ok: plans.every((p) => p.ok), plans, registered };
    },
  };
}

/** The plan of a catalogue against registered versions and a lock; pure given its inputs. */
export function planAgainst(
  registered: readonly RegisteredProcessor[],
  catalogue: readonly ProcessorFamily[],
  lock: Readonly<Record<string, Readonly<Record<string, string>>>>,
): ProcessorPlan[] {
  const names = [...new Set([...catalogue.map((f) => f.name), ...registered.map((r) => r.name)])].sort();
  return names.map((name) => {
    const family = catalogue.find((f) => f.name === name);
    const reg = registered.filter((r) => r.name === name);
    const versions: VersionPlan[] = [];
    // Compatibility is judged against the previous version as the registry holds it, else the tree.
    let previous: ProcessorDescriptor | null = null;
    const max = Math.max(0, ...reg.map((r) => r.version), ...(family?.versions.map((v) => v.version) ?? []));
    for (let version = 1; version <= max; version++) {
      const def = family?.versions.find((v) => v.version === version);
      const r = reg.find((x) => x.version === version);
      if (!def) {
        versions.push({ status: 'missing', version, message: `${name} v${version} is registered but not in the working tree; published versions are never removed` });
        previous = r?.descriptor ?? previous;
        continue;
      }
      const descriptor = describeProcessor(def);
      const fp = processorFingerprint(descriptor);
      const locked = lock[name]?.[String(version)];
      const was = r?.fingerprint ?? locked;
      if (was !== undefined && was !== fp) {
        versions.push({ status: 'changed', version, fingerprint: fp, was, message: `${name} v${version} changed after it was published (fingerprint ${was.slice(0, 12)} -> ${fp.slice(0, 12)}); restore it and add v${version + 1} instead` });
      } else if (r) {
        versions.push({ status: 'registered', version, fingerprint: fp });
      } else {
        const changes = previous ? checkOutputCompatibility({ version: previous.version, outputs: descriptorOutputs(previous) }, { version, outputs: descriptorOutputs(descriptor) }) : [];
        versions.push({ status: 'new', version, fingerprint: fp, changes });
      }
      previous = r?.descriptor ?? descriptor;
    }
    const ok = versions.every((v) => v.status === 'registered' || (v.status === 'new' && v.changes.length === 0));
    return { name, ok, versions };
  });
}
