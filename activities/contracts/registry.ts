/**
 * The schema registry, persisted in ClickHouse (`schema_registry`, `schema_subject_modes`):
 * register a version, list subjects and versions, fetch one, check a candidate against the
 * subject's compatibility mode, set the mode. Versions are immutable: a different schema under a
 * registered version is refused, the same schema again is a no-op (idempotent writes keyed by
 * subject/version/fingerprint). The registry stores JSON Schema, so checks against it need no
 * TypeScript source of old versions.
 *
 * Also here: {@link planCatalogue}, which compares the working tree's contracts with the registry
 * (the CI gate and `platform schemas register` both use it).
 */
import { createHash } from 'node:crypto';
import type { ClickHouseClient } from '@clickhouse/client';
import {
  canonicalJson,
  checkCompatibility,
  contractJsonSchema,
  CompatibilityMode,
  defaultCompatibilityMode,
  type CompatibilityResult,
  type JsonSchema,
  type VersionedSchema,
} from '../../schemas/compat/index.js';
import type { SubjectDefinition } from '../../schemas/contracts/index.js';
import { PlatformError } from '../errors.js';

/** sha256 of a schema's canonical JSON: equal schemas, equal fingerprints. */
export function fingerprint(schema: JsonSchema): string {
  return createHash('sha256').update(canonicalJson(schema)).digest('hex');
}

/** One registered version as the registry holds it. */
export interface RegisteredVersion {
  readonly subject: string;
  readonly version: number;
  readonly fingerprint: string;
  /** The input JSON Schema of the event data. */
  readonly schema: JsonSchema;
  readonly description: string;
  readonly notes: string;
  /** Version this one declares a migration from, or null. */
  readonly upcastFrom: number | null;
  readonly registeredBy: string;
  /** ClickHouse DateTime64 text, UTC. */
  readonly registeredAt: string;
}

/** A subject as listed by the registry. */
export interface SubjectSummary {
  readonly subject: string;
  readonly versions: readonly number[];
  readonly latest: number;
  readonly mode: CompatibilityMode;
  /** True when someone set the mode; false when it is the default. */
  readonly modeSet: boolean;
}

/** A version proposed for registration. */
export interface VersionCandidate {
  readonly subject: string;
  readonly version: number;
  readonly schema: JsonSchema;
  readonly description?: string;
  readonly notes?: string;
  readonly upcastFrom?: number | null;
  /** Mode to give the subject if it has none yet (its first registration). */
  readonly initialMode?: CompatibilityMode;
}

/** What {@link SchemaRegistry.register} did. */
export type RegisterOutcome =
  | { readonly status: 'registered'; readonly subject: string; readonly version: number; readonly fingerprint: string; readonly compatibility: CompatibilityResult }
  | { readonly status: 'unchanged'; readonly subject: string; readonly version: number; readonly fingerprint: string }
  | {
      readonly status: 'conflict';
      readonly subject: string;
      readonly version: number;
      readonly fingerprint: string;
      readonly registeredFingerprint: string;
      readonly message: string;
    }
  | { readonly status: 'out_of_order'; readonly subject: string; readonly version: number; readonly expected: number; readonly message: string }
  | { readonly status: 'incompatible'; readonly subject: string; readonly version: number; readonly compatibility: CompatibilityResult };

/** Thrown for a registry request that names something that does not exist. */
export class RegistryNotFoundError extends PlatformError {
  constructor(message: string) {
    super('registry_not_found', message, false);
    this.name = 'RegistryNotFoundError';
  }
}

/** Dependencies of {@link createSchemaRegistry}. */
export interface RegistryDeps {
  /** Client bound to the platform database (migrated: tables 010 and 011 exist). */
  readonly warehouse: ClickHouseClient;
  /**
   * Who is acting, recorded on every write.
   * @default "platform"
   */
  readonly actor?: string;
}

interface RegistryRow {
  subject: string;
  version: number;
  fingerprint: string;
  json_schema: string;
  description: string;
  notes: string;
  upcast_from: number;
  registered_by: string;
  registered_at: string;
}

/** The registry operations; see the module comment. */
export type SchemaRegistry = ReturnType<typeof createSchemaRegistry>;

/** Builds the registry around a ClickHouse client. */
export function createSchemaRegistry(deps: RegistryDeps) {
  const { warehouse } = deps;
  const actor = deps.actor ?? 'platform';

  async function rows(subject?: string): Promise<RegistryRow[]> {
    const result = await warehouse.query({
      query: `SELECT subject, version, fingerprint, json_schema, description, notes, upcast_from, registered_by, registered_at
              FROM schema_registry
              WHERE {all:UInt8} = 1 OR subject = {subject:String}
              ORDER BY subject, version, registered_at, fingerprint`,
      query_params: { all: subject === undefined ? 1 : 0, subject: subject ?? '' },
      format: 'JSONEachRow',
    });
    return (await result.json<RegistryRow>()).map((r) => ({ ...r, version: Number(r.version), upcast_from: Number(r.upcast_from) }));
  }

  /** The authoritative (earliest) row of each version, plus versions holding a second schema. */
  function authoritative(all: readonly RegistryRow[]): { versions: RegisteredVersion[]; conflicts: RegistryRow[] } {
    const versions: RegisteredVersion[] = [];
    const conflicts: RegistryRow[] = [];
    for (const row of all) {
      const prev = versions.at(-1);
      if (prev && prev.subject === row.subject && prev.version === row.version) {
        if (prev.fingerprint !== row.fingerprint) conflicts.push(row);
        continue;
      }
      versions.push({
        subject: row.subject,
        version: row.version,
        fingerprint: row.fingerprint,
        schema: JSON.parse(row.json_schema) as JsonSchema,
        description: row.description,
        notes: row.notes,
        upcastFrom: row.upcast_from === 0 ? null : row.upcast_from,
        registeredBy: row.registered_by,
        registeredAt: row.registered_at,
      });
    }
    return { versions, conflicts };
  }

  async function modes(): Promise<Map<string, CompatibilityMode>> {
    const result = await warehouse.query({
      query: `SELECT subject, argMax(mode, changed_at) AS mode FROM schema_subject_modes GROUP BY subject`,
      format: 'JSONEachRow',
    });
    const out = new Map<string, CompatibilityMode>();
    for (const r of await result.json<{ subject: string; mode: string }>()) {
      const parsed = CompatibilityMode.safeParse(r.mode);
      // A mode written by a newer platform that this one does not know: the strictest reading.
      out.set(r.subject, parsed.success ? parsed.data : 'FULL_TRANSITIVE');
    }
    return out;
  }

  const registry = {
    /** Every subject with its registered versions and mode. */
    async listSubjects(): Promise<SubjectSummary[]> {
      const { versions } = authoritative(await rows());
      const modeBySubject = await modes();
      const bySubject = new Map<string, number[]>();
      for (const v of versions) bySubject.set(v.subject, [...(bySubject.get(v.subject) ?? []), v.version]);
      // Subjects with a mode but no version yet are listed too: someone configured them.
      for (const subject of modeBySubject.keys()) if (!bySubject.has(subject)) bySubject.set(subject, []);
      return [...bySubject.entries()]
        .sort(([a], [b]) => a.localeCompare(b))
        .map(([subject, vs]) => ({
          subject,
          versions: vs,
          latest: vs.at(-1) ?? 0,
          mode: modeBySubject.get(subject) ?? defaultCompatibilityMode,
          modeSet: modeBySubject.has(subject),
        }));
    },

    /** Every registered version of a subject, ascending (empty when the subject is unknown). */
    async getVersions(subject: string): Promise<RegisteredVersion[]> {
      return authoritative(await rows(subject)).versions;
    },

    /** One version (default: the latest). Throws {@link RegistryNotFoundError} when absent. */
    async getVersion(subject: string, version?: number): Promise<RegisteredVersion> {
      const versions = await registry.getVersions(subject);
      if (versions.length === 0) throw new RegistryNotFoundError(`subject "${subject}" has no registered version`);
      const found = version === undefined ? versions.at(-1) : versions.find((v) => v.version === version);
      if (!found) {
        throw new RegistryNotFoundError(`subject "${subject}": expected one of versions ${versions.map((v) => v.version).join(', ')}, got ${version}`);
      }
      return found;
    },

    /** The subject's mode and whether it was set (else the default, BACKWARD). */
    async getMode(subject: string): Promise<{ mode: CompatibilityMode; set: boolean }> {
      const mode = (await modes()).get(subject);
      return mode ? { mode, set: true } : { mode: defaultCompatibilityMode, set: false };
    },

    /** Sets the subject's mode; a no-op when it already has that mode. */
    async setMode(subject: string, mode: CompatibilityMode): Promise<{ changed: boolean; previous: CompatibilityMode }> {
      const current = await registry.getMode(subject);
      if (current.set && current.mode === mode) return { changed: false, previous: current.mode };
      await warehouse.insert({
        table: 'schema_subject_modes',
        values: [{ subject, mode, changed_by: actor }],
        format: 'JSONEachRow',
      });
      return { changed: true, previous: current.mode };
    },

    /** Checks a candidate against the subject's registered versions under its mode. */
    async check(candidate: VersionedSchema & { subject: string }, mode?: CompatibilityMode): Promise<CompatibilityResult> {
      const previous = (await registry.getVersions(candidate.subject)).filter((v) => v.version < candidate.version);
      return checkCompatibility(candidate, previous, mode ?? (await registry.getMode(candidate.subject)).mode);
    },

    /**
     * Registers a version: refuses a different schema under an existing version (`conflict`), a
     * gap in the numbering (`out_of_order`) and a change the subject's mode forbids
     * (`incompatible`); the same schema again is `unchanged`.
     */
    async register(candidate: VersionCandidate): Promise<RegisterOutcome> {
      const { subject, version } = candidate;
      const fp = fingerprint(candidate.schema);
      const existing = await registry.getVersions(subject);
      const same = existing.find((v) => v.version === version);
      if (same) {
        if (same.fingerprint === fp) return { status: 'unchanged', subject, version, fingerprint: fp };
        return conflict(subject, version, fp, same);
      }
      const latest = existing.at(-1)?.version ?? 0;
      if (version !== latest + 1) {
        return {
          status: 'out_of_order',
          subject,
          version,
          expected: latest + 1,
          message: `${subject}: expected version ${latest + 1} next (registered: ${latest === 0 ? 'none' : `1..${latest}`}), got ${version}`,
        };
      }
      let mode = await registry.getMode(subject);
      if (!mode.set && existing.length === 0 && candidate.initialMode && candidate.initialMode !== mode.mode) {
        await registry.setMode(subject, candidate.initialMode);
        mode = { mode: candidate.initialMode, set: true };
      }
      const compatibility = checkCompatibility({ version, schema: candidate.schema }, existing, mode.mode);
      if (!compatibility.compatible) return { status: 'incompatible', subject, version, compatibility };
      await warehouse.insert({
        table: 'schema_registry',
        values: [
          {
            subject,
            version,
            fingerprint: fp,
            // As generated (readable key order); the fingerprint is over the canonical form.
            json_schema: JSON.stringify(candidate.schema),
            description: candidate.description ?? '',
            notes: candidate.notes ?? '',
            upcast_from: candidate.upcastFrom ?? 0,
            registered_by: actor,
          },
        ],
        format: 'JSONEachRow',
        clickhouse_settings: {
          insert_deduplicate: 1,
          insert_deduplication_token: `schema_registry/${subject}/${version}/${fp}`,
          async_insert: 0,
        },
      });
      // A racing registration of a different schema may have landed first: the earliest wins.
      const winner = (await registry.getVersions(subject)).find((v) => v.version === version);
      if (winner && winner.fingerprint !== fp) return conflict(subject, version, fp, winner);
      return { status: 'registered', subject, version, fingerprint: fp, compatibility };
    },
  };
  return registry;
}

function conflict(subject: string, version: number, fp: string, registered: RegisteredVersion): RegisterOutcome {
  return {
    status: 'conflict',
    subject,
    version,
    fingerprint: fp,
    registeredFingerprint: registered.fingerprint,
    message:
      `${subject} v${version} is registered with a different schema (fingerprint ${registered.fingerprint.slice(0, 12)}, ` +
      `registered ${registered.registeredAt} by ${registered.registeredBy}; this one is ${fp.slice(0, 12)}): ` +
      `registered versions are immutable, add version ${version + 1} instead`,
  };
}

/** How one working-tree version relates to the registry. */
export type VersionPlan =
  | { readonly status: 'registered'; readonly subject: string; readonly version: number; readonly fingerprint: string }
  | {
      readonly status: 'changed';
      readonly subject: string;
      readonly version: number;
      readonly fingerprint: string;
      readonly registeredFingerprint: string;
      readonly message: string;
    }
  | { readonly status: 'new'; readonly subject: string; readonly version: number; readonly fingerprint: string; readonly compatibility: CompatibilityResult }
  | { readonly status: 'missing'; readonly subject: string; readonly version: number; readonly message: string };

/** The comparison of a catalogue with the registry, per subject. */
export interface CataloguePlan {
  readonly subject: string;
  readonly mode: CompatibilityMode;
  readonly modeSet: boolean;
  /** The mode the subject would get on first registration (from its definition). */
  readonly initialMode: CompatibilityMode;
  readonly versions: readonly VersionPlan[];
  /** True when nothing in this subject would fail the gate. */
  readonly ok: boolean;
}

/**
 * Compares the working tree's catalogue with the registry: each version is `registered` (same
 * schema), `changed` (a registered version was edited: refused), `new` (checked against every
 * earlier version, registered or new, under the subject's mode) or `missing` (registered but
 * deleted from the tree: refused, versions are never removed).
 */
export async function planCatalogue(
  registry: SchemaRegistry,
  catalogue: readonly SubjectDefinition[],
  only?: string,
): Promise<CataloguePlan[]> {
  const plans: CataloguePlan[] = [];
  for (const definition of catalogue) {
    if (only !== undefined && definition.subject !== only) continue;
    const registered = await registry.getVersions(definition.subject);
    const modeInfo = await registry.getMode(definition.subject);
    const initialMode = definition.compatibility ?? defaultCompatibilityMode;
    // A subject seen for the first time gets its declared mode on registration; check with it.
    const mode = !modeInfo.set && registered.length === 0 ? initialMode : modeInfo.mode;
    const history: VersionedSchema[] = [];
    const versions: VersionPlan[] = [];
    for (const v of definition.versions) {
      const schema = contractJsonSchema(v.schema);
      const fp = fingerprint(schema);
      const reg = registered.find((r) => r.version === v.version);
      const base = { subject: definition.subject, version: v.version, fingerprint: fp };
      if (reg && reg.fingerprint === fp) versions.push({ status: 'registered', ...base });
      else if (reg) {
        versions.push({
          status: 'changed',
          ...base,
          registeredFingerprint: reg.fingerprint,
          message: `${definition.subject} v${v.version} differs from the registered schema (registered ${reg.registeredAt} by ${reg.registeredBy}): registered versions are immutable, add version ${(definition.versions.at(-1)?.version ?? 0) + 1} instead`,
        });
      } else {
        versions.push({ status: 'new', ...base, compatibility: checkCompatibility({ version: v.version, schema }, history, mode) });
      }
      // Later versions are judged against what readers actually have: the registered schema.
      history.push({ version: v.version, schema: reg ? reg.schema : schema });
    }
    for (const reg of registered) {
      if (!definition.versions.some((v) => v.version === reg.version)) {
        versions.push({
          status: 'missing',
          subject: definition.subject,
          version: reg.version,
          message: `${definition.subject} v${reg.version} is registered but no longer in the working tree: versions are never removed`,
        });
      }
    }
    const ok = versions.every((v) => v.status === 'registered' || (v.status === 'new' && v.compatibility.compatible));
    plans.push({ subject: definition.subject, mode, modeSet: modeInfo.set, initialMode, versions, ok });
  }
  return plans;
}

/** What {@link registerCatalogue} did. */
export interface CatalogueRegistration {
  /** True when every version is registered (now or before). */
  readonly ok: boolean;
  /** One outcome per version attempted or already registered, in subject/version order. */
  readonly outcomes: readonly RegisterOutcome[];
  /** Subjects not touched because the gate refuses them (edited, removed or breaking versions). */
  readonly refused: readonly CataloguePlan[];
}

/**
 * Registers the catalogue's new versions in order, each re-checked by the registry. A subject with
 * any problem is skipped whole: a partial history would mislead readers. Idempotent: versions
 * already registered with the same schema are reported `unchanged`. Suitable for worker start-up
 * (the registry then always lists what the running code accepts) and for `platform schemas register`.
 */
export async function registerCatalogue(
  registry: SchemaRegistry,
  catalogue: readonly SubjectDefinition[],
  only?: string,
): Promise<CatalogueRegistration> {
  const outcomes: RegisterOutcome[] = [];
  const refused: CataloguePlan[] = [];
  for (const plan of await planCatalogue(registry, catalogue, only)) {
    const definition = catalogue.find((s) => s.subject === plan.subject)!;
    if (!plan.ok) {
      refused.push(plan);
      continue;
    }
    for (const v of plan.versions) {
      if (v.status === 'registered') outcomes.push({ status: 'unchanged', subject: v.subject, version: v.version, fingerprint: v.fingerprint });
      if (v.status !== 'new') continue;
      const version = definition.versions.find((x) => x.version === v.version)!;
      const outcome = await registry.register({
        subject: definition.subject,
        version: v.version,
        schema: contractJsonSchema(version.schema),
        description: definition.description,
        notes: version.notes ?? '',
        upcastFrom: version.upcast ? v.version - 1 : null,
        initialMode: plan.initialMode,
      });
      outcomes.push(outcome);
      if (outcome.status !== 'registered' && outcome.status !== 'unchanged') break;
    }
  }
  const ok = refused.length === 0 && outcomes.every((o) => o.status === 'registered' || o.status === 'unchanged');
  return { ok, outcomes, refused };
}
