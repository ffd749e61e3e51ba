/**
 * `platform processors ...`: the processor catalogue and registry from the command line. `check` is
 * the CI gate: it compares the working tree's processors with `processor_registry` and the lock
 * file and exits 1 on an edited published version, a removed one, or a new version whose outputs
 * would drop or retype a column (each with its field path). `diff` shows what changes between two
 * versions: stages, flags, columns added per table, and refusals.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { createProcessorRegistry, planAgainst, processorFingerprint, type ProcessorPlan, type ProcessorRegistry } from '../../activities/processing/registry.js';
import { migrate } from '../../infra/clickhouse/migrate.js';
import { addedColumns, checkOutputCompatibility } from '../../schemas/processing/compat.js';
import { outputColumns } from '../../schemas/processing/ddl.js';
import type { ProcessorFamily } from '../../schemas/processing/define.js';
import { describeProcessor, descriptorOutputs, type ProcessorDescriptor } from '../../schemas/processing/describe.js';
import { processors as treeProcessors } from '../../schemas/processors/index.js';
import { loadConfig } from '../../schemas/config.js';
import { createWarehouse } from '../connections.js';
import { parseCommandLine, UsageError, type Command, type CommandSpec } from './command.js';

const usage = [
  'Usage: platform processors <subcommand> [options]',
  '',
  'Subcommands:',
  '  list                        processors: registered versions, versions in the working tree, outputs',
  '  show NAME [VERSION]         a version (also NAME@VERSION): stages, outputs with their columns and tables, flags, breaker',
  '                              (registry; --tree: the working tree)',
  '  check                       CI gate: working tree vs registry and lock file; exit 1 on an edited or',
  '                              removed published version or an output change a table cannot take',
  '  diff NAME FROM TO           what changes from version FROM to TO (working tree, else registry);',
  '                              also NAME@FROM NAME@TO',
  '  register                    register the working tree\'s new versions (each checked first)',
  '  lock                        record new versions in schemas/processors/versions.lock.json (no database)',
  '',
  'Options:',
  '  --json             machine-readable output',
  '  --catalogue PATH   a module exporting `processors` (ProcessorFamily[]) instead of schemas/processors',
  '  --database NAME    ClickHouse database (default: CLICKHOUSE_DATABASE)',
  '  --tree             show: read the working tree instead of the registry',
  '  -h, --help         this text',
  '',
  'Example (CI): platform processors check || exit 1',
].join('\n');

interface Options {
  json: boolean;
  catalogue?: string;
  database?: string;
  tree: boolean;
}

/** Where the working tree records the fingerprint of every published processor version. */
export const processorLockFile = fileURLToPath(new URL('../../schemas/processors/versions.lock.json', import.meta.url));

/** name -> version -> fingerprint. */
export type ProcessorLock = Record<string, Record<string, string>>;

async function readLock(): Promise<ProcessorLock> {
  try {
    return JSON.parse(await readFile(processorLockFile, 'utf8')) as ProcessorLock;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return {};
    throw err;
  }
}

/** Loads a catalogue module (`--catalogue`) or the working tree's. */
async function loadCatalogue(path: string | undefined): Promise<readonly ProcessorFamily[]> {
  if (path === undefined) return treeProcessors;
  const module = (await import(pathToFileURL(resolve(path)).href)) as { processors?: unknown };
  if (!Array.isArray(module.processors)) throw new UsageError(`--catalogue ${path}: expected a module exporting \`processors\` (ProcessorFamily[])`);
  return module.processors as ProcessorFamily[];
}

function out(text: string): void {
  process.stdout.write(`${text}\n`);
}

function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd();
  return [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n');
}

async function connect(options: Options): Promise<{ registry: ProcessorRegistry; close: () => Promise<void> }> {
  const config = loadConfig();
  const clickhouseUrl = config.CLICKHOUSE_URL ?? `http://127.0.0.1:${config.LOCAL_CLICKHOUSE_PORT}`;
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
  return { registry: createProcessorRegistry({ warehouse, actor }), close: () => warehouse.close() };
}

function renderPlans(plans: readonly ProcessorPlan[]): { text: string; problems: number } {
  const lines: string[] = [];
  let problems = 0;
  for (const plan of plans) {
    lines.push(plan.name);
    for (const v of plan.versions) {
      switch (v.status) {
        case 'registered':
          lines.push(`  v${v.version}  registered, unchanged (${v.fingerprint.slice(0, 12)})`);
          break;
        case 'new':
          if (v.changes.length === 0) lines.push(`  v${v.version}  new, outputs compatible with the earlier versions' tables (${v.fingerprint.slice(0, 12)})`);
          else {
            problems += v.changes.length;
            lines.push(`  v${v.version}  new, REFUSED: ${v.changes.length} output change(s) the tables cannot take`);
            for (const c of v.changes) lines.push(`    ${c.output}.${c.path}  ${c.change}\n      ${c.why}`);
          }
          break;
        case 'changed':
          problems++;
          lines.push(`  v${v.version}  CHANGED after publication\n      ${v.message}`);
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

function showText(d: ProcessorDescriptor, extra: { source: string; fingerprint: string; registeredAt?: string; registeredBy?: string }): string {
  const lines = [
    `${d.name} v${d.version}  (${extra.source})`,
    `fingerprint:    ${extra.fingerprint}`,
    ...(extra.registeredAt ? [`registered:     ${extra.registeredAt} by ${extra.registeredBy}`] : []),
    `description:    ${d.description}`,
    ...(d.notes ? [`notes:          ${d.notes}`] : []),
    `input:          ${d.input.subject} v${d.input.versions.join(', v')}`,
    `implementation: ${d.implementation}`,
    `breaker:        pause after ${d.breaker.consecutiveBatches} batch(es) in a row with failure ratio > ${d.breaker.failureRatio} (batches of >= ${d.breaker.minEvents} events)`,
    '',
    'stages:',
    ...d.stages.map((s, i) => `  ${i + 1}. ${s.name} (${s.kind})${s.detail ? ` ${JSON.stringify(s.detail)}` : ''}`),
    '',
    'outputs:',
  ];
  for (const [name, o] of Object.entries(d.outputs)) {
    lines.push(`  ${name} -> table ${o.table}`);
    for (const c of outputColumns(o.schema)) lines.push(`    ${c.name.padEnd(24)} ${c.ch}`);
  }
  lines.push('', `flags (JSON Schema): ${JSON.stringify(d.flags)}`);
  return lines.join('\n');
}

function treeDescriptor(catalogue: readonly ProcessorFamily[], name: string, version?: number): ProcessorDescriptor {
  const family = catalogue.find((f) => f.name === name);
  if (!family) throw new UsageError(`no processor "${name}" in the working tree; known: ${catalogue.map((f) => f.name).join(', ')}`);
  const def = version === undefined ? family.versions.at(-1)! : family.versions.find((v) => v.version === version);
  if (!def) throw new UsageError(`${name} has versions ${family.versions.map((v) => v.version).join(', ')}, got ${version}`);
  return describeProcessor(def);
}

function parseVersion(text: string | undefined, what: string): number | undefined {
  if (text === undefined) return undefined;
  const v = Number(text.replace(/^v/, ''));
  if (!Number.isInteger(v) || v < 1) throw new UsageError(`${what}: expected a positive integer, got ${JSON.stringify(text)}`);
  return v;
}

async function lock(options: Options): Promise<number> {
  if (options.catalogue !== undefined) throw new UsageError('lock: records the working tree only; --catalogue is not allowed');
  const locked = await readLock();
  const next: ProcessorLock = structuredClone(locked);
  const added: string[] = [];
  const changed: string[] = [];
  for (const family of treeProcessors) {
    for (const def of family.versions) {
      const fp = processorFingerprint(describeProcessor(def));
      const was = locked[family.name]?.[String(def.version)];
      if (was === undefined) {
        (next[family.name] ??= {})[String(def.version)] = fp;
        added.push(`${family.name} v${def.version}`);
      } else if (was !== fp) changed.push(`${family.name} v${def.version}`);
    }
  }
  if (changed.length > 0) {
    out(`REFUSED: published versions changed in place: ${changed.join(', ')}. Restore them and add a new version instead.`);
    return 1;
  }
  await writeFile(processorLockFile, `${JSON.stringify(next, null, 2)}\n`);
  out(added.length > 0 ? `Locked ${added.join(', ')}.` : 'Nothing to lock: every version is recorded.');
  return 0;
}

async function diff(options: Options, args: string[], registry: ProcessorRegistry | null): Promise<number> {
  const [name, fromText, toText] = args;
  if (!name || !fromText || !toText) throw new UsageError('diff: expected NAME FROM TO');
  const from = parseVersion(fromText, 'diff FROM')!;
  const to = parseVersion(toText, 'diff TO')!;
  const catalogue = await loadCatalogue(options.catalogue);
  const get = async (v: number): Promise<ProcessorDescriptor> => {
    const inTree = catalogue.find((f) => f.name === name)?.versions.find((d) => d.version === v);
    if (inTree) return describeProcessor(inTree);
    if (registry) return (await registry.get(name, v)).descriptor;
    throw new UsageError(`${name} v${v} is not in the working tree`);
  };
  const a = await get(from);
  const b = await get(to);
  const oa = descriptorOutputs(a);
  const ob = descriptorOutputs(b);
  const stageText = (d: ProcessorDescriptor) => d.stages.map((s) => `${s.name}(${s.kind})`);
  const result = {
    name,
    from,
    to,
    stages: { from: stageText(a), to: stageText(b), changed: JSON.stringify(a.stages) !== JSON.stringify(b.stages) },
    implementation: { from: a.implementation, to: b.implementation },
    flagsChanged: JSON.stringify(a.flags) !== JSON.stringify(b.flags),
    breaker: { from: a.breaker, to: b.breaker },
    addedColumns: Object.fromEntries(Object.entries(addedColumns(oa, ob)).map(([k, cols]) => [b.outputs[k]!.table, cols.map((c) => `${c.name} ${c.ch}`)])),
    newOutputs: Object.keys(ob).filter((k) => !(k in oa)),
    droppedOutputs: Object.keys(oa).filter((k) => !(k in ob)),
    refusals: checkOutputCompatibility({ version: from, outputs: oa }, { version: to, outputs: ob }),
  };
  if (options.json) {
    out(JSON.stringify(result, null, 2));
    return result.refusals.length === 0 ? 0 : 1;
  }
  out(`${name} v${from} -> v${to}`);
  out(`stages:         ${result.stages.changed ? `${result.stages.from.join(' > ')}\n             -> ${result.stages.to.join(' > ')}` : 'unchanged'}`);
  out(`implementation: ${a.implementation === b.implementation ? a.implementation : `${a.implementation} -> ${b.implementation}`}`);
  out(`flags:          ${result.flagsChanged ? 'schema changed' : 'unchanged'}`);
  for (const [t, cols] of Object.entries(result.addedColumns)) out(`table ${t}: ${cols.length === 0 ? 'no new columns' : `ADD COLUMN ${cols.join(', ')}`}`);
  if (result.newOutputs.length > 0) out(`new outputs:    ${result.newOutputs.join(', ')}`);
  if (result.droppedOutputs.length > 0) out(`dropped outputs: ${result.droppedOutputs.join(', ')} (their tables stay)`);
  if (result.refusals.length === 0) out('compatible: the tables take every change');
  else for (const c of result.refusals) out(`REFUSED ${c.output}.${c.path} ${c.change}: ${c.why}`);
  return result.refusals.length === 0 ? 0 : 1;
}

/** The command line of `platform processors` (also checked against every README example). */
export const processorsSpec: CommandSpec = {
  options: { json: { type: 'boolean', default: false }, catalogue: { type: 'string' }, database: { type: 'string' } },
  subcommands: {
    list: {},
    show: { options: { tree: { type: 'boolean', default: false } }, positionals: [1, 2] },
    check: {},
    diff: { positionals: [2, 3] },
    register: {},
    lock: {},
  },
};

const command: Command = {
  name: 'processors',
  summary: 'processor catalogue and registry: list, show, check (CI gate), diff, register, lock',
  usage,
  spec: processorsSpec,
  async run(args) {
    const parsed = parseCommandLine(processorsSpec, args);
    const sub = parsed.sub!;
    // `show request-enriched@2` and `diff request-enriched@1 request-enriched@2` name versions as
    // `pipeline start --processor` does.
    const refs = parsed.positionals.map((p) => /^(.+)@v?(\d+)$/.exec(p));
    const at = sub === 'show' && parsed.positionals.length === 1 ? refs[0] : null;
    const pair = sub === 'diff' && parsed.positionals.length === 2 ? refs : null;
    if (pair && (!pair[0] || !pair[1] || pair[0][1] !== pair[1][1])) throw new UsageError('diff: expected NAME FROM TO, or NAME@FROM NAME@TO of one processor');
    const rest = at ? [at[1]!, at[2]!] : pair ? [pair[0]![1]!, pair[0]![2]!, pair[1]![2]!] : parsed.positionals;
    const options: Options = {
      json: parsed.values.json === true,
      tree: parsed.values.tree === true,
      ...(typeof parsed.values.catalogue === 'string' ? { catalogue: parsed.values.catalogue } : {}),
      ...(typeof parsed.values.database === 'string' ? { database: parsed.values.database } : {}),
    };
    if (sub === 'lock') return lock(options);
    const catalogue = await loadCatalogue(options.catalogue);
    if (sub === 'show' && options.tree) {
      const d = treeDescriptor(catalogue, rest[0] ?? '', parseVersion(rest[1], 'show VERSION'));
      const fp = processorFingerprint(d);
      out(options.json ? JSON.stringify({ ...d, fingerprint: fp, source: 'working tree' }, null, 2) : showText(d, { source: 'working tree', fingerprint: fp }));
      return 0;
    }
    const { registry, close } = await connect(options);
    try {
      switch (sub) {
        case 'list': {
          const registered = await registry.list();
          const names = [...new Set([...catalogue.map((f) => f.name), ...registered.map((r) => r.name)])].sort();
          const rows = names.map((name) => {
            const family = catalogue.find((f) => f.name === name);
            const latest = family?.versions.at(-1);
            return {
              name,
              registered: registered.filter((r) => r.name === name).map((r) => r.version),
              tree: family?.versions.map((v) => v.version) ?? [],
              input: latest ? `${latest.input.subject} v${latest.input.versions.join(',')}` : '',
              outputs: latest ? Object.entries(latest.outputs).map(([k, o]) => `${k}->${o.table}`) : [],
              description: latest?.description ?? '',
            };
          });
          if (options.json) out(JSON.stringify(rows, null, 2));
          else if (rows.length === 0) out('No processors.');
          else out(table(['NAME', 'REGISTERED', 'TREE', 'INPUT', 'OUTPUTS'], rows.map((r) => [r.name, r.registered.join(',') || '-', r.tree.join(','), r.input, r.outputs.join(' ')])));
          return 0;
        }
        case 'show': {
          const [name, versionText] = rest;
          if (!name) throw new UsageError('show: expected NAME [VERSION]');
          const r = await registry.get(name, parseVersion(versionText, 'show VERSION'));
          if (options.json) out(JSON.stringify({ ...r.descriptor, fingerprint: r.fingerprint, source: 'registry', registeredAt: r.registeredAt, registeredBy: r.registeredBy }, null, 2));
          else out(showText(r.descriptor, { source: 'registry', fingerprint: r.fingerprint, registeredAt: r.registeredAt, registeredBy: r.registeredBy }));
          return 0;
        }
        case 'check': {
          const plans = planAgainst(await registry.list(), catalogue, options.catalogue === undefined ? await readLock() : {});
          const ok = plans.every((p) => p.ok);
          const { text, problems } = renderPlans(plans);
          if (options.json) out(JSON.stringify({ ok, processors: plans }, null, 2));
          else out(`${text}\n${ok ? '\nOK: the working tree\'s processors are compatible with the registry.' : `\nFAILED: ${problems} problem(s); see above.`}`);
          return ok ? 0 : 1;
        }
        case 'register': {
          const result = await registry.register(catalogue, options.catalogue === undefined ? await readLock() : {});
          if (options.json) out(JSON.stringify(result, null, 2));
          else {
            out(result.registered.length > 0 ? `Registered ${result.registered.join(', ')}.` : 'Nothing new to register.');
            if (!result.ok) out(`REFUSED:\n${renderPlans(result.plans.filter((p) => !p.ok)).text}`);
          }
          return result.ok ? 0 : 1;
        }
        default:
          return await diff(options, rest, registry);
      }
    } finally {
      await close();
    }
  },
};

export default command;
