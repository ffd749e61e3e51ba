/**
 * Shared building blocks of the Grafana dashboards: the ClickHouse query type (the foundation SDK
 * has none for the official `grafana-clickhouse-datasource` plugin), panel factories that wire
 * every panel to the `datasource` variable, the template variables, and the final step that gives
 * panels unique ids. The dashboards themselves are one file each next to this one.
 */
import type { Builder, Dataquery } from '@grafana/grafana-foundation-sdk/cog';
import { BigValueGraphMode, ReduceDataOptionsBuilder, type DataSourceRef } from '@grafana/grafana-foundation-sdk/common';
import {
  DashboardLinkBuilder,
  DashboardLinkType,
  DatasourceVariableBuilder,
  QueryVariableBuilder,
  VariableRefresh,
  VariableSort,
  type Dashboard,
  type DashboardBuilder,
  type Panel,
  type RowPanel,
} from '@grafana/grafana-foundation-sdk/dashboard';
import { PanelBuilder as StatPanelBuilder } from '@grafana/grafana-foundation-sdk/stat';
import { PanelBuilder as TablePanelBuilder } from '@grafana/grafana-foundation-sdk/table';
import { PanelBuilder as TimeseriesPanelBuilder } from '@grafana/grafana-foundation-sdk/timeseries';
import { DataqueryBuilder as PromQueryBuilder } from '@grafana/grafana-foundation-sdk/prometheus';

/** Plugin id of the official ClickHouse datasource. */
export const DATASOURCE_TYPE = 'grafana-clickhouse-datasource';

/** Uid of the provisioned datasource (infra/grafana/provisioning), the `datasource` variable's default. */
export const DEFAULT_DATASOURCE_UID = 'streamwarden-clickhouse';

/**
 * Every panel and query points at the `datasource` variable, so the dashboards also work when
 * imported into a Grafana whose ClickHouse datasource has another uid.
 */
export const datasourceRef: DataSourceRef = { type: DATASOURCE_TYPE, uid: '${datasource}' };

/** How the plugin shapes a result: `time_series` pivots long rows (time, label, value) into series. */
export type QueryFormat = 'time_series' | 'table';

/**
 * A query of the ClickHouse plugin in SQL-editor mode, as it is stored in dashboard JSON. `format`
 * is the backend's numeric option (0 = time series, 1 = table) and `queryType` the editor's view.
 */
export interface ClickHouseQuery extends Dataquery {
  refId: string;
  datasource: DataSourceRef;
  editorType: 'sql';
  queryType: 'timeSeries' | 'table';
  format: 0 | 1;
  rawSql: string;
}

/** Builds a {@link ClickHouseQuery}; implements the SDK's builder so panels accept it as a target. */
export class ClickHouseQueryBuilder implements Builder<Dataquery> {
  private readonly query: ClickHouseQuery;

  constructor(rawSql: string, format: QueryFormat = 'table', refId = 'A') {
    this.query = {
      refId,
      datasource: datasourceRef,
      editorType: 'sql',
      queryType: format === 'time_series' ? 'timeSeries' : 'table',
      format: format === 'time_series' ? 0 : 1,
      rawSql: dedent(rawSql),
      // The SDK's marker for dataquery variants; a function, so it never reaches the JSON.
      _implementsDataqueryVariant: () => undefined,
    };
  }

  /** The query object. */
  build(): ClickHouseQuery {
    return this.query;
  }
}

/** Strips the common indentation of a template literal so the SQL reads well in Grafana's editor. */
export function dedent(text: string): string {
  const lines = text.replace(/^\n/, '').replace(/\s+$/, '').split('\n');
  const indent = Math.min(...lines.filter((l) => l.trim() !== '').map((l) => /^ */.exec(l)![0].length));
  return lines.map((l) => l.slice(indent)).join('\n');
}

/** Options shared by the panel factories. */
export interface PanelOptions {
  title: string;
  description: string;
  sql: string;
  /** Grafana unit id, e.g. `short`, `ms`, `percentunit`. @default "short" */
  unit?: string;
  /** Width in grid columns (24 = full width). @default 12 */
  width?: number;
  /** Height in grid rows. @default 8 */
  height?: number;
}

/**
 * Time series panel. Queries return long rows `(time, <label columns>, <value columns>)` and use
 * `$__timeInterval(col)` for the bucket; the minimum interval of one minute keeps buckets aligned
 * with the one-minute rollups and makes `$__interval_s` usable as the per-minute divisor.
 */
export function timeseriesPanel(options: PanelOptions): TimeseriesPanelBuilder {
  return new TimeseriesPanelBuilder()
    .title(options.title)
    .description(options.description)
    .datasource(datasourceRef)
    .withTarget(new ClickHouseQueryBuilder(options.sql, 'time_series'))
    .interval('1m')
    .unit(options.unit ?? 'short')
    .span(options.width ?? 12)
    .height(options.height ?? 8)
    .fillOpacity(10)
    .lineWidth(1)
    .spanNulls(false);
}

/**
 * Single-value panel; the query returns one row. Shows that row's value as is (an empty `calcs`
 * would leave the reduction to Grafana's version-dependent default).
 */
export function statPanel(options: PanelOptions): StatPanelBuilder {
  return new StatPanelBuilder()
    .title(options.title)
    .description(options.description)
    .datasource(datasourceRef)
    .withTarget(new ClickHouseQueryBuilder(options.sql, 'table'))
    .reduceOptions(new ReduceDataOptionsBuilder().calcs(['lastNotNull']).values(false).fields(''))
    .graphMode(BigValueGraphMode.None)
    .unit(options.unit ?? 'short')
    .span(options.width ?? 6)
    .height(options.height ?? 4);
}

/** Table panel. */
export function tablePanel(options: PanelOptions): TablePanelBuilder {
  return new TablePanelBuilder()
    .title(options.title)
    .description(options.description)
    .datasource(datasourceRef)
    .withTarget(new ClickHouseQueryBuilder(options.sql, 'table'))
    .unit(options.unit ?? 'short')
    .span(options.width ?? 12)
    .height(options.height ?? 8);
}

/** The `datasource` variable: any ClickHouse datasource, the provisioned one by default. */
export function datasourceVariable(): DatasourceVariableBuilder {
  return new DatasourceVariableBuilder('datasource')
    .label('ClickHouse')
    .type(DATASOURCE_TYPE)
    .current({ selected: true, text: DEFAULT_DATASOURCE_UID, value: DEFAULT_DATASOURCE_UID });
}

/**
 * A multi-value variable filled by a ClickHouse query. Queries use it as
 * `col IN (${name:singlequote})`; "All" expands to every value the query returned.
 */
export function queryVariable(name: string, label: string, rawSql: string): QueryVariableBuilder {
  const sql = dedent(rawSql);
  return new QueryVariableBuilder(name)
    .label(label)
    .datasource(datasourceRef)
    .query({ refId: `var-${name}`, queryType: 'sql', rawSql: sql })
    .definition(sql)
    .refresh(VariableRefresh.OnTimeRangeChanged)
    .sort(VariableSort.AlphabeticalAsc)
    .multi(true)
    .includeAll(true)
    .current({ selected: true, text: ['All'], value: ['$__all'] });
}

/** Pipelines that landed at least one batch (lineage), the filter of every dashboard. */
export function pipelineVariable(): QueryVariableBuilder {
  return queryVariable('pipeline', 'Pipeline', 'SELECT DISTINCT pipeline FROM lineage_batches ORDER BY pipeline');
}

/** Tag on every dashboard of the platform; the cross-links below list the dashboards by it. */
export const DASHBOARD_TAG = 'streamwarden';

/**
 * A drop-down of the platform's other dashboards that keeps the time range and the variables
 * ($pipeline, $datasource), so moving from pipeline health to the alerts stays in context.
 */
export function dashboardLinks(): DashboardLinkBuilder {
  return new DashboardLinkBuilder('streamwarden')
    .type(DashboardLinkType.Dashboards)
    .tags([DASHBOARD_TAG])
    .asDropdown(true)
    .keepTime(true)
    .includeVars(true)
    .targetBlank(false)
    .icon('external link')
    .tooltip('')
    .url('');
}

/** A built dashboard and the file name it is written to. */
export interface DashboardFile {
  /** File name under the output folder, e.g. `pipeline-health.json`. */
  file: string;
  dashboard: Dashboard;
}

/**
 * Builds the dashboard and numbers every panel (rows included) from 1, so ids are unique whatever
 * the factories did. Grafana needs unique ids for links, `viewPanel` and library panels.
 */
export function finishDashboard(builder: DashboardBuilder): Dashboard {
  const dashboard = builder.build();
  let id = 1;
  for (const panel of dashboard.panels ?? []) {
    panel.id = id++;
    for (const nested of (panel as RowPanel).panels ?? []) nested.id = id++;
  }
  return dashboard;
}

/** Every panel of a dashboard, with the panels inside collapsed rows; rows themselves excluded. */
export function allPanels(dashboard: Dashboard): Panel[] {
  const out: Panel[] = [];
  for (const panel of dashboard.panels ?? []) {
    if (panel.type === 'row') out.push(...((panel as RowPanel).panels ?? []));
    else out.push(panel as Panel);
  }
  return out;
}

/** Plugin id of Grafana's built-in Prometheus datasource. */
export const PROMETHEUS_DATASOURCE_TYPE = 'prometheus';

/** Uid of the provisioned Prometheus datasource (infra/grafana/provisioning/datasources/prometheus.yaml). */
export const DEFAULT_PROMETHEUS_UID = 'streamwarden-prometheus';

/** Prometheus panels point at the `prometheus` variable, like ClickHouse panels at `datasource`. */
export const prometheusRef: DataSourceRef = { type: PROMETHEUS_DATASOURCE_TYPE, uid: '${prometheus}' };

/** The `prometheus` variable: any Prometheus datasource, the provisioned one by default. */
export function prometheusVariable(): DatasourceVariableBuilder {
  return new DatasourceVariableBuilder('prometheus')
    .label('Prometheus')
    .type(PROMETHEUS_DATASOURCE_TYPE)
    .current({ selected: true, text: DEFAULT_PROMETHEUS_UID, value: DEFAULT_PROMETHEUS_UID });
}

/** Options of {@link promTimeseriesPanel}: one PromQL expression per target, with its legend. */
export interface PromPanelOptions {
  title: string;
  description: string;
  targets: { expr: string; legend: string }[];
  /** @default "short" */
  unit?: string;
  /** @default 12 */
  width?: number;
  /** @default 8 */
  height?: number;
}

/**
 * Time series panel over the Prometheus datasource. Expressions use `$__rate_interval` for rates
 * and `${pipeline:regex}` for the pipeline filter (the same variable as the ClickHouse panels).
 */
export function promTimeseriesPanel(options: PromPanelOptions): TimeseriesPanelBuilder {
  const panel = new TimeseriesPanelBuilder()
    .title(options.title)
    .description(options.description)
    .datasource(prometheusRef)
    .unit(options.unit ?? 'short')
    .span(options.width ?? 12)
    .height(options.height ?? 8)
    .fillOpacity(10)
    .lineWidth(1);
  options.targets.forEach((t, i) => {
    panel.withTarget(new PromQueryBuilder().refId(String.fromCharCode(65 + i)).datasource(prometheusRef).expr(t.expr).legendFormat(t.legend).range());
  });
  return panel;
}

/** Panels on the ClickHouse datasource (SQL targets). */
export function clickHousePanels(dashboard: Dashboard): Panel[] {
  return allPanels(dashboard).filter((p) => (p.datasource as DataSourceRef | undefined)?.type === DATASOURCE_TYPE);
}

/** Panels on the Prometheus datasource (PromQL targets). */
export function prometheusPanels(dashboard: Dashboard): Panel[] {
  return allPanels(dashboard).filter((p) => (p.datasource as DataSourceRef | undefined)?.type === PROMETHEUS_DATASOURCE_TYPE);
}
