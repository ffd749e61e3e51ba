/**
 * The dashboards as Grafana will load them: plain JSON, unique panel ids, every panel on the
 * ClickHouse datasource with SQL, every template variable it references defined (before it is
 * used), only the macros the SQL tests know how to expand, and a layout without overlaps.
 */
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Dashboard, Panel, RowPanel, VariableModel } from '@grafana/grafana-foundation-sdk/dashboard';
import { afterAll, describe, expect, it } from 'vitest';
import { buildDashboards, writeDashboards } from '../../dashboards/build.js';
import { allPanels, clickHousePanels, DASHBOARD_TAG, DATASOURCE_TYPE, DEFAULT_DATASOURCE_UID, DEFAULT_PROMETHEUS_UID, dedent, PROMETHEUS_DATASOURCE_TYPE, prometheusPanels, type ClickHouseQuery } from '../../dashboards/panels.js';
import { expandGrafanaSql, referencedVariables } from '../support/grafana-sql.js';

const built = buildDashboards();
// What Grafana reads is the JSON, not the objects: everything below checks the round-tripped form.
const dashboards = built.map(({ file, dashboard }) => ({ file, dashboard: JSON.parse(JSON.stringify(dashboard)) as Dashboard }));

function variables(dashboard: Dashboard): VariableModel[] {
  return dashboard.templating.list ?? [];
}

function queriesOf(panel: Panel): ClickHouseQuery[] {
  return (panel.targets ?? []) as unknown as ClickHouseQuery[];
}

function variableSql(variable: VariableModel): string {
  const query = variable.query;
  if (typeof query === 'string') return query;
  return typeof query?.rawSql === 'string' ? query.rawSql : '';
}

const tmpDirs: string[] = [];
afterAll(async () => {
  for (const dir of tmpDirs) await rm(dir, { recursive: true, force: true });
});

describe('dashboards', () => {
  it('builds the five dashboards with distinct files, uids and titles', () => {
    expect(dashboards.map((d) => d.file).sort()).toEqual(['alerts.json', 'canary-rollouts.json', 'operations.json', 'pipeline-health.json', 'service-telemetry.json']);
    const uids = dashboards.map((d) => d.dashboard.uid);
    expect(new Set(uids).size).toBe(uids.length);
    for (const { file, dashboard } of dashboards) {
      expect(dashboard.uid, file).toMatch(/^[A-Za-z0-9_-]{8,40}$/);
      expect(dashboard.title, file).toMatch(/^streamwarden \/ /);
      expect(dashboard.schemaVersion, file).toBeGreaterThan(30);
      expect(allPanels(dashboard).length, file).toBeGreaterThanOrEqual(5);
    }
  });

  it('links each dashboard to the others by their common tag, keeping time range and variables', () => {
    for (const { file, dashboard } of dashboards) {
      expect(dashboard.tags, file).toContain(DASHBOARD_TAG);
      expect(dashboard.links, file).toEqual([
        expect.objectContaining({ type: 'dashboards', tags: [DASHBOARD_TAG], keepTime: true, includeVars: true, asDropdown: true }),
      ]);
    }
  });

  it('reduces stat panels explicitly to the single value their query returns', () => {
    for (const { file, dashboard } of dashboards) {
      for (const panel of allPanels(dashboard).filter((p) => p.type === 'stat')) {
        expect((panel.options as { reduceOptions: { calcs: string[] } }).reduceOptions.calcs, `${file} / ${panel.title}`).toEqual(['lastNotNull']);
      }
    }
  });

  it('writes plain JSON files that parse back to the built dashboards, and removes stale ones', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'dashboards-'));
    tmpDirs.push(dir);
    await writeFile(join(dir, 'renamed-long-ago.json'), '{}');
    const written = await writeDashboards(dir);
    expect(written).toHaveLength(dashboards.length);
    expect((await readdir(dir)).sort()).toEqual(dashboards.map((d) => d.file).sort());
    for (const { file, dashboard } of dashboards) {
      const parsed = JSON.parse(await readFile(join(dir, file), 'utf8')) as Dashboard;
      expect(parsed).toEqual(dashboard);
    }
  });

  it('gives every panel and row a unique positive id', () => {
    for (const { file, dashboard } of dashboards) {
      const ids: number[] = [];
      for (const panel of dashboard.panels ?? []) {
        ids.push(panel.id!);
        for (const nested of (panel as RowPanel).panels ?? []) ids.push(nested.id!);
      }
      expect(ids.every((id) => Number.isInteger(id) && id > 0), `${file}: ${ids.join(',')}`).toBe(true);
      expect(new Set(ids).size, `${file}: duplicate ids ${ids.join(',')}`).toBe(ids.length);
    }
  });

  it('puts every panel on the ClickHouse datasource with SQL, or on the Prometheus datasource with PromQL', () => {
    for (const { file, dashboard } of dashboards) {
      const prom = prometheusPanels(dashboard);
      expect(clickHousePanels(dashboard).length + prom.length, `${file}: every panel on one of the two`).toBe(allPanels(dashboard).length);
      for (const panel of prom) {
        const where = `${file} / ${panel.title}`;
        expect(panel.datasource, where).toEqual({ type: PROMETHEUS_DATASOURCE_TYPE, uid: '${prometheus}' });
        const targets = (panel.targets ?? []) as unknown as { refId: string; expr: string; datasource: unknown }[];
        expect(targets.length, where).toBeGreaterThan(0);
        expect(new Set(targets.map((t) => t.refId)).size, `${where}: refIds`).toBe(targets.length);
        for (const t of targets) {
          expect(t.datasource, where).toEqual({ type: PROMETHEUS_DATASOURCE_TYPE, uid: '${prometheus}' });
          expect(t.expr.trim().length, where).toBeGreaterThan(10);
        }
        const variable = variables(dashboard).find((v) => v.name === 'prometheus');
        expect(variable?.query, `${file}: $prometheus`).toBe(PROMETHEUS_DATASOURCE_TYPE);
        expect(variable?.current?.value, `${file}: $prometheus`).toBe(DEFAULT_PROMETHEUS_UID);
      }
      for (const panel of clickHousePanels(dashboard)) {
        const where = `${file} / ${panel.title}`;
        expect(panel.datasource, where).toEqual({ type: DATASOURCE_TYPE, uid: '${datasource}' });
        const queries = queriesOf(panel);
        expect(queries.length, where).toBeGreaterThan(0);
        expect(new Set(queries.map((q) => q.refId)).size, `${where}: refIds`).toBe(queries.length);
        for (const query of queries) {
          expect(query.datasource, where).toEqual({ type: DATASOURCE_TYPE, uid: '${datasource}' });
          expect(query.editorType, where).toBe('sql');
          expect(query.rawSql.trim().length, where).toBeGreaterThan(20);
          expect(query.rawSql, `${where}: the datasource's default database applies`).not.toMatch(/\bstreamwarden\./);
          if (panel.type === 'timeseries') {
            expect(query.format, where).toBe(0);
            expect(query.queryType, where).toBe('timeSeries');
            expect(query.rawSql, `${where}: a time column first`).toMatch(/^SELECT\s+\$__timeInterval\([a-z_]+\) AS time,/);
            expect(query.rawSql, `${where}: rows in time order`).toMatch(/ORDER BY time\b/);
          } else {
            expect(query.format, where).toBe(1);
            expect(query.queryType, where).toBe('table');
          }
        }
      }
    }
  });

  it('defines every template variable its SQL references, before it is used', () => {
    for (const { file, dashboard } of dashboards) {
      const list = variables(dashboard);
      const names = list.map((v) => v.name);
      expect(new Set(names).size, file).toBe(names.length);
      const datasource = list.find((v) => v.name === 'datasource');
      expect(datasource?.type, file).toBe('datasource');
      expect(datasource?.query, file).toBe(DATASOURCE_TYPE);
      expect(datasource?.current?.value, file).toBe(DEFAULT_DATASOURCE_UID);

      list.forEach((variable, index) => {
        const earlier = new Set(names.slice(0, index));
        if (variable.type !== 'query') return;
        expect(variable.datasource, `${file}: $${variable.name}`).toEqual({ type: DATASOURCE_TYPE, uid: '${datasource}' });
        expect(variableSql(variable).length, `${file}: $${variable.name} has SQL`).toBeGreaterThan(10);
        expect(earlier.has('datasource'), `${file}: $${variable.name} after $datasource`).toBe(true);
        for (const ref of referencedVariables(variableSql(variable))) {
          expect(earlier.has(ref), `${file}: $${variable.name} uses $${ref}, which must be defined before it`).toBe(true);
        }
      });

      const defined = new Set(names);
      let references = 0;
      for (const panel of clickHousePanels(dashboard)) {
        for (const query of queriesOf(panel)) {
          for (const ref of referencedVariables(query.rawSql)) {
            references++;
            expect(defined.has(ref), `${file} / ${panel.title}: $${ref} is not a variable of the dashboard`).toBe(true);
          }
        }
      }
      expect(references, `${file}: panels filter by the dashboard's variables`).toBeGreaterThan(0);
    }
  });

  it('uses only macros and variable forms that the SQL tests expand', () => {
    const ctx = { from: new Date('2026-01-01T00:00:00Z'), to: new Date('2026-01-01T01:00:00Z'), intervalSeconds: 60 };
    for (const { file, dashboard } of dashboards) {
      const values = Object.fromEntries(variables(dashboard).map((v) => [v.name, ['x']]));
      const sqls = [...clickHousePanels(dashboard).flatMap((p) => queriesOf(p).map((q) => q.rawSql)), ...variables(dashboard).map(variableSql).filter(Boolean)];
      for (const sql of sqls) {
        const { query } = expandGrafanaSql(sql, { ...ctx, variables: values });
        expect(query, file).not.toContain('$');
      }
    }
  });

  it('lays out panels inside the 24-column grid without overlaps', () => {
    for (const { file, dashboard } of dashboards) {
      const boxes = (dashboard.panels ?? []).map((p) => ({ title: p.title, ...p.gridPos! }));
      for (const box of boxes) {
        expect(box.x + box.w, `${file} / ${box.title}`).toBeLessThanOrEqual(24);
        expect(box.w, `${file} / ${box.title}`).toBeGreaterThan(0);
        expect(box.h, `${file} / ${box.title}`).toBeGreaterThan(0);
      }
      for (let i = 0; i < boxes.length; i++) {
        for (let j = i + 1; j < boxes.length; j++) {
          const a = boxes[i]!;
          const b = boxes[j]!;
          const overlap = a.x < b.x + b.w && b.x < a.x + a.w && a.y < b.y + b.h && b.y < a.y + a.h;
          expect(overlap, `${file}: "${a.title}" overlaps "${b.title}"`).toBe(false);
        }
      }
      // Expanded rows keep their panels at the top level, the form Grafana renders.
      for (const row of (dashboard.panels ?? []).filter((p) => p.type === 'row') as RowPanel[]) {
        expect(row.collapsed, `${file} / ${row.title}`).toBe(false);
        expect(row.panels, `${file} / ${row.title}`).toEqual([]);
      }
    }
  });

  it('dedents SQL without touching relative indentation', () => {
    expect(dedent('\n    SELECT 1\n      FROM t\n    WHERE x\n  ')).toBe('SELECT 1\n  FROM t\nWHERE x');
  });
});

describe('expandGrafanaSql', () => {
  const ctx = {
    from: new Date('2026-03-01T10:00:00.250Z'),
    to: new Date('2026-03-01T11:00:00.750Z'),
    intervalSeconds: 120,
    variables: { pipeline: ['a', "o'brien"] },
  };

  it('expands the plugin macros into parameterised SQL with second-precision bounds', () => {
    const { query, params } = expandGrafanaSql(
      'SELECT $__timeInterval(ts) AS time, count() * 60 / $__interval_s FROM t WHERE $__timeFilter(ts) AND p IN (${pipeline:singlequote})',
      ctx,
    );
    expect(query).toBe(
      'SELECT toStartOfInterval(toDateTime(ts), INTERVAL {__interval_s:UInt32} second) AS time, count() * 60 / {__interval_s:UInt32} FROM t ' +
        'WHERE ts >= toDateTime({__from:Int64}) AND ts <= toDateTime({__to:Int64}) AND p IN ({var_pipeline_0:String}, {var_pipeline_1:String})',
    );
    expect(params).toMatchObject({
      __from: Date.parse('2026-03-01T10:00:00Z') / 1000,
      __to: Date.parse('2026-03-01T11:00:00Z') / 1000,
      __interval_s: 120,
      var_pipeline_0: 'a',
      var_pipeline_1: "o'brien",
    });
  });

  it('refuses forms it does not know, so no dashboard SQL goes untested', () => {
    expect(() => expandGrafanaSql('SELECT 1 WHERE p = $pipeline', ctx)).toThrow(/unsupported/);
    expect(() => expandGrafanaSql('SELECT $__conditionalAll(x, $pipeline)', ctx)).toThrow(/unsupported/);
    expect(() => expandGrafanaSql('SELECT ${service:singlequote}', ctx)).toThrow(/service/);
  });

  it('lists referenced variables in every Grafana syntax, macros excluded', () => {
    expect(referencedVariables('$a ${b} ${c:csv} [[d]] $__timeFilter(x) $__interval_s').sort()).toEqual(['a', 'b', 'c', 'd']);
  });
});
