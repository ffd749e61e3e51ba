/**
 * `platform schemas ...`: the schema registry from the command line. `check` is the CI gate: it
 * compares the working tree's contracts with the registry in ClickHouse and exits 1 on a breaking
 * change (printing each field path and why), on an edited registered version, or on a removed one.
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { ClickHouseClient } from '@clickhouse/client';
import { z } from 'zod';
import {
  createSchemaRegistry,
  fingerprint,
  planCatalogue,
  registerCatalogue,
  type CataloguePlan,
  type SchemaRegistry,
} from '../../activities/contracts/registry.js';
import { migrate } from '../../infra/clickhouse/migrate.js';
import { CompatibilityMode, compatibilityModes, contractJsonSchema, portableJsonSchema, type BreakingChange, type JsonSchema } from '../../schemas/compat/index.js';
import { defineSubject, subjects as treeSubjects, type SubjectDefinition } from '../../schemas/contracts/index.js';
import { envelopeSchema } from '../../schemas/contracts/envelope.js';
import { loadConfig } from '../../schemas/config.js';
import { createWarehouse } from '../connections.js';
import { parseCommandLine, UsageError, type Command, type CommandSpec } from './command.js';

const schemaOptions = {
  json: { type: 'boolean', default: false },
  contracts: { type: 'string' },
  database: { type: 'string' },
  tree: { type: 'boolean', default: false },
  out: { type: 'string' },
} as const;

/** The command line of `platform schemas` (also checked against every README example). */
export const schemasSpec: CommandSpec = {
  options: schemaOptions,
  subcommands: {
    list: {},
    show: { positionals: [1, 2] },
    check: { positionals: [0, 1] },
    register: { positionals: [0, 1] },
    mode: { positionals: [1, 2] },
    export: {},
    lock: {},
  },
};

const usage = [
  'Usage: platform schemas <subcommand> [options]',
  '',
  'Subcommands:',
  '  list                          subjects: mode, registered versions, versions in the working tree',
  '  show SUBJECT [VERSION]        a registered version\'s JSON Schema (default: latest); --tree: the working tree\'s',
  '  check [SUBJECT]               CI gate: working tree vs registry; exit 1 on a breaking change,',
  '                                an edited registered version or a removed one',
  '  register [SUBJECT]            register the working tree\'s new versions (each checked first)',
  '  mode SUBJECT [MODE]           show or set the compatibility mode (default BACKWARD)',
  '  export --out DIR              write every version as JSON Schema (data and full event)',
  '  lock                          record new working-tree versions in schemas/contracts/versions.lock.json',
  '                                (no database; refuses to change a recorded fingerprint)',
  '',
  'Options:',
  '  --json             machine-readable output',
  '  --contracts PATH   a module exporting `subjects` to use instead of schemas/contracts/index.ts',
  '  --database NAME    ClickHouse database (default: CLICKHOUSE_DATABASE)',
  '  --tree             show/export: read the working tree instead of the registry',
  '  --out DIR          export: where to write',
  '  -h, --help         this text',
  '',
  `Modes: ${compatibilityModes.join(', ')}`,
  '',
  'Example (CI): platform schemas check || exit 1',
].join('\n');

interface Options {
  json: boolean;
  contracts?: string;
  database?: string;
  tree: boolean;
  out?: string;
}

/** Loads a catalogue module (`--contracts`): its `subjects` export, each checked by defineSubject. */
export async function loadCatalogue(path: string | undefined): Promise<readonly SubjectDefinition[]> {
  if (path === undefined) return treeSubjects;
  const module = (await import(pathToFileURL(resolve(path)).href)) as { subjects?: unknown };
  if (!Array.isArray(module.subjects)) {
    throw new UsageError(`--contracts ${path}: expected a module exporting \`subjects\` (an array of subject definitions)`);
  }
  return (module.subjects as SubjectDefinition[]).map(defineSubject);
}

function out(text: string): void {
  process.stdout.write(`${text}\n`);
}

function printJson(value: unknown): void {
  out(JSON.stringify(value, null, 2));
}

function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd();
  return [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n');
}

function renderChange(c: BreakingChange): string {
  return `    ${c.path}  ${c.change}  [${c.mode} vs v${c.against}]\n      ${c.why}`;
}

/** Renders a plan for people; returns the number of problems. */
function renderPlan(plans: readonly CataloguePlan[]): { text: string; problems: number } {
  const lines: string[] = [];
  let problems = 0;
  for (const plan of plans) {
    const modeNote = plan.modeSet ? '' : ' (default)';
    lines.push(`${plan.subject}  mode ${plan.mode}${modeNote}`);
    for (const v of plan.versions) {
      switch (v.status) {
        case 'registered':
          lines.push(`  v${v.version}  registered, unchanged`);
          break;
        case 'new':
          if (v.compatibility.compatible) {
            const against = v.compatibility.checkedAgainst.length > 0 ? `compatible with v${v.compatibility.checkedAgainst.join(', v')}` : 'first version';
            lines.push(`  v${v.version}  new, ${against} (${plan.mode})`);
          } else {
            problems += v.compatibility.changes.length;
            lines.push(`  v${v.version}  new, BREAKS ${plan.mode}: ${v.compatibility.changes.length} breaking change(s)`);
            lines.push(...v.compatibility.changes.map(renderChange));
          }
          break;
        case 'changed':
          problems++;
          lines.push(`  v${v.version}  CHANGED after registration\n      ${v.message}`);
          break;
        case 'missing':
          problems++;
          lines.push(`  v${v.version}  REMOVED from the working tree\n      ${v.message}`);
          break;
      }
    }
  }
  return { text: lines.join('\n'), problems };
}

async function connect(options: Options): Promise<{ warehouse: ClickHouseClient; registry: SchemaRegistry; close: () => Promise<void> }> {
  const config = loadConfig();
  const clickhouseUrl = config.CLICKHOUSE_URL ?? `http://127.0.0.1:${config.LOCAL_CLICKHOUSE_PORT}`;
  // The client's own URL option silences its logger: errors are printed once, by the dispatcher.
  const quietUrl = new URL(clickhouseUrl);
  quietUrl.searchParams.set('log_level', 'OFF');
  const endpoints = { clickhouseUrl: quietUrl.toString(), temporalAddress: '', temporalUiUrl: null, kafkaBrokers: [] };
  const database = options.database ?? config.CLICKHOUSE_DATABASE;
  const warehouse = createWarehouse(config, endpoints, database);
  const admin = createWarehouse(config, endpoints, 'default');
  try {
    await migrate(warehouse, database, { admin });
  } finally {
    await admin.close();
  }
  const actor = process.env.USER ? `cli:${process.env.USER}` : 'cli';
  return { warehouse, registry: createSchemaRegistry({ warehouse, actor }), close: () => warehouse.close() };
}

async function list(options: Options, registry: SchemaRegistry): Promise<number> {
  const catalogue = await loadCatalogue(options.contracts);
  const summaries = await registry.listSubjects();
  const names = [...new Set([...summaries.map((s) => s.subject), ...catalogue.map((c) => c.subject)])].sort();
  const rows = names.map((subject) => {
    const s = summaries.find((x) => x.subject === subject);
    const def = catalogue.find((c) => c.subject === subject);
    return {
      subject,
      mode: s?.mode ?? def?.compatibility ?? 'BACKWARD',
      modeSet: s?.modeSet ?? false,
      registered: s?.versions ?? [],
      tree: def?.versions.map((v) => v.version) ?? [],
      description: def?.description ?? '',
    };
  });
  if (options.json) {
    printJson(rows);
    return 0;
  }
  if (rows.length === 0) {
    out('No subjects.');
    return 0;
  }
  const versions = (vs: readonly number[]) => (vs.length === 0 ? '-' : vs.join(','));
  out(
    table(
      ['SUBJECT', 'MODE', 'REGISTERED', 'TREE', 'DESCRIPTION'],
      rows.map((r) => [r.subject, `${r.mode}${r.modeSet ? '' : '*'}`, versions(r.registered), versions(r.tree), r.description]),
    ),
  );
  out('\n* default mode (not set in the registry)');
  return 0;
}

async function show(options: Options, args: string[], registry: SchemaRegistry | null): Promise<number> {
  const [subject, versionText] = args;
  if (!subject) throw new UsageError('show: expected SUBJECT [VERSION]');
  const version = versionText === undefined ? undefined : Number(versionText);
  if (version !== undefined && (!Number.isInteger(version) || version < 1)) {
    throw new UsageError(`show: VERSION: expected a positive integer, got ${JSON.stringify(versionText)}`);
  }
  let view: { subject: string; version: number; fingerprint: string; source: string; mode?: string; registeredAt?: string; registeredBy?: string; notes: string; schema: JsonSchema };
  if (registry) {
    const v = await registry.getVersion(subject, version);
    const mode = await registry.getMode(subject);
    view = { subject, version: v.version, fingerprint: v.fingerprint, source: 'registry', mode: mode.mode, registeredAt: v.registeredAt, registeredBy: v.registeredBy, notes: v.notes, schema: v.schema };
  } else {
    const def = (await loadCatalogue(options.contracts)).find((s) => s.subject === subject);
    if (!def) throw new UsageError(`show: no subject "${subject}" in the working tree`);
    const v = version === undefined ? def.versions.at(-1)! : def.versions.find((x) => x.version === version);
    if (!v) throw new UsageError(`show: ${subject} has versions ${def.versions.map((x) => x.version).join(', ')}, got ${version}`);
    const schema = contractJsonSchema(v.schema);
    view = { subject, version: v.version, fingerprint: fingerprint(schema), source: 'working tree', notes: v.notes ?? '', schema };
  }
  if (options.json) {
    printJson(view);
    return 0;
  }
  out(`${view.subject} v${view.version}  (${view.source})`);
  if (view.mode) out(`mode:        ${view.mode}`);
  out(`fingerprint: ${view.fingerprint}`);
  if (view.registeredAt) out(`registered:  ${view.registeredAt} by ${view.registeredBy}`);
  if (view.notes) out(`notes:       ${view.notes}`);
  out('');
  out(JSON.stringify(view.schema, null, 2));
  return 0;
}

async function check(options: Options, args: string[], registry: SchemaRegistry): Promise<number> {
  const catalogue = await loadCatalogue(options.contracts);
  const only = args[0];
  if (only !== undefined && !catalogue.some((s) => s.subject === only)) throw new UsageError(`check: no subject "${only}" in the working tree`);
  const plans = await planCatalogue(registry, catalogue, only);
  const { text, problems } = renderPlan(plans);
  // A whole subject deleted from the tree: producers may still send it and it would dead-letter.
  // Only for the full working tree (a --contracts module or a SUBJECT filter is a partial view).
  const removed =
    options.contracts === undefined && only === undefined
      ? (await registry.listSubjects()).filter((s) => s.versions.length > 0 && !catalogue.some((c) => c.subject === s.subject))
      : [];
  const removedText = removed.map((s) => `${s.subject}  REMOVED: registered (v${s.versions.join(', v')}) but not in the working tree; subjects are never removed`);
  const ok = plans.every((p) => p.ok) && removed.length === 0;
  if (options.json) printJson({ ok, subjects: plans, removedSubjects: removed.map((s) => s.subject) });
  else {
    out([text, ...removedText].join('\n'));
    out(ok ? '\nOK: the working tree\'s contracts are compatible with the registry.' : `\nFAILED: ${problems + removed.length} problem(s); see above.`);
  }
  return ok ? 0 : 1;
}

async function register(options: Options, args: string[], registry: SchemaRegistry): Promise<number> {
  const catalogue = await loadCatalogue(options.contracts);
  const only = args[0];
  if (only !== undefined && !catalogue.some((s) => s.subject === only)) throw new UsageError(`register: no subject "${only}" in the working tree`);
  const result = await registerCatalogue(registry, catalogue, only);
  const { outcomes } = result;
  const refused = result.refused.map((plan) => renderPlan([plan]).text);
  const failed = !result.ok;
  if (options.json) {
    printJson({ ok: !failed, outcomes, refused });
    return failed ? 1 : 0;
  }
  for (const o of outcomes) {
    switch (o.status) {
      case 'registered':
        out(`${o.subject} v${o.version}: registered (${o.fingerprint.slice(0, 12)})`);
        break;
      case 'unchanged':
        out(`${o.subject} v${o.version}: already registered, unchanged`);
        break;
      case 'conflict':
      case 'out_of_order':
        out(`${o.subject} v${o.version}: REFUSED: ${o.message}`);
        break;
      case 'incompatible':
        out(`${o.subject} v${o.version}: REFUSED (${o.compatibility.mode}):\n${o.compatibility.changes.map(renderChange).join('\n')}`);
        break;
    }
  }
  for (const text of refused) out(`REFUSED:\n${text}`);
  return failed ? 1 : 0;
}

async function mode(options: Options, args: string[], registry: SchemaRegistry): Promise<number> {
  const [subject, requested] = args;
  if (!subject) throw new UsageError('mode: expected SUBJECT [MODE]');
  if (requested === undefined) {
    const current = await registry.getMode(subject);
    if (options.json) printJson({ subject, ...current });
    else out(`${subject}: ${current.mode}${current.set ? '' : ' (default)'}`);
    return 0;
  }
  const parsed = CompatibilityMode.safeParse(requested.toUpperCase());
  if (!parsed.success) throw new UsageError(`mode: MODE: expected one of ${compatibilityModes.join(', ')}, got ${JSON.stringify(requested)}`);
  const result = await registry.setMode(subject, parsed.data);
  if (options.json) printJson({ subject, mode: parsed.data, ...result });
  else out(result.changed ? `${subject}: ${result.previous} -> ${parsed.data}` : `${subject}: already ${parsed.data}`);
  return 0;
}

/** Where the working tree records the fingerprint of every version it has published. */
export const lockFile = fileURLToPath(new URL('../../schemas/contracts/versions.lock.json', import.meta.url));

/** subject -> version -> fingerprint. */
export type VersionLock = Record<string, Record<string, string>>;

/** Fingerprints of every version of a catalogue, in lock-file form. */
export function catalogueFingerprints(catalogue: readonly SubjectDefinition[]): VersionLock {
  return Object.fromEntries(
    catalogue.map((s) => [s.subject, Object.fromEntries(s.versions.map((v) => [String(v.version), fingerprint(contractJsonSchema(v.schema))]))]),
  );
}

async function lock(options: Options): Promise<number> {
  // The lock records the working tree's own catalogue; another module's versions do not belong in it.
  if (options.contracts !== undefined) throw new UsageError('lock: records the working tree only; --contracts is not allowed');
  const current = catalogueFingerprints(treeSubjects);
  let locked: VersionLock = {};
  try {
    locked = JSON.parse(await readFile(lockFile, 'utf8')) as VersionLock;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  const added: string[] = [];
  const changed: string[] = [];
  const next: VersionLock = structuredClone(locked);
  for (const [subject, versions] of Object.entries(current)) {
    for (const [version, fp] of Object.entries(versions)) {
      const was = locked[subject]?.[version];
      if (was === undefined) {
        (next[subject] ??= {})[version] = fp;
        added.push(`${subject} v${version}`);
      } else if (was !== fp) changed.push(`${subject} v${version}`);
    }
  }
  if (changed.length > 0) {
    out(`REFUSED: published versions changed in place: ${changed.join(', ')}. Restore them and add a new version instead.`);
    return 1;
  }
  await writeFile(lockFile, `${JSON.stringify(next, null, 2)}\n`);
  out(added.length > 0 ? `Locked ${added.join(', ')}.` : 'Nothing to lock: every version is recorded.');
  return 0;
}

interface ExportItem {
  subject: string;
  version: number;
  schema: JsonSchema;
  /** The zod source when the working tree holds the same schema (needed for the event schema). */
  zod: z.ZodType | null;
}

/** The JSON Schema of a whole event (envelope with this subject/version and its data). */
function eventJsonSchema(subject: string, version: number, data: z.ZodType): JsonSchema {
  const event = envelopeSchema.extend({ subject: z.literal(subject), version: z.literal(version), data });
  return contractJsonSchema(event);
}

async function exportSchemas(options: Options, registry: SchemaRegistry | null): Promise<number> {
  if (!options.out) throw new UsageError('export: expected --out DIR');
  const dir = resolve(options.out);
  const index: { subject: string; version: number; fingerprint: string; data: string; event: string | null }[] = [];
  const write = async (path: string, value: unknown) => {
    await mkdir(join(path, '..'), { recursive: true });
    await writeFile(path, `${JSON.stringify(value, null, 2)}\n`);
  };
  const catalogue = await loadCatalogue(options.contracts);
  const items: ExportItem[] = [];
  if (registry) {
    for (const s of await registry.listSubjects()) {
      for (const v of await registry.getVersions(s.subject)) {
        // The full-event schema needs the zod source; the registry's data schema is exported as is.
        const zod = catalogue.find((c) => c.subject === s.subject)?.versions.find((x) => x.version === v.version)?.schema ?? null;
        const same = zod !== null && fingerprint(contractJsonSchema(zod)) === v.fingerprint;
        items.push({ subject: s.subject, version: v.version, schema: v.schema, zod: same ? zod : null });
      }
    }
  } else {
    for (const s of catalogue) for (const v of s.versions) items.push({ subject: s.subject, version: v.version, schema: contractJsonSchema(v.schema), zod: v.schema });
  }
  for (const item of items) {
    const base = join(dir, item.subject);
    const dataFile = join(base, `v${item.version}.data.schema.json`);
    // Producers' validators run in strict mode: zod's own format names are dropped (the pattern stays).
    const { $schema, ...rest } = portableJsonSchema(item.schema) as Record<string, unknown>;
    await write(dataFile, { $schema, $id: `${item.subject}/v${item.version}.data`, title: `${item.subject} v${item.version} data`, ...rest });
    let eventFile: string | null = null;
    if (item.zod) {
      eventFile = join(base, `v${item.version}.event.schema.json`);
      const { $schema: s2, ...event } = portableJsonSchema(eventJsonSchema(item.subject, item.version, item.zod)) as Record<string, unknown>;
      await write(eventFile, { $schema: s2, $id: `${item.subject}/v${item.version}.event`, title: `${item.subject} v${item.version} event`, ...event });
    }
    index.push({ subject: item.subject, version: item.version, fingerprint: fingerprint(item.schema), data: dataFile, event: eventFile });
  }
  await write(join(dir, 'index.json'), index.map((i) => ({ ...i, data: i.data.slice(dir.length + 1), event: i.event?.slice(dir.length + 1) ?? null })));
  if (options.json) printJson({ out: dir, files: index });
  else out(`Wrote ${index.length} version(s) from the ${registry ? 'registry' : 'working tree'} to ${dir}`);
  return 0;
}

const command: Command = {
  name: 'schemas',
  summary: 'schema registry: list, show, check (CI gate), register, mode, export',
  usage,
  spec: schemasSpec,
  async run(args) {
    const parsed = parseCommandLine(schemasSpec, args);
    const sub = parsed.sub!;
    const rest = parsed.positionals;
    const v = parsed.values;
    const options: Options = {
      json: v.json === true,
      tree: v.tree === true,
      ...(typeof v.contracts === 'string' ? { contracts: v.contracts } : {}),
      ...(typeof v.database === 'string' ? { database: v.database } : {}),
      ...(typeof v.out === 'string' ? { out: v.out } : {}),
    };
    if (sub === 'lock') return lock(options);
    if ((sub === 'show' || sub === 'export') && options.tree) {
      return sub === 'show' ? show(options, rest, null) : exportSchemas(options, null);
    }
    const { registry, close } = await connect(options);
    try {
      switch (sub) {
        case 'list':
          return await list(options, registry);
        case 'show':
          return await show(options, rest, registry);
        case 'check':
          return await check(options, rest, registry);
        case 'register':
          return await register(options, rest, registry);
        case 'mode':
          return await mode(options, rest, registry);
        default:
          return await exportSchemas(options, registry);
      }
    } finally {
      await close();
    }
  },
};

export default command;
