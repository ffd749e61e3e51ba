/**
 * `platform schemas` end to end against the shared ClickHouse: the CLI runs as a child process
 * with its own database, registers the working tree's contracts, refuses breaking and edited
 * versions (the CI gate exits non-zero with the field paths), and registers idempotently.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ClickHouseClient } from '@clickhouse/client';
import { Ajv2020 } from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';
import { createSchemaRegistry, fingerprint } from '../../activities/contracts/registry.js';
import { contractJsonSchema } from '../../schemas/compat/index.js';
import { requestTelemetryV1 } from '../../schemas/contracts/request-telemetry/v1.js';
import { createWarehouse } from '../../workers/connections.js';
import { stackEndpoints, testConfig, uniqueId } from '../support/stack.js';

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

const database = uniqueId('t');
const breaking = 'test/fixtures/contracts/breaking.ts';
const edited = 'test/fixtures/contracts/edited.ts';

function platform(...args: string[]): Promise<Run> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      ['--import', 'tsx', 'workers/platform.ts', 'schemas', ...args],
      {
        env: { ...process.env, CLICKHOUSE_DATABASE: database, CLICKHOUSE_URL: stackEndpoints().clickhouseUrl },
        timeout: 120_000,
      },
      (error, stdout, stderr) => {
        const code = error ? (typeof error.code === 'number' ? error.code : 1) : 0;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

let warehouse: ClickHouseClient;

async function registryRows(): Promise<{ subject: string; version: number }[]> {
  const result = await warehouse.query({ query: 'SELECT subject, version FROM schema_registry ORDER BY subject, version', format: 'JSONEachRow' });
  return (await result.json<{ subject: string; version: number }>()).map((r) => ({ subject: r.subject, version: Number(r.version) }));
}

describe('platform schemas', () => {
  beforeAll(() => {
    warehouse = createWarehouse(testConfig(), stackEndpoints(), database);
  });

  afterAll(async () => {
    await warehouse.command({ query: 'DROP DATABASE IF EXISTS {db:Identifier}', query_params: { db: database } });
    await warehouse.close();
  });

  it('check passes on an empty registry, then register writes every version once', async () => {
    const check = await platform('check');
    expect(check.stderr).toBe('');
    expect(check.code).toBe(0);
    expect(check.stdout).toContain('request-telemetry  mode BACKWARD');
    expect(check.stdout).toContain('v2  new, compatible with v1 (BACKWARD)');

    const register = await platform('register');
    expect(register.code).toBe(0);
    expect(register.stdout).toContain('request-telemetry v2: registered');
    expect(await registryRows()).toEqual([
      { subject: 'deploy-events', version: 1 },
      { subject: 'request-telemetry', version: 1 },
      { subject: 'request-telemetry', version: 2 },
    ]);
  });

  it('re-registering is idempotent', async () => {
    const again = await platform('register', '--json');
    expect(again.code).toBe(0);
    const outcome = JSON.parse(again.stdout) as { ok: boolean; outcomes: { status: string }[] };
    expect(outcome.ok).toBe(true);
    expect(outcome.outcomes.map((o) => o.status)).toEqual(['unchanged', 'unchanged', 'unchanged']);
    expect(await registryRows()).toHaveLength(3);
    expect((await platform('check')).code).toBe(0);
  });

  it('list and show print the registry', async () => {
    const list = await platform('list');
    expect(list.code).toBe(0);
    expect(list.stdout).toMatch(/request-telemetry\s+BACKWARD\*\s+1,2\s+1,2/);
    expect(list.stdout).toMatch(/deploy-events\s+FULL\s+1\s+1/);

    const show = await platform('show', 'request-telemetry', '1', '--json');
    expect(show.code).toBe(0);
    const view = JSON.parse(show.stdout) as { version: number; fingerprint: string; schema: unknown; source: string };
    expect(view).toMatchObject({ version: 1, source: 'registry' });
    expect(view.fingerprint).toBe(fingerprint(contractJsonSchema(requestTelemetryV1)));
    expect(view.schema).toEqual(contractJsonSchema(requestTelemetryV1));

    const human = await platform('show', 'request-telemetry');
    expect(human.stdout).toContain('request-telemetry v2  (registry)');
    expect(human.stdout).toContain('"protocol"');

    const missing = await platform('show', 'request-telemetry', '9');
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain('expected one of versions 1, 2, got 9');
  });

  it('check exits non-zero on changes that break the subject mode, naming each field path', async () => {
    const check = await platform('check', '--contracts', breaking);
    expect(check.code).toBe(1);
    expect(check.stdout).toContain('v3  new, BREAKS BACKWARD');
    expect(check.stdout).toMatch(/data\.trace_id\s+optional_to_required/);
    expect(check.stdout).toMatch(/data\.method\s+enum_value_removed/);
    // deploy-events is FULL: a new required field breaks the backward half.
    expect(check.stdout).toMatch(/data\.team\s+required_field_added\s+\[FULL vs v1\]/);
    expect(check.stdout).toContain('FAILED');

    const json = await platform('check', '--contracts', breaking, '--json');
    expect(json.code).toBe(1);
    const report = JSON.parse(json.stdout) as {
      ok: boolean;
      subjects: { subject: string; versions: { version: number; status: string; compatibility?: { changes: { path: string; change: string }[] } }[] }[];
    };
    expect(report.ok).toBe(false);
    const v3 = report.subjects.find((s) => s.subject === 'request-telemetry')!.versions.find((v) => v.version === 3)!;
    expect(v3.compatibility!.changes.map((c) => `${c.path} ${c.change}`).sort()).toEqual([
      'data.method enum_value_removed',
      'data.trace_id optional_to_required',
    ]);
  });

  it('register refuses the breaking versions and writes nothing for them', async () => {
    const register = await platform('register', '--contracts', breaking);
    expect(register.code).toBe(1);
    expect(register.stdout).toContain('REFUSED');
    expect(register.stdout).toContain('data.trace_id');
    expect(await registryRows()).toHaveLength(3);
  });

  it('a registered version edited in place fails the gate; the registry refuses a different schema under it', async () => {
    const check = await platform('check', '--contracts', edited);
    expect(check.code).toBe(1);
    expect(check.stdout).toContain('v1  CHANGED after registration');

    const registry = createSchemaRegistry({ warehouse, actor: 'test' });
    const other = contractJsonSchema(requestTelemetryV1.extend({ extra: requestTelemetryV1.shape.tenant_id.optional() }));
    const outcome = await registry.register({ subject: 'request-telemetry', version: 1, schema: other });
    expect(outcome).toMatchObject({ status: 'conflict', version: 1 });
    // The registry's own check: v3 requiring a field v2 writers may omit breaks BACKWARD.
    const v3 = contractJsonSchema(requestTelemetryV1.extend({ trace_id: requestTelemetryV1.shape.tenant_id }));
    const verdict = await registry.check({ subject: 'request-telemetry', version: 3, schema: v3 });
    expect(verdict).toMatchObject({ compatible: false, mode: 'BACKWARD', checkedAgainst: [2] });
    expect(verdict.changes.map((c) => `${c.path} ${c.change}`)).toContain('data.trace_id optional_to_required');
    const gap = await registry.register({ subject: 'request-telemetry', version: 5, schema: other });
    expect(gap).toMatchObject({ status: 'out_of_order', expected: 3 });
    expect(await registryRows()).toHaveLength(3);
  });

  it('racing registrations: the same schema lands once (deduplication token), different schemas cannot both win', async () => {
    const registry = createSchemaRegistry({ warehouse, actor: 'race' });
    const a = contractJsonSchema(requestTelemetryV1);
    const b = contractJsonSchema(requestTelemetryV1.extend({ note: requestTelemetryV1.shape.tenant_id.optional() }));
    const same = await Promise.all([1, 2, 3].map(() => registry.register({ subject: 'race-same', version: 1, schema: a })));
    expect(same.every((o) => o.status === 'registered' || o.status === 'unchanged')).toBe(true);
    const [count] = await (
      await warehouse.query({ query: "SELECT count() AS n FROM schema_registry WHERE subject = 'race-same'", format: 'JSONEachRow' })
    ).json<{ n: string }>();
    expect(Number(count!.n)).toBe(1);

    const racing = await Promise.all([a, b].map((schema) => registry.register({ subject: 'race-diff', version: 1, schema })));
    const winners = racing.filter((o) => o.status === 'registered');
    expect(winners).toHaveLength(1);
    expect(racing.filter((o) => o.status === 'conflict')).toHaveLength(1);
    expect((await registry.getVersion('race-diff', 1)).fingerprint).toBe(winners[0]!.status === 'registered' ? winners[0]!.fingerprint : '');

    // Subjects the registry has and the working tree lacks fail the full-tree gate.
    const gate = await platform('check');
    expect(gate.code).toBe(1);
    expect(gate.stdout).toContain('race-same  REMOVED');
  });

  it('the mode decides: NONE and FORWARD accept v3, FULL refuses it', async () => {
    expect((await platform('mode', 'request-telemetry')).stdout.trim()).toBe('request-telemetry: BACKWARD (default)');
    const set = await platform('mode', 'request-telemetry', 'none');
    expect(set.code).toBe(0);
    expect(set.stdout.trim()).toBe('request-telemetry: BACKWARD -> NONE');
    const relaxed = await platform('check', 'request-telemetry', '--contracts', breaking);
    expect(relaxed.code).toBe(0);

    await platform('mode', 'request-telemetry', 'FORWARD');
    // v3 only narrows what producers may write, so readers still on v2 read it: FORWARD holds.
    const forward = await platform('check', 'request-telemetry', '--contracts', breaking);
    expect(forward.code).toBe(0);
    await platform('mode', 'request-telemetry', 'FULL');
    const full = await platform('check', 'request-telemetry', '--contracts', breaking);
    expect(full.code).toBe(1);
    expect(full.stdout).toMatch(/data\.trace_id\s+optional_to_required\s+\[FULL vs v2\]/);

    const bad = await platform('mode', 'request-telemetry', 'SIDEWAYS');
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('expected one of BACKWARD');
    await platform('mode', 'request-telemetry', 'BACKWARD');
  });

  it('export writes data and event JSON Schemas for every registered version', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'schemas-export-'));
    try {
      const run = await platform('export', '--out', dir);
      expect(run.code).toBe(0);
      const index = JSON.parse(await readFile(join(dir, 'index.json'), 'utf8')) as { subject: string; version: number; data: string; event: string | null }[];
      // Subjects only the registry knows (from the race test) export their data schema alone.
      expect(index.map((i) => `${i.subject}@${i.version}:${i.event === null ? 'data' : 'data+event'}`).sort()).toEqual([
        'deploy-events@1:data+event',
        'race-diff@1:data',
        'race-same@1:data',
        'request-telemetry@1:data+event',
        'request-telemetry@2:data+event',
      ]);
      const data = JSON.parse(await readFile(join(dir, 'request-telemetry/v1.data.schema.json'), 'utf8')) as Record<string, unknown>;
      expect(data).toMatchObject({ $id: 'request-telemetry/v1.data', additionalProperties: false });
      const event = JSON.parse(await readFile(join(dir, 'request-telemetry/v2.event.schema.json'), 'utf8')) as {
        properties: Record<string, { const?: unknown }>;
        required: string[];
      };
      expect(event.properties.subject!.const).toBe('request-telemetry');
      expect(event.properties.version!.const).toBe(2);
      expect(event.required).toContain('data');
      // Every exported file compiles in a strict validator (zod's own format names, such as
      // "starts_with", made ajv refuse the file), and still enforces the rule through its pattern.
      const ajv = new Ajv2020({ strict: true, strictRequired: false, strictTypes: false, allErrors: true });
      addFormats.default(ajv);
      for (const file of index.flatMap((entry) => [entry.data, entry.event].filter((f): f is string => f !== null))) {
        const schema = JSON.parse(await readFile(join(dir, file), 'utf8')) as object;
        expect(() => ajv.compile(schema), file).not.toThrow();
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
