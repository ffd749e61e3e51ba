/**
 * The canary rollout step machine in skipped time, against real judgements (observations in
 * ClickHouse, judged by the real statistics), the real audit table and the real alert workflow:
 * a good version promotes itself; a raised reject rate rolls back at the shadow step; a 5x slower
 * stage and a small shift of an output field roll back at the first weight step; inconclusive and
 * marginal outcomes wait for a person and remind; promote/pause/resume/abort at every step kind;
 * pause durations; continue-as-new keeps the state; a worker restart mid-step changes nothing; one
 * rollout per pipeline; bad input refused naming the field.
 */
import { Client, WorkflowFailedError, WorkflowUpdateFailedError, type WorkflowHandle } from '@temporalio/client';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { rolloutWorkflowId, type RolloutInputJson } from '../../schemas/rollouts/rollout.js';
import { finalRolloutStatuses as finalStatuses, type RolloutState } from '../../schemas/rollouts/rollout-state.js';
import { abortUpdate, pauseUpdate, promoteUpdate, resumeUpdate, stateQuery, type canaryRollout } from '../../workflows/rollouts/canary-rollout.js';
import { describeJudgements, describeRollout, judgementReports } from '../../workers/cli/rollouts.js';
import { uniqueId } from '../support/stack.js';
import { waitFor } from './alert-harness.js';
import { createRolloutHarness, observe, type RolloutHarness, type SideBatch } from './rollout-harness.js';

const minute = 60_000;
let h: RolloutHarness;

/** Deterministic pseudo-random numbers (mulberry32). */
function rng(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
function normals(seed: number, n: number, mean: number, sd: number): number[] {
  const r = rng(seed);
  return Array.from({ length: n }, () => mean + sd * Math.sqrt(-2 * Math.log(1 - r())) * Math.cos(2 * Math.PI * r()));
}
/** A healthy batch: 500 events, 1 reject, 20 processing times around 4 ms. */
const healthy = (seed: number) => (i: number): SideBatch => ({ events: 500, rejects: i % 2, times: normals(seed * 1000 + i, 20, 4, 1), amounts: normals(seed * 7000 + i, 50, 100, 5) });

type Handle = WorkflowHandle<typeof canaryRollout>;

interface Started {
  handle: Handle;
  id: string;
  pipeline: string;
  t0: number;
}

async function start(input: Omit<RolloutInputJson, 'pipeline' | 'version'> & { version?: string; pipeline?: string }): Promise<Started> {
  const pipeline = input.pipeline ?? uniqueId('p').replace(/_/g, '-');
  const version = input.version ?? 'v2';
  // The id the workflow requires: rollout-<pipeline>-<version number> (v2 -> 2).
  const id = rolloutWorkflowId(pipeline, version);
  const t0 = await h.env.currentTimeMs();
  const handle = await h.env.client.workflow.start<typeof canaryRollout>('canaryRollout', {
    workflowId: id,
    taskQueue: h.taskQueue,
    args: [{ ...input, pipeline, version, baselineVersion: 'v1', requestedBy: 'test' }],
  });
  return { handle, id, pipeline, t0 };
}

/**
 * Plays the pipeline: 10 batches of observations for an epoch over [t0 + from, t0 + to). A later
 * feed of the same epoch passes `firstBatch` (10, 20, ...): new batches, not the same ones again.
 */
async function feed(s: Started, epoch: number, fromMin: number, toMin: number, canary: (i: number) => SideBatch, baseline: (i: number) => SideBatch = healthy(epoch), firstBatch = 0): Promise<void> {
  await observe(h.warehouse, { rolloutId: s.id, pipeline: s.pipeline, epoch, fromMs: s.t0 + fromMin * minute, toMs: s.t0 + toMin * minute, baseline, canary, batches: 10, firstBatch });
}

/**
 * Query `state`, each attempt with a 10 s deadline, up to 3 attempts. The Java test server (1.31)
 * can lose a query: one that arrives while a workflow task runs is buffered and, when that task
 * continues the run as new, sent as a query task of the closed run, whose answer the server then
 * refuses ("workflow execution already completed", logged by the worker), so a query without a
 * deadline waited forever (the continue-as-new test's 180 s timeouts). A real server answers or fails.
 */
async function state(s: Started): Promise<RolloutState> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await h.env.connection.withDeadline(Date.now() + 10_000, () => s.handle.query(stateQuery));
    } catch (err) {
      // A query that reaches the test server while a workflow task continues the run as new goes
      // to the closed run: the server either never answers (the deadline) or refuses it ("Failed
      // to query Workflow", seen in CI run 63). Asked again, it reaches the new run.
      if (attempt >= 3 || !(isDeadlineExceeded(err) || isQueryFailed(err))) throw err;
      await new Promise((r) => setTimeout(r, 500));
    }
  }
}
/** Whether a query failed on the server's side (the client's "Failed to query Workflow"), not on the workflow's. */
function isQueryFailed(err: unknown): boolean {
  return err instanceof Error && err.message.startsWith('Failed to query Workflow');
}
/**
 * The rollout's result, advancing skipped time until it closes. Not `handle.result()`'s automatic
 * skipping: once an activity has signal-with-started a workflow (an incident), the Java test server
 * stops auto-skipping (temporalio/sdk-java#1565); explicit sleeps still advance time.
 *
 * A sleep never reaches past the rollout's own next timer (the end of its timed step), and none is
 * started while it works without one (entering a step, judging, closing): see {@link nextWait}.
 * The rollout must not close while a skipped-time sleep is pending, because the test server can
 * stop skipping time for good at its close, and the sleep then runs in real time (the "slow close"
 * of `pause and resume during shadow`: a 5-minute sleep begun during the close took 150 s and more).
 */
async function settle(s: Started): Promise<RolloutState> {
  const deadline = Date.now() + 150_000;
  for (let i = 0; i < 5000; i++) {
    if ((await s.handle.describe()).status.name !== 'RUNNING') break;
    // Fail with where the rollout stands (before vitest's 180 s timeout, which would say nothing).
    if (Date.now() > deadline) throw new Error(`rollout not closed after 150 s: ${await whereItStands(s)}`);
    const st = await state(s);
    // Closing (only activities and the lock's release left): wait for them in real time.
    const wait = closing(st) ? 0 : nextWait(st, await h.env.currentTimeMs());
    if (wait > 0) await h.env.sleep(wait);
    else await new Promise((r) => setTimeout(r, 100));
  }
  return closedResult(s);
}
/**
 * The result of a rollout that has closed: its latest run's, read with a plain client (no time
 * skipping around it) and a 10 s deadline. Not the started handle's `result()`, which follows the
 * chain of runs from the first: on the test server that long poll missed the close of a rollout
 * that had continued as new several times (the continue-as-new test waited 180 s, and 3 attempts
 * of 10 s, for a rollout the Temporal CLI showed completed 2 s after the resume).
 */
async function closedResult(s: Started): Promise<RolloutState> {
  const plain = new Client({ connection: h.env.connection, namespace: h.env.namespace ?? 'default' });
  return h.env.connection.withDeadline(Date.now() + 10_000, () => plain.workflow.getHandle<typeof canaryRollout>(s.id).result());
}
/** Whether a client call failed on its gRPC deadline (DEADLINE_EXCEEDED, code 4), directly or as the cause. */
function isDeadlineExceeded(err: unknown): boolean {
  return (err as { code?: number }).code === 4 || (err as { cause?: { code?: number } }).cause?.code === 4;
}
/**
 * Whether the rollout has no timer of its own left: decided (promoted, rolled back, aborted,
 * refused) or past its last step (promoting).
 */
function closing(st: RolloutState): boolean {
  return finalStatuses.includes(st.status) || st.step >= st.stepCount;
}
/**
 * How far settle may skip time now (ms): to the end of the current timed step (shadow, timed pause),
 * where the rollout's own timer fires; 5 minutes while it waits for a person (it cannot close
 * without one); 0 (wait in real time) while it works without a timer.
 *
 * Why never further: temporal-test-server 1.31 takes a time-skipping lock when a child workflow
 * completes ("notify parent"), released when the parent records the completion, which a parent
 * that has closed never does (`TestWorkflowMutableStateImpl.processCompleteWorkflowExecution`,
 * `childWorkflowCompleted` fails with NOT_FOUND). The rollout's lock (`rolloutLock`, an abandoned
 * child) ends when the rollout releases it at its close, and when it ends after the rollout (a
 * race: 85 ms after it in the run that hung), this test server skips no more time: a sleep still
 * pending runs in real time, which is what the shadow case's 150 s close was.
 */
function nextWait(st: RolloutState, nowMs: number): number {
  if (st.status === 'paused') return 5 * minute;
  if (st.status === 'progressing' && st.stepEndsAt) return Math.max(0, Date.parse(st.stepEndsAt) - nowMs);
  return 0;
}
/** The rollout's state and the tail of its history, for a failure message. */
async function whereItStands(s: Started): Promise<string> {
  const st = await state(s).catch(() => undefined);
  const history = await s.handle.fetchHistory().catch(() => undefined);
  const tail = (history?.events ?? []).slice(-12).map((e) => {
    const type = String(e.eventType ?? '').replace('EVENT_TYPE_', '');
    const activity = e.activityTaskScheduledEventAttributes?.activityType?.name;
    return activity ? `${type}(${activity})` : type;
  });
  return `${st ? `status ${st.status}, step ${st.step}, routing ${st.routing.mode} epoch ${st.routing.epoch}, ${st.details}` : 'state query failed'}; last events: ${tail.join(', ')}`;
}
async function until(s: Started, what: string, check: (st: RolloutState) => boolean): Promise<RolloutState> {
  try {
    return await waitFor(what, async () => {
      const st = await state(s);
      return check(st) ? st : undefined;
    });
  } catch (err) {
    throw new Error(`${(err as Error).message}: ${await whereItStands(s)}`);
  }
}
/** Advances skipped time a minute at a time (at most an hour) until `check` holds. */
async function advanceUntil(s: Started, what: string, check: (st: RolloutState) => boolean): Promise<RolloutState> {
  for (let i = 0; i < 60; i++) {
    const st = await state(s);
    if (check(st)) return st;
    await h.env.sleep(minute);
  }
  return until(s, what, check);
}
async function sleepTo(s: Started, minutes: number): Promise<void> {
  const now = await h.env.currentTimeMs();
  const target = s.t0 + minutes * minute;
  if (target > now) await h.env.sleep(target - now);
}
async function rows<T>(query: string, params: Record<string, unknown>): Promise<T[]> {
  return (await h.warehouse.query({ query, query_params: params, format: 'JSONEachRow', clickhouse_settings: { output_format_json_quote_64bit_integers: 0 } })).json<T>();
}
const by = { by: 'ann', reason: 'checked the dashboards' };
async function refusal(p: Promise<unknown>): Promise<string> {
  const err = await p.then(() => undefined, (e: unknown) => e);
  expect(err).toBeInstanceOf(WorkflowUpdateFailedError);
  return String((err as WorkflowUpdateFailedError).cause?.message);
}
/** Webhook notifications about the incident this rollout opened. */
function notificationsFor(incident: string | undefined) {
  return incident ? h.receiver.about(incident) : [];
}

const shadowWeightAnalysis = [{ shadow: '10m' }, { weight: 25 }, { pause: '5m' }, 'analysis'] as RolloutInputJson['steps'];

/**
 * A test server per test: what one test leaves running (an incident, its alert group, a lock) keeps
 * waking in skipped time, and on the time-skipping server every wake is a real workflow task, so a
 * later test's skipped hours crawled (4 skipped minutes took 141 s; the old stall of this suite).
 */
describe('canary rollout step machine (time-skipping, a test server per test)', () => {
  beforeEach(async () => {
    h = await createRolloutHarness();
  }, 300_000);
  afterEach(async () => {
    await h?.teardown();
  });

  it('a good version promotes itself through shadow, weight and analysis; every judgement and step change is stored', async () => {
    const s = await start({ steps: shadowWeightAnalysis });
    // The details line says when the shadow step is judged as a time, right whenever it is read (a
    // bare countdown, "judging in 10m", was only right at the moment it was written).
    const shadowing = await until(s, 'shadowing', (st) => st.routing.mode === 'shadow' && st.stepEndsAt !== undefined);
    const clock = (iso: string) => `${iso.slice(11, 19)}Z`;
    expect(shadowing.details).toBe(`step 1 of 4 (shadow 10m): shadowing v2 on every batch (live on v1), judging at ${clock(shadowing.stepEndsAt!)} (in about 10m, as of ${clock(shadowing.stepStartedAt)})`);
    await feed(s, 1, 0.5, 9.5, healthy(11));
    await feed(s, 2, 10.5, 14.5, healthy(12));
    const final = await settle(s);
    expect(final.status).toBe('promoted');
    expect(final.routing).toMatchObject({ mode: 'canary', weightPercent: 100, epoch: 3 });
    expect(final.judgements.map((j) => [j.step, j.epoch, j.outcome, j.score])).toEqual([[0, 1, 'pass', 100], [3, 2, 'pass', 100]]);

    const judged = await rows<{ judgement_id: string; metric: string; verdict: string; test: string; baseline_n: number; canary_n: number; p_value: number | null }>(
      'SELECT judgement_id, metric, verdict, test, baseline_n, canary_n, p_value FROM canary_judgements FINAL WHERE rollout_id = {id:String} ORDER BY judgement_id, metric',
      { id: s.id },
    );
    expect(judged).toHaveLength(6);
    expect(judged.every((r) => r.verdict === 'pass' && r.p_value !== null)).toBe(true);
    expect(judged.find((r) => r.metric === 'processing_time_ms')).toMatchObject({ test: 'mann-whitney-asymptotic', baseline_n: 200, canary_n: 200 });
    expect(judged.find((r) => r.metric === 'reject_rate')).toMatchObject({ test: 'fisher-exact', baseline_n: 5000, canary_n: 5000 });

    const events = await rows<{ seq: number; event_type: string; routing_mode: string; routing_weight: number; routing_epoch: number }>(
      "SELECT seq, event_type, routing_mode, routing_weight, routing_epoch FROM rollout_events FINAL WHERE rollout_id = {id:String} AND event_type = 'routing' ORDER BY seq",
      { id: s.id },
    );
    expect(events.map((e) => [e.routing_mode, e.routing_weight, e.routing_epoch])).toEqual([['shadow', 0, 1], ['weight', 25, 2], ['canary', 100, 3]]);
    const [{ n, distinct }] = await rows<{ n: number; distinct: number }>('SELECT count() AS n, uniqExact(seq) AS distinct FROM rollout_events WHERE rollout_id = {id:String}', { id: s.id }) as [{ n: number; distinct: number }];
    expect(n).toBe(distinct);
    expect(notificationsFor(final.incident)).toHaveLength(0);

    // Steps as people count them, 1-based everywhere they read one: the judgements ran at steps 1
    // (shadow) and 4 (analysis) of 4, as the details line, `platform rollouts show` and the tables say.
    expect(final).toMatchObject({ stepNumber: 4, stepCount: 4 });
    const numbered = await rows<{ judgement_id: string; step_number: number }>(
      'SELECT DISTINCT judgement_id, step_number FROM canary_judgements FINAL WHERE rollout_id = {id:String} ORDER BY step_number',
      { id: s.id },
    );
    expect(numbered.map((r) => [r.step_number, r.judgement_id.split('/')[1]])).toEqual([[1, 'step-1'], [4, 'step-4']]);
    const report = describeJudgements(await judgementReports(h.warehouse, s.id));
    expect(report).toMatch(new RegExp(`^judgement ${s.id}/step-1/epoch-1/j\\d+ \\(step 1, `));
    expect(report).toMatch(new RegExp(`\\njudgement ${s.id}/step-4/epoch-2/j\\d+ \\(step 4, `));
    const steps = await rows<{ step_number: number; reason: string }>(
      "SELECT step_number, reason FROM rollout_events FINAL WHERE rollout_id = {id:String} AND event_type = 'step' AND reason LIKE 'step %' ORDER BY seq",
      { id: s.id },
    );
    expect(steps.map((e) => [e.step_number, e.reason.slice(0, 'step 2 of 4'.length)])).toEqual([[2, 'step 2 of 4'], [3, 'step 3 of 4'], [4, 'step 4 of 4']]);
    const routed = await rows<{ mode: string; step_number: number }>('SELECT mode, step_number FROM rollout_routing FINAL WHERE rollout_id = {id:String} ORDER BY epoch', { id: s.id });
    expect(routed).toEqual([{ mode: 'shadow', step_number: 1 }, { mode: 'weight', step_number: 2 }, { mode: 'canary', step_number: 4 }]);
    // The promotion after the last step is step 4 of 4 in the audit table too, as in rollout_routing
    // (it said step_number 5, a step that does not exist): no row says more than the step count.
    const closing = await rows<{ event_type: string; step: number; step_number: number }>(
      "SELECT event_type, step, step_number FROM rollout_events FINAL WHERE rollout_id = {id:String} AND seq > (SELECT max(seq) FROM rollout_events FINAL WHERE rollout_id = {id:String} AND event_type = 'judgement') ORDER BY seq",
      { id: s.id },
    );
    expect(closing).toEqual([
      { event_type: 'step', step: 4, step_number: 4 },
      { event_type: 'routing', step: 4, step_number: 4 },
      { event_type: 'promoted', step: 4, step_number: 4 },
    ]);
    const [{ most }] = (await rows<{ most: number }>('SELECT max(step_number) AS most FROM rollout_events FINAL WHERE rollout_id = {id:String}', { id: s.id })) as [{ most: number }];
    expect(most).toBe(4);
    // Query `state` names steps as people count them beside the 0-based index: each judgement and
    // each audit event has its 1-based stepNumber (at most the step count), which the tool prints.
    expect(final.judgements.map((j) => [j.step, j.stepNumber])).toEqual([[0, 1], [3, 4]]);
    expect(final.events.map((e) => e.stepNumber)).toEqual(final.events.map((e) => Math.min(e.step + 1, 4)));
    expect(final.events.at(-1)).toMatchObject({ type: 'promoted', step: 4, stepNumber: 4 });
    // `platform rollouts show`'s audit table: the promotion's step column says 4.
    const promotedRow = describeRollout(final).split('\n').map((l) => l.split(/ {2,}/)).find((cells) => cells[2] === 'promoted');
    expect(promotedRow?.[3]).toBe('4');
  });

  it('pause durations: a pause step holds exactly its duration', async () => {
    const s = await start({ steps: [{ weight: 10 }, { pause: '45m' }, { pause: {} }] });
    const inPause = await until(s, 'in the timed pause', (st) => st.step === 1 && st.stepEndsAt !== undefined);
    expect(Date.parse(inPause.stepEndsAt!) - Date.parse(inPause.stepStartedAt)).toBe(45 * minute);
    await sleepTo(s, 44);
    expect(await state(s)).toMatchObject({ step: 1, status: 'progressing' });
    await sleepTo(s, 46);
    const next = await until(s, 'the pause() step', (st) => st.step === 2);
    expect(next.status).toBe('paused');
    // The next step starts when the 45 minutes are over (plus the workflow task that enters it).
    const held = Date.parse(next.stepStartedAt) - Date.parse(inPause.stepStartedAt);
    expect(held).toBeGreaterThanOrEqual(45 * minute);
    expect(held).toBeLessThan(45 * minute + 10_000);
    // The pause() step asked for a person through an incident; once someone acts, it resolves
    // (an incident left open kept escalating, and on the test server slowed every later test's skipped time).
    expect(next.waitingIncident).toMatch(/^alert-[0-9a-f]{16}$/);
    await s.handle.executeUpdate(promoteUpdate, { args: [by] });
    const final = await settle(s);
    expect(final.waitingIncident).toBeUndefined();
    const incident = h.env.client.workflow.getHandle(next.waitingIncident!);
    await waitFor('the waiting incident resolved', async () => (await incident.describe()).status.name === 'COMPLETED');
    expect(notificationsFor(next.waitingIncident).some((r) => r.body.kind === 'resolve')).toBe(true);
  });

  describe('promote and pause/resume at every step kind', () => {
    const steps = [{ shadow: '10m' }, { weight: 20 }, { pause: '10m' }, 'analysis', { pause: {} }] as RolloutInputJson['steps'];
    // Where the rollout is at each probe time (minutes after start), and which step index that is.
    const probes = [
      { at: 4, step: 0, kind: 'shadow' },
      { at: 14, step: 2, kind: 'weight 20 % + pause 10m' },
      { at: 25, step: 4, kind: 'pause()' },
    ];
    async function running(): Promise<Started> {
      const s = await start({ steps });
      await feed(s, 1, 0.5, 9.5, healthy(61));
      await feed(s, 2, 10.5, 19.5, healthy(62));
      return s;
    }
    for (const probe of probes) {
      it(`promote during ${probe.kind}`, async () => {
        const s = await running();
        await sleepTo(s, probe.at);
        await until(s, `step ${probe.step}`, (st) => st.step === probe.step);
        const promoted = await s.handle.executeUpdate(promoteUpdate, { args: [{ by: 'ann', reason: 'urgent fix' }] });
        expect(promoted).toMatchObject({ status: 'promoted', step: probe.step, routing: { mode: 'canary', weightPercent: 100 } });
        expect(promoted.events.find((e) => e.type === 'promoted')).toMatchObject({ by: 'ann', reason: 'urgent fix', step: probe.step });
        expect(await settle(s)).toMatchObject({ status: 'promoted' });
        // Promoted is final: the run has completed (no later control can change it).
        expect((await s.handle.describe()).status.name).toBe('COMPLETED');
      });
      it(`pause and resume during ${probe.kind}`, async () => {
        const s = await running();
        await sleepTo(s, probe.at);
        const before = await until(s, `step ${probe.step}`, (st) => st.step === probe.step);
        let left = 0;
        if (before.status === 'paused') {
          // pause() step: already waiting for a person; pausing again is refused, resume goes on.
          expect(await refusal(s.handle.executeUpdate(pauseUpdate, { args: [by] }))).toMatch(/^pause: already paused by pause step/);
        } else {
          expect(await refusal(s.handle.executeUpdate(resumeUpdate, { args: [by] }))).toBe('resume: the rollout is progressing, not paused');
          const paused = await s.handle.executeUpdate(pauseUpdate, { args: [{ by: 'dan', reason: 'investigating' }] });
          expect(paused).toMatchObject({ status: 'paused', pause: { by: 'dan', cause: 'person' } });
          left = paused.remainingMs!;
          expect(left).toBeGreaterThan(4 * minute);
          // The step timer stands still while paused (45 minutes: longer than any step, shorter than
          // the hourly reminder, whose incident would keep an alert group waking every minute).
          await h.env.sleep(45 * minute);
          expect(await state(s)).toMatchObject({ status: 'paused', step: probe.step, remainingMs: left });
        }
        const resumed = await s.handle.executeUpdate(resumeUpdate, { args: [{ by: 'dan', reason: 'all clear' }] });
        expect(resumed.status).toBe('progressing');
        // The pause moved the later steps by 45 minutes: the pipeline (the test) keeps observing the
        // weight step's epoch in the window it now has, with its next batches (b10-b19: the same
        // batch ids again would be dropped as re-landed batches, and the analysis after a paused
        // shadow step, whose window starts after the resume, would see no observation at all).
        const nowMin = ((await h.env.currentTimeMs()) - s.t0) / minute;
        await feed(s, 2, nowMin, nowMin + 30, healthy(63), healthy(2), 10);
        if (probe.step === 4) {
          expect(await settle(s)).toMatchObject({ status: 'promoted', judgements: [{ outcome: 'pass' }, { outcome: 'pass' }] });
          return;
        }
        // The rest of the timed step (and, after the shadow step, the weight step's 10-minute pause),
        // then the analysis and the pause() step, in skipped time: one sleep to a minute past the
        // analysis (skipped a minute at a time, the shadow case took 90-188 s of real time under load),
        // so at most a minute is skipped once the pause() step has opened its incident (see settle).
        await h.env.sleep(left + (probe.step === 0 ? 10 * minute : 0) + minute);
        const waiting = await advanceUntil(s, 'the pause() step', (st) => st.step === 4 && st.status === 'paused');
        expect(waiting.judgements.map((j) => j.outcome)).toEqual(['pass', 'pass']);
        await s.handle.executeUpdate(resumeUpdate, { args: [{ by: 'dan', reason: 'ship it' }] });
        expect(await settle(s)).toMatchObject({ status: 'promoted' });
      });
    }

    it('controls are validated: who and why are required', async () => {
      const s = await running();
      expect(await refusal(s.handle.executeUpdate(pauseUpdate, { args: [{ by: 'ann' } as never] }))).toMatch(/^pause: input\.reason: /);
      expect(await refusal(s.handle.executeUpdate(abortUpdate, { args: [{ by: ' ', reason: 'x' }] }))).toMatch(/^abort: input\.by: expected who is acting/);
      await s.handle.executeUpdate(promoteUpdate, { args: [by] });
    });
  });

  it('a worker restart in the middle of a step changes nothing', async () => {
    const s = await start({ steps: shadowWeightAnalysis });
    await feed(s, 1, 0.5, 9.5, healthy(71));
    await feed(s, 2, 10.5, 14.5, healthy(72));
    await sleepTo(s, 5);
    await until(s, 'shadowing', (st) => st.routing.mode === 'shadow');
    await h.stopWorker();
    await h.startWorker();
    const final = await settle(s);
    expect(final).toMatchObject({ status: 'promoted', judgements: [{ outcome: 'pass' }, { outcome: 'pass' }] });
    await h.replay(s.id);
    const judged = await rows<{ n: number }>('SELECT count() AS n FROM canary_judgements WHERE rollout_id = {id:String}', { id: s.id });
    expect(judged).toEqual([{ n: 6 }]);
  });

  it('one rollout per pipeline: a second is refused naming the running one; after it ends a new one starts', async () => {
    const a = await start({ steps: [{ weight: 10 }, { pause: {} }] });
    await until(a, 'first rollout paused', (st) => st.status === 'paused');
    const b = await start({ pipeline: a.pipeline, version: 'v3', steps: [{ weight: 10 }] });
    const err = await settle(b).then(() => undefined, (e: unknown) => e);
    expect(err).toBeInstanceOf(WorkflowFailedError);
    expect(String((err as WorkflowFailedError).cause?.message)).toBe(`pipeline "${a.pipeline}" already has a running rollout: ${a.id} (one rollout per pipeline at a time)`);
    await a.handle.executeUpdate(promoteUpdate, { args: [by] });
    await settle(a);
    await waitFor('lock released', async () => (await h.env.client.workflow.getHandle(`rollout-lock-${a.pipeline}`).describe()).status.name === 'COMPLETED');
    const c = await start({ pipeline: a.pipeline, version: 'v4', steps: [{ weight: 10 }, { pause: {} }] });
    await until(c, 'third rollout paused', (st) => st.status === 'paused');
    await c.handle.executeUpdate(promoteUpdate, { args: [by] });
  });

  it('bad input fails at once, naming the field; so does a workflow id that is not rollout-<pipeline>-<version>', async () => {
    const bad = await h.env.client.workflow.start('canaryRollout', { workflowId: 'rollout-x-1', taskQueue: h.taskQueue, args: [{ pipeline: 'x', version: '1', steps: [{ weight: 0 }] }] });
    const err = await bad.result().then(() => undefined, (e: unknown) => e);
    expect(String((err as WorkflowFailedError).cause?.message)).toBe('canaryRollout input: input.steps.0.weight: expected 1..99');
    // Every refusal says so in the search attributes `platform rollouts list --all` / `--status refused` read.
    const refused = { RolloutStatus: ['refused'], RolloutPipeline: ['x'] };
    expect((await bad.describe()).searchAttributes).toMatchObject(refused);
    const wrongId = await h.env.client.workflow.start('canaryRollout', { workflowId: 'my-rollout', taskQueue: h.taskQueue, args: [{ pipeline: 'x', version: '1' }] });
    const err2 = await wrongId.result().then(() => undefined, (e: unknown) => e);
    expect(String((err2 as WorkflowFailedError).cause?.message)).toBe('canaryRollout: workflow id must be "rollout-x-1" (rollout-<pipeline>-<version>), got "my-rollout"');
    expect((await wrongId.describe()).searchAttributes).toMatchObject(refused);
    // A start check on the worker (here: a version the catalogue does not have).
    const unknown = await h.env.client.workflow.start('canaryRollout', { workflowId: 'rollout-x-request-enriched@9', taskQueue: h.taskQueue, args: [{ pipeline: 'x', version: 'request-enriched@9' }] });
    const err4 = await unknown.result().then(() => undefined, (e: unknown) => e);
    expect(String((err4 as WorkflowFailedError).cause?.message)).toMatch(/^canaryRollout input: input\.version: processor request-enriched has versions 1, 2, 3, 4, not 9/);
    expect((await unknown.describe()).searchAttributes).toMatchObject(refused);
    // A version written v1 names the rollout after the number: rollout-x-1, not rollout-x-v1.
    const lettered = await h.env.client.workflow.start('canaryRollout', { workflowId: 'rollout-x-v1', taskQueue: h.taskQueue, args: [{ pipeline: 'x', version: 'v1' }] });
    const err3 = await lettered.result().then(() => undefined, (e: unknown) => e);
    expect(String((err3 as WorkflowFailedError).cause?.message)).toBe('canaryRollout: workflow id must be "rollout-x-1" (rollout-<pipeline>-<version>), got "rollout-x-v1"');
  });
});

/**
 * Outcomes that open an incident through the alert workflow get a test server each: once an
 * activity has signal-with-started the incident, the Java test server no longer skips time
 * (temporalio/sdk-java#1565), so anything after it in the same server runs in real time.
 */
describe('canary rollout outcomes that open incidents (time-skipping, a test server each)', () => {
  beforeEach(async () => {
    h = await createRolloutHarness();
  }, 300_000);
  afterEach(async () => {
    await h?.teardown();
  });

  it('a raised reject rate rolls back at the shadow step and opens an incident through the alert workflow', async () => {
    const s = await start({ steps: shadowWeightAnalysis });
    await feed(s, 1, 0.5, 9.5, (i) => ({ ...healthy(21)(i), rejects: 15 }));
    const final = await settle(s);
    expect(final).toMatchObject({ status: 'rolled_back', step: 0 });
    expect(final.routing).toMatchObject({ mode: 'baseline', weightPercent: 0, epoch: 2 });
    expect(final.judgements[0]).toMatchObject({ outcome: 'fail' });
    expect(final.judgements[0]!.metrics[0]).toMatch(/^reject_rate fail \(p=.*\) \[critical\]$/);
    expect(final.incident).toMatch(/^alert-[0-9a-f]{16}$/);
    const delivered = await waitFor('incident notification', () => notificationsFor(final.incident).find((r) => r.body.kind === 'trigger'));
    expect(delivered.body.alerts[0]).toMatchObject({ severity: 'critical', status: 'firing' });
    const reject = await rows<{ verdict: string; baseline_hits: number; canary_hits: number }>(
      "SELECT verdict, baseline_hits, canary_hits FROM canary_judgements FINAL WHERE rollout_id = {id:String} AND metric = 'reject_rate'",
      { id: s.id },
    );
    expect(reject).toEqual([{ verdict: 'fail', baseline_hits: 5, canary_hits: 150 }]);
  });

  it('a 5x slower stage rolls back at the shadow step', async () => {
    const slow = await start({ steps: shadowWeightAnalysis });
    await feed(slow, 1, 0.5, 9.5, (i) => ({ ...healthy(31)(i), times: normals(3100 + i, 20, 20, 5) }));
    const final = await settle(slow);
    expect(final).toMatchObject({ status: 'rolled_back', step: 0 });
    expect(final.judgements[0]!.metrics.find((m) => m.startsWith('processing_time_ms'))).toMatch(/^processing_time_ms fail/);
  });

  it('a small shift of one output field (counts unchanged) rolls back at the first weight step', async () => {
    // The field moves by about 0.25 sd only for canary keys (weight step); counts are unchanged.
    const analysis = { metrics: [{ name: 'reject_rate', kind: 'proportion', critical: true }, { name: 'field:amount', kind: 'continuous', tolerance: 0.5 }] } as RolloutInputJson['analysis'];
    const shifted = await start({ steps: shadowWeightAnalysis, analysis });
    await feed(shifted, 1, 0.5, 9.5, healthy(41));
    await feed(shifted, 2, 10.5, 14.5, (i) => ({ ...healthy(42)(i), amounts: normals(42_000 + i, 50, 101.3, 5) }));
    const final = await settle(shifted);
    expect(final).toMatchObject({ status: 'rolled_back', step: 3 });
    expect(final.judgements.map((j) => j.outcome)).toEqual(['pass', 'fail']);
    expect(final.judgements[1]!.metrics.find((m) => m.startsWith('field:amount'))).toMatch(/^field:amount fail/);
    expect(final.judgements[1]!.metrics.find((m) => m.startsWith('reject_rate'))).toMatch(/^reject_rate pass/);
  });

  it('an inconclusive judgement waits for a person, notifies, reminds, and resume goes on', async () => {
    const s = await start({ steps: [{ shadow: '10m' }, { weight: 25 }, { pause: '5m' }, 'analysis'], notify: { remindEvery: '3s' } });
    await sleepTo(s, 10.5);
    // No observations at all in the shadow window: inconclusive, never zero.
    const paused = await until(s, 'paused after judgement', (st) => st.status === 'paused');
    expect(paused.judgements[0]).toMatchObject({ outcome: 'inconclusive' });
    expect(paused.pause).toMatchObject({ cause: 'judgement', by: 'judgement' });
    expect((await s.handle.describe()).searchAttributes).toMatchObject({ RolloutStatus: ['paused'], RolloutPipeline: [s.pipeline] });
    await waitFor('waiting notification', () => notificationsFor(paused.incident).length >= 1);
    // Skipped time stands still once an incident is open (see settle); reminders every 3 s of real time.
    const reminded = await until(s, 'two reminders', (st) => st.events.filter((e) => e.type === 'reminded').length >= 2);
    expect(reminded).toMatchObject({ status: 'paused', step: 0 });
    const resumed = await s.handle.executeUpdate(resumeUpdate, { args: [{ by: 'ann', reason: 'shadow tables look right' }] });
    expect(resumed).toMatchObject({ status: 'progressing', step: 1 });
    expect(resumed.events.find((e) => e.type === 'resumed')).toMatchObject({ by: 'ann', reason: 'shadow tables look right' });
    await s.handle.executeUpdate(abortUpdate, { args: [{ by: 'ann', reason: 'end of test' }] });
    expect(await settle(s)).toMatchObject({ status: 'aborted' });
  });

  it('a marginal judgement (a light non-critical metric fails) waits for a person', async () => {
    const analysis = {
      metrics: [
        { name: 'reject_rate', kind: 'proportion', critical: true, weight: 4 },
        { name: 'processing_error_rate', kind: 'proportion', weight: 4 },
        { name: 'processing_time_ms', kind: 'continuous', direction: 'increase', weight: 1 },
      ],
    } as RolloutInputJson['analysis'];
    const s = await start({ steps: [{ shadow: '10m' }, { weight: 50 }], analysis });
    await feed(s, 1, 0.5, 9.5, (i) => ({ ...healthy(51)(i), times: normals(5100 + i, 20, 6, 1) }));
    await sleepTo(s, 10.5);
    const paused = await until(s, 'paused after marginal judgement', (st) => st.status === 'paused');
    expect(paused.judgements[0]).toMatchObject({ outcome: 'marginal', score: 88.89 });
    await s.handle.executeUpdate(promoteUpdate, { args: [{ by: 'bob', reason: 'latency cost accepted' }] });
    expect(await settle(s)).toMatchObject({ status: 'promoted', routing: { mode: 'canary', weightPercent: 100 } });
  });

  describe('abort at every step kind', () => {
    const steps = [{ shadow: '10m' }, { weight: 20 }, { pause: '10m' }, 'analysis', { pause: {} }] as RolloutInputJson['steps'];
    // Where the rollout is at each probe time (minutes after start), and which step index that is.
    const probes = [
      { at: 4, step: 0, kind: 'shadow' },
      { at: 14, step: 2, kind: 'weight 20 % + pause 10m' },
      { at: 25, step: 4, kind: 'pause()' },
    ];
    async function running(): Promise<Started> {
      const s = await start({ steps });
      await feed(s, 1, 0.5, 9.5, healthy(61));
      await feed(s, 2, 10.5, 19.5, healthy(62));
      return s;
    }
    for (const probe of probes) {
      it(`abort during ${probe.kind}`, async () => {
        const s = await running();
        await sleepTo(s, probe.at);
        await until(s, `step ${probe.step}`, (st) => st.step === probe.step);
        const aborted = await s.handle.executeUpdate(abortUpdate, { args: [{ by: 'cho', reason: 'customer complaint' }] });
        expect(aborted).toMatchObject({ status: 'aborted', step: probe.step, routing: { mode: 'baseline', weightPercent: 0 } });
        const final = await settle(s);
        await waitFor('abort incident notification', () => notificationsFor(final.incident).some((r) => r.body.alerts.some((a) => a.severity === 'critical')));
        const audit = await rows<{ event_type: string; actor: string; reason: string }>(
          "SELECT event_type, actor, reason FROM rollout_events FINAL WHERE rollout_id = {id:String} AND event_type = 'aborted'",
          { id: s.id },
        );
        expect(audit).toEqual([{ event_type: 'aborted', actor: 'cho', reason: 'customer complaint' }]);
      });
    }
  });

  it('the same version tried again opens an incident of its own, with its own reason', async () => {
    // Rollout ids are rollout-<pipeline>-<version>: trying v2 again reuses the id. Before the run
    // label, the second abort re-fired the first one's still-open incident (its summary and the
    // person's reason were lost in a "fired again" line).
    const pipeline = uniqueId('p').replace(/_/g, '-');
    const tries: { id: string; incident: string | undefined }[] = [];
    for (const reason of ['first try', 'customer complaint']) {
      const s = await start({ pipeline, steps: [{ weight: 10 }, { pause: {} }] });
      await until(s, 'the weight step', (st) => st.routing.mode === 'weight');
      await s.handle.executeUpdate(abortUpdate, { args: [{ by: 'cho', reason }] });
      tries.push({ id: s.id, incident: (await settle(s)).incident });
    }
    expect(tries[1]!.id).toBe(tries[0]!.id);
    expect(tries[0]!.incident).toMatch(/^alert-[0-9a-f]{16}$/);
    expect(tries[1]!.incident).toMatch(/^alert-[0-9a-f]{16}$/);
    expect(tries[1]!.incident).not.toBe(tries[0]!.incident);
    const delivered = await waitFor('the second incident notification', () => notificationsFor(tries[1]!.incident).find((r) => r.body.kind === 'trigger'));
    expect(JSON.stringify(delivered.body)).toContain('customer complaint');
  });

  it('continue-as-new keeps the rollout state (reminders while waiting for a person fill the history)', async () => {
    const s = await start({ steps: [{ weight: 10 }, { pause: {} }], notify: { remindEvery: '2s' }, historyLimit: 40 });
    const first = await until(s, 'paused', (st) => st.status === 'paused');
    const firstRun = (await s.handle.describe()).runId;
    await until(s, 'a continue-as-new', (st) => st.events.some((e) => e.type === 'continued'));
    // The old run records 'continued', flushes it to the audit table (an activity), then continues
    // as new: its state can show the event while it still runs. Read the state from the new run.
    await waitFor('the new run', async () => ((await s.handle.describe()).runId !== firstRun ? true : undefined));
    const later = await state(s);
    expect(later.events.some((e) => e.type === 'continued')).toBe(true);
    expect(later).toMatchObject({ status: 'paused', step: 1, routing: first.routing, startedAt: first.startedAt, lockHeld: true });
    expect(later.eventSeq).toBeGreaterThan(first.eventSeq);
    const seqs = later.events.map((e) => e.seq);
    expect(seqs).toEqual([...seqs].sort((a, b) => a - b));
    await s.handle.executeUpdate(resumeUpdate, { args: [by] });
    const final = await settle(s);
    expect(final).toMatchObject({ status: 'promoted', startedAt: first.startedAt });
    const [{ n, distinct }] = (await rows<{ n: number; distinct: number }>('SELECT count() AS n, uniqExact(seq) AS distinct FROM rollout_events FINAL WHERE rollout_id = {id:String}', { id: s.id })) as [{ n: number; distinct: number }];
    expect(n).toBe(distinct);
    expect(n).toBe(final.eventSeq);
  });
});
