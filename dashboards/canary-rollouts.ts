/**
 * Canary rollouts: every judgement with its per-metric report (test, samples, p-value, effect,
 * tolerance, verdict), outcomes over time, and the rollouts' audit trail. Reads `canary_judgements`
 * (migration 071; one row per judgement and metric, each repeating the judgement's outcome and
 * score) and `rollout_events` (072), both with FINAL because a retried insert may repeat rows
 * until their keys merge.
 */
import { DashboardBuilder, DashboardCursorSync, RowBuilder, type Dashboard } from '@grafana/grafana-foundation-sdk/dashboard';
import { DASHBOARD_TAG, dashboardLinks, datasourceVariable, finishDashboard, queryVariable, statPanel, tablePanel, timeseriesPanel } from './panels.js';

/** Uid of the canary rollouts dashboard. */
export const CANARY_ROLLOUTS_UID = 'streamwarden-canary-rollouts';

const pipelineFilter = 'pipeline IN (${rollout_pipeline:singlequote})';

/** Builds the canary rollouts dashboard. */
export function canaryRolloutsDashboard(): Dashboard {
  const builder = new DashboardBuilder('streamwarden / Canary rollouts')
    .uid(CANARY_ROLLOUTS_UID)
    .description('Judgements of canary rollouts (Mann–Whitney U, Hodges–Lehmann, Fisher exact) per metric, and each rollout\'s step changes.')
    .tags([DASHBOARD_TAG, 'rollouts'])
    .link(dashboardLinks())
    .time({ from: 'now-7d', to: 'now' })
    .refresh('1m')
    .tooltip(DashboardCursorSync.Crosshair)
    .readonly()
    .withVariable(datasourceVariable())
    .withVariable(queryVariable('rollout_pipeline', 'Pipeline', 'SELECT DISTINCT pipeline FROM canary_judgements ORDER BY pipeline'))

    .withRow(new RowBuilder('Judgements'))
    .withPanel(
      statPanel({
        title: 'Judgements failed',
        description: 'Judgements in the time range whose outcome was fail (each rolled its rollout back).',
        sql: `
          SELECT uniqExactIf(judgement_id, outcome = 'fail') AS failed
          FROM canary_judgements FINAL
          WHERE $__timeFilter(judged_at) AND ${pipelineFilter}`,
      }),
    )
    .withPanel(
      statPanel({
        title: 'Judgements waiting for a person',
        description: 'Judgements in the time range that were marginal or inconclusive (the rollout paused and asked a person).',
        sql: `
          SELECT uniqExactIf(judgement_id, outcome IN ('marginal', 'inconclusive')) AS waiting
          FROM canary_judgements FINAL
          WHERE $__timeFilter(judged_at) AND ${pipelineFilter}`,
      }),
    )
    .withPanel(
      timeseriesPanel({
        title: 'Judgement outcomes',
        description: 'Judgements per interval by outcome.',
        sql: `
          SELECT $__timeInterval(judged_at) AS time, outcome, uniqExact(judgement_id) AS judgements
          FROM canary_judgements FINAL
          WHERE $__timeFilter(judged_at) AND ${pipelineFilter}
          GROUP BY time, outcome
          ORDER BY time`,
      }),
    )
    .withPanel(
      tablePanel({
        title: 'Judgement reports',
        description: 'Per judgement and metric, newest first: the test, samples per side, p-value, effect (Hodges–Lehmann shift or rate difference) against its tolerance, verdict and reason. `platform rollouts show <rollout>` prints the same.',
        width: 24,
        height: 12,
        sql: `
          SELECT judged_at, rollout_id, step_number AS step, outcome, score, metric, critical, test, baseline_n, canary_n, p_value, effect, tolerance, verdict, reason
          FROM canary_judgements FINAL
          WHERE $__timeFilter(judged_at) AND ${pipelineFilter}
          ORDER BY judged_at DESC, rollout_id, metric`,
      }),
    )

    .withRow(new RowBuilder('Audit trail'))
    .withPanel(
      tablePanel({
        title: 'Rollout events',
        description: 'Every step change, routing change (mode, weight, epoch), judgement, pause/resume/promote/abort with who and why, and reminder.',
        width: 24,
        height: 12,
        sql: `
          SELECT event_time, rollout_id, seq, event_type, step_number AS step, status, routing_mode, routing_weight, routing_epoch, actor, reason
          FROM rollout_events FINAL
          WHERE $__timeFilter(event_time) AND ${pipelineFilter}
          ORDER BY event_time DESC, rollout_id, seq DESC`,
      }),
    );
  return finishDashboard(builder);
}
