/**
 * `platform processors` end to end against the shared ClickHouse, as a child process with its own
 * database: register the working tree, list/show from the registry, refuse a version whose outputs
 * retype or drop a column (with the field path) and an edited published version, diff two versions.
 */
import { execFile } from 'node:child_process';
import type { ClickHouseClient } from '@clickhouse/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createWarehouse } from '../../workers/connections.js';
import { stackEndpoints, testConfig, uniqueId } from '../support/stack.js';

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

const database = uniqueId('t');

function platform(...args: string[]): Promise<Run> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      ['--import', 'tsx', 'workers/platform.ts', 'processors', ...args],
      { env: { ...process.env, CLICKHOUSE_DATABASE: database, CLICKHOUSE_URL: stackEndpoints().clickhouseUrl }, timeout: 120_000 },
      (error, stdout, stderr) => resolve({ code: error ? (typeof error.code === 'number' ? error.code : 1) : 0, stdout, stderr }),
    );
  });
}

let warehouse: ClickHouseClient;

describe('platform processors', () => {
  beforeAll(() => {
    warehouse = createWarehouse(testConfig(), stackEndpoints(), database);
  });
  afterAll(async () => {
    await warehouse.command({ query: 'DROP DATABASE IF EXISTS {db:Identifier}', query_params: { db: database } });
    await warehouse.close();
  });

  it('registers the working tree, idempotently, and lists and shows it from processor_registry', async () => {
    const first = await platform('register');
    expect(first.stdout).toContain('Registered request-enriched@1, request-enriched@2, request-enriched@3.');
    expect(first.code).toBe(0);
    expect((await platform('register')).stdout).toContain('Nothing new to register.');
    const result = await warehouse.query({ query: 'SELECT name, version, registered_by, output_schemas FROM processor_registry ORDER BY version', format: 'JSONEachRow' });
    const rows = await result.json<{ name: string; version: number; registered_by: string; output_schemas: string }>();
    expect(rows.map((r) => [r.name, Number(r.version)])).toEqual([['request-enriched', 1], ['request-enriched', 2], ['request-enriched', 3]]);
    expect(Object.keys(JSON.parse(rows[1]!.output_schemas) as object)).toEqual(['errors', 'requests']);
    const list = JSON.parse((await platform('list', '--json')).stdout) as { name: string; registered: number[]; tree: number[] }[];
    expect(list).toContainEqual(expect.objectContaining({ name: 'request-enriched', registered: [1, 2, 3], tree: [1, 2, 3] }));
    const show = await platform('show', 'request-enriched', '2');
    expect(show.stdout).toMatch(/protocol\s+LowCardinality\(String\)/);
    expect(show.stdout).toContain('registered:');
    // NAME@VERSION, as `pipeline start --processor` takes it, names the same version.
    expect((await platform('show', 'request-enriched@2')).stdout).toBe(show.stdout);
    const check = await platform('check');
    expect(check.code).toBe(0);
    expect(check.stdout).toContain('OK:');
  });

  it('check refuses a version whose outputs retype or drop a column, naming the field path', async () => {
    const run = await platform('check', '--catalogue', 'test/fixtures/processors/breaking.ts');
    expect(run.code).toBe(1);
    expect(run.stdout).toContain('v4  new, REFUSED');
    expect(run.stdout).toContain('requests.status  column_retyped');
    expect(run.stdout).toContain('requests.region  column_removed');
    const json = JSON.parse((await platform('check', '--json', '--catalogue', 'test/fixtures/processors/breaking.ts')).stdout) as { ok: boolean };
    expect(json.ok).toBe(false);
  });

  it('check refuses an edited published version', async () => {
    const run = await platform('check', '--catalogue', 'test/fixtures/processors/edited.ts');
    expect(run.code).toBe(1);
    expect(run.stdout).toMatch(/v1 {2}CHANGED after publication[\s\S]*restore it and add v2 instead/);
  });

  it('diff shows the columns a version adds and its implementation', async () => {
    const run = await platform('diff', 'request-enriched', '1', '2', '--json');
    expect(run.code).toBe(0);
    const d = JSON.parse(run.stdout) as { addedColumns: Record<string, string[]>; implementation: { from: string; to: string }; refusals: unknown[] };
    expect(d.addedColumns.request_enriched_requests).toEqual(['protocol LowCardinality(String)', 'upstream_ms Nullable(Float64)']);
    expect(d.implementation).toEqual({ from: 'typescript', to: 'wasm' });
    expect(d.refusals).toEqual([]);
    // NAME@FROM NAME@TO, as pipeline start --processor writes versions, is the same diff.
    expect((await platform('diff', 'request-enriched@1', 'request-enriched@2', '--json')).stdout).toBe(run.stdout);
    const mixed = await platform('diff', 'request-enriched@1', 'other@2');
    expect(mixed.code).toBe(2);
    expect(mixed.stderr).toContain('diff: expected NAME FROM TO, or NAME@FROM NAME@TO of one processor');
  });
});
