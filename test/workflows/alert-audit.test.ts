/**
 * The audit activities on the shared ClickHouse (own database): a replayed batch lands once (the
 * insert_deduplication_token, not only the ReplacingMergeTree merge), silences apply in their
 * window and end early on request, and open incidents inhibit by rule while resolved ones do not.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAlertAuditActivities, createSilence, expireSilence, listSilences } from '../../activities/alerting/alert-audit.js';
import { migrate } from '../../infra/clickhouse/migrate.js';
import type { AuditIncident, TimelineEntry } from '../../schemas/alerting/alert-incident.js';
import { createWarehouse } from '../../workers/connections.js';
import { stackEndpoints, testConfig, uniqueId } from '../support/stack.js';

const config = testConfig();
const database = uniqueId('t_alertaudit');
let warehouse: ReturnType<typeof createWarehouse>;
let admin: ReturnType<typeof createWarehouse>;

beforeAll(async () => {
  admin = createWarehouse(config, stackEndpoints(), 'default');
  warehouse = createWarehouse(config, stackEndpoints(), database);
  await migrate(warehouse, database, { admin });
});

afterAll(async () => {
  await admin.command({ query: 'DROP DATABASE IF EXISTS {db:Identifier}', query_params: { db: database } });
  await Promise.all([admin.close(), warehouse.close()]);
});

function incident(id: string, severity: string, labels: Record<string, string>): AuditIncident {
  return { incidentId: `${id}/run1`, workflowId: id, fingerprint: id.slice(6), detector: 'errors', severity, summary: 's', labels, pipeline: labels.pipeline ?? '', routeReceiver: 'team', policy: 'critical', configVersion: 1 };
}

function entry(seq: number, type: TimelineEntry['type'], status: TimelineEntry['status'], at: string): TimelineEntry {
  return { seq, at, type, status, level: 0, by: 'test', note: '' };
}

const rules = [{ sourceMatchers: ['severity=critical'], targetMatchers: ['severity=warning'], equal: ['pipeline'] }];

describe('alert audit activities', () => {
  it('a replayed batch is stored once', async () => {
    const audit = createAlertAuditActivities({ warehouse });
    const inc = incident('alert-00000000000000a1', 'critical', { pipeline: 'p1' });
    const events = [entry(1, 'opened', 'firing', '2026-01-01T10:00:00.000Z'), entry(2, 'acknowledged', 'acknowledged', '2026-01-01T10:05:00.123Z')];
    await audit.recordAlertEvents({ incident: inc, events });
    await audit.recordAlertEvents({ incident: inc, events });
    const rows = await (
      await warehouse.query({ query: 'SELECT seq, event_type, toUnixTimestamp64Milli(event_time) AS t FROM alert_events WHERE incident_id = {id:String} ORDER BY seq', query_params: { id: inc.incidentId }, format: 'JSONEachRow' })
    ).json<{ seq: number; event_type: string; t: string | number }>();
    expect(rows.map((r) => [r.seq, r.event_type, Number(r.t)])).toEqual([
      [1, 'opened', Date.parse('2026-01-01T10:00:00.000Z')],
      [2, 'acknowledged', Date.parse('2026-01-01T10:05:00.123Z')],
    ]);
  });

  it('silences apply within their window and can be ended early', async () => {
    const audit = createAlertAuditActivities({ warehouse });
    const at = Date.parse('2026-03-01T12:00:00Z');
    const silence = await createSilence(warehouse, { matchers: ['service=api', 'severity=~"warning|critical"'], startsAt: '2026-03-01T11:00:00Z', endsAt: '2026-03-01T13:00:00Z', createdBy: 'ann', comment: 'deploy' });
    const check = (labels: Record<string, string>, atMs: number, severity = 'warning') =>
      audit.checkSuppression({ incidentId: 'x/1', detector: 'latency', severity, labels, atMs, inhibitRules: [] });
    expect((await check({ service: 'api' }, at)).silencedBy).toEqual([silence.id]);
    expect((await check({ service: 'api' }, at, 'page')).silencedBy).toEqual([]);
    expect((await check({ service: 'web' }, at)).silencedBy).toEqual([]);
    expect((await check({ service: 'api' }, Date.parse('2026-03-01T13:00:00Z'))).silencedBy).toEqual([]);
    expect((await listSilences(warehouse, at)).map((s) => s.id)).toContain(silence.id);
    expect(await expireSilence(warehouse, silence.id, at)).toBe(true);
    expect((await check({ service: 'api' }, at + 1)).silencedBy).toEqual([]);
    expect(await expireSilence(warehouse, 'no-such-silence', at)).toBe(false);
  });

  it('an open critical incident inhibits warnings with the same pipeline; a resolved one does not', async () => {
    const audit = createAlertAuditActivities({ warehouse });
    const open = incident('alert-00000000000000b1', 'critical', { pipeline: 'p7' });
    const closed = incident('alert-00000000000000b2', 'critical', { pipeline: 'p8' });
    await audit.recordAlertEvents({ incident: open, events: [entry(1, 'opened', 'firing', '2026-04-01T10:00:00Z')] });
    await audit.recordAlertEvents({ incident: closed, events: [entry(1, 'opened', 'firing', '2026-04-01T10:00:00Z'), entry(2, 'resolved', 'resolved', '2026-04-01T10:10:00Z')] });
    const at = Date.parse('2026-04-01T10:20:00Z');
    const check = (pipeline: string, severity = 'warning') =>
      audit.checkSuppression({ incidentId: 'alert-00000000000000c1/run1', detector: 'latency', severity, labels: { pipeline }, atMs: at, inhibitRules: rules });
    expect((await check('p7')).inhibitedBy).toEqual([open.workflowId]);
    expect((await check('p8')).inhibitedBy).toEqual([]);
    expect((await check('p7', 'critical')).inhibitedBy).toEqual([]);
    // An incident never inhibits itself.
    expect((await audit.checkSuppression({ incidentId: open.incidentId, detector: 'errors', severity: 'warning', labels: { pipeline: 'p7' }, atMs: at, inhibitRules: rules })).inhibitedBy).toEqual([]);
  });
});
