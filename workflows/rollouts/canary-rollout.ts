/**
 * `canaryRollout` (id `rollout-<pipeline>-<version>`): rolls a processor version out on one
 * pipeline step by step, judged against the baseline, steered by people.
 *
 * Steps (Argo Rollouts' setWeight / pause / analysis, plus Kafka's shadow): `shadow` routes every
 * batch through the canary into shadow tables for a duration and then judges that window;
 * `weight` puts a share of keys on the canary; `pause` waits (a duration, or for a person);
 * `analysis` judges the window since the last routing change. Outcomes: pass -> next step;
 * marginal or inconclusive -> paused, a person is asked (alert, reminders); fail -> rolled back and
 * an incident opened. After the last step the canary is promoted to 100 %.
 *
 * People: updates `promote`, `pause`, `resume`, `abort` (validated, who and why recorded), query
 * `state`, search attributes `RolloutStatus` / `RolloutPipeline`, current details in words.
 * One rollout per pipeline: a `rolloutLock` child holds `rollout-lock-<pipeline>`.
 * The routing is state of this workflow (query `state`, audit table `rollout_events`); every change
 * is published to the pipeline (activity `publishRouting`, table `rollout_routing`), whose planner
 * records it in each batch plan: it takes effect at batch boundaries. A promotion first makes the
 * canary the pipeline's own processor (`setProcessor`), then publishes the final routing.
 */
import {
  ActivityFailure,
  ApplicationFailure,
  allHandlersFinished,
  condition,
  continueAsNew,
  defineQuery,
  defineUpdate,
  getExternalWorkflowHandle,
  ParentClosePolicy,
  patched,
  proxyActivities,
  setCurrentDetails,
  setHandler,
  startChild,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import { defineSearchAttributeKey, WorkflowExecutionAlreadyStartedError } from '@temporalio/common';
import type { RolloutActivities } from '../../activities/rollouts/rollout-activities.js';
import type { AlertFiring } from '../../schemas/alerting/alert.js';
import { describeZodError } from '../../schemas/alerting/alert-incident.js';
import {
  describeJudgingAt,
  describeStep,
  formatDuration,
  legacyRolloutWorkflowId,
  rolloutInputSchema,
  rolloutLockWorkflowId,
  rolloutWorkflowId,
  type RolloutInput,
  type RolloutStep,
} from '../../schemas/rollouts/rollout.js';
import {
  controlInputSchema,
  finalRolloutStatuses,
  rolloutEventCap,
  stepNumberOf,
  type ControlInput,
  type JudgementSummary,
  type RolloutEvent,
  type RolloutState,
  type RolloutStatus,
  type Routing,
} from '../../schemas/rollouts/rollout-state.js';
import { releaseSignal, rolloutLock } from './rollout-lock.js';

/** Update `promote`: skip the remaining steps, canary to 100 %. */
export const promoteUpdate = defineUpdate<RolloutState, [ControlInput]>('promote');
/** Update `pause`: hold at the current step (timers stop) until `resume`. */
export const pauseUpdate = defineUpdate<RolloutState, [ControlInput]>('pause');
/** Update `resume`: continue; after a marginal/inconclusive judgement or a `pause()` step, go to the next step. */
export const resumeUpdate = defineUpdate<RolloutState, [ControlInput]>('resume');
/** Update `abort`: roll back to the baseline and open an incident. */
export const abortUpdate = defineUpdate<RolloutState, [ControlInput]>('abort');
/** Query `state`: the whole rollout state. */
export const stateQuery = defineQuery<RolloutState>('state');

/** Search attribute keys the rollout upserts. */
export const rolloutSearchAttributes = {
  status: defineSearchAttributeKey('RolloutStatus', 'KEYWORD'),
  pipeline: defineSearchAttributeKey('RolloutPipeline', 'KEYWORD'),
};

/** Detector names of the incidents a rollout opens through the alert workflow. */
export const rolloutAlertDetectors = { failed: 'canary_rollout_failed', waiting: 'canary_rollout_waiting' } as const;

const judging = proxyActivities<RolloutActivities>({
  startToCloseTimeout: '2m',
  retry: { initialInterval: '2s', maximumInterval: '1m', nonRetryableErrorTypes: ['invalid_input'] },
});
const side = proxyActivities<RolloutActivities>({
  startToCloseTimeout: '30s',
  retry: { initialInterval: '2s', maximumInterval: '1m', nonRetryableErrorTypes: ['invalid_input'] },
});

const iso = (ms: number) => new Date(ms).toISOString();
const isFinal = (s: RolloutStatus) => finalRolloutStatuses.includes(s);

function refuse(type: string, message: string): ApplicationFailure {
  return ApplicationFailure.create({ type, nonRetryable: true, message });
}

/**
 * A refused start (bad input, wrong workflow id, a start check: pipeline not running, unknown
 * version, bad flags or metric): the run fails, but first says so where people look for rollouts,
 * search attributes `RolloutStatus` = `refused` and `RolloutPipeline` (when the input names one),
 * so `platform rollouts list --all` and `--status refused` show it, and the details say why.
 * Versioned: refusals recorded before it replay without the search attributes.
 */
function refuseStart(pipeline: unknown, type: string, message: string): ApplicationFailure {
  if (patched('rollout-refusal-search-attributes')) {
    const named = typeof pipeline === 'string' && pipeline.trim() !== '' ? pipeline.slice(0, 200) : undefined;
    upsertSearchAttributes([
      { key: rolloutSearchAttributes.status, value: 'refused' },
      ...(named ? [{ key: rolloutSearchAttributes.pipeline, value: named }] : []),
    ]);
    setCurrentDetails(`refused: ${message}`);
  }
  return refuse(type, message);
}

/** Routing in words: `25 % of keys on v3`, `shadowing v3 on every batch`, `all keys on request-enriched@1`. */
export function describeRouting(r: Routing): string {
  switch (r.mode) {
    case 'baseline':
      return `all keys on ${r.baselineVersion}`;
    case 'shadow':
      return `shadowing ${r.canaryVersion} on every batch (live on ${r.baselineVersion})`;
    case 'weight':
      return `${r.weightPercent} % of keys on ${r.canaryVersion}`;
    case 'canary':
      return `all keys on ${r.canaryVersion}`;
  }
}

/**
 * The rollout workflow. `rawInput` is the hand-written JSON (validated here: a bad one fails at
 * once, non-retryable, naming the field); `carried` is the state handed over by continue-as-new.
 */
export async function canaryRollout(rawInput: unknown, carried?: RolloutState): Promise<RolloutState> {
  const parsed = rolloutInputSchema.safeParse(rawInput);
  if (!parsed.success) {
    const pipeline = typeof rawInput === 'object' && rawInput !== null ? (rawInput as { pipeline?: unknown }).pipeline : undefined;
    throw refuseStart(pipeline, 'invalid_input', `canaryRollout input: ${describeZodError(parsed.error)}`);
  }
  const input: RolloutInput = parsed.data;
  const info = workflowInfo();
  const expectedId = rolloutWorkflowId(input.pipeline, input.version);
  // Runs started before ids were numbered (`rollout-demo-v1`) keep theirs; new ones are refused it.
  const legacy = info.workflowId !== expectedId && info.workflowId === legacyRolloutWorkflowId(input.pipeline, input.version) && !patched('rollout-id-numbered');
  if (info.workflowId !== expectedId && !legacy) {
    throw refuseStart(input.pipeline, 'invalid_input', `canaryRollout: workflow id must be "${expectedId}" (rollout-<pipeline>-<version>), got "${info.workflowId}"`);
  }
  const steps: RolloutStep[] = input.steps;
  const now = () => Date.now();

  const s: RolloutState = carried ?? {
    rolloutId: info.workflowId,
    pipeline: input.pipeline,
    version: input.version,
    baselineVersion: input.baselineVersion,
    status: 'progressing',
    step: 0,
    stepCount: steps.length,
    stepDescription: describeStep(steps[0]!),
    routing: { mode: 'baseline', baselineVersion: input.baselineVersion, canaryVersion: input.version, weightPercent: 0, epoch: 0 },
    stepStartedAt: iso(now()),
    windowStartedAt: iso(now()),
    judgements: [],
    events: [],
    eventSeq: 0,
    lockHeld: false,
    stepEntered: false,
    startedAt: iso(now()),
    details: '',
    ...(patched('rollout-incident-per-run') ? { incidentRun: info.firstExecutionRunId } : {}),
  };
  /** Labels of this rollout's incidents (see `RolloutState.incidentRun`). */
  const incidentLabels = (): Record<string, string> => ({ pipeline: s.pipeline, rollout: s.rolloutId, ...(s.incidentRun ? { run: s.incidentRun } : {}) });
  /** Changes with every handler action, so waits wake on any of them. */
  let version = 0;
  const pendingAudit: (RolloutEvent & { status: RolloutStatus; routing: Routing })[] = [];
  let pendingAlert: { kind: 'failed' | 'waiting'; summary: string } | undefined;
  let lastAttributes = '';

  function record(type: RolloutEvent['type'], by: string, reason: string): void {
    const event: RolloutEvent = { seq: ++s.eventSeq, at: iso(now()), type, step: s.step, stepNumber: stepNumberOf(s.step, steps.length), by, reason };
    s.events.push(event);
    if (s.events.length > rolloutEventCap) s.events.splice(0, s.events.length - rolloutEventCap);
    pendingAudit.push({ ...event, status: s.status, routing: { ...s.routing } });
  }

  function route(mode: Routing['mode'], weightPercent: number, by: string, reason: string): void {
    s.routing = { ...s.routing, mode, weightPercent, epoch: s.routing.epoch + 1 };
    s.windowStartedAt = iso(now());
    record('routing', by, `${describeRouting(s.routing)} (epoch ${s.routing.epoch}): ${reason}`);
  }

  /** When the next judgement is due, in words (see describeJudgingAt), or '' when none is scheduled by time. */
  function judgingIn(): string {
    const step = steps[s.step];
    if (!step || s.status !== 'progressing') return '';
    const left = s.stepEndsAt ? Math.max(0, Date.parse(s.stepEndsAt) - now()) : 0;
    if ('shadow' in step) return describeJudgingAt(now() + left, now());
    let ms = 'pause' in step && typeof step.pause === 'number' ? left : 0;
    for (let i = s.step + 1; i < steps.length; i++) {
      const next = steps[i]!;
      if ('analysis' in next) return describeJudgingAt(now() + ms, now());
      if ('pause' in next && typeof next.pause === 'number') ms += next.pause;
      else return '';
    }
    return '';
  }

  function publish(): void {
    const attributes = [
      { key: rolloutSearchAttributes.status, value: s.status },
      { key: rolloutSearchAttributes.pipeline, value: s.pipeline },
    ];
    const signature = JSON.stringify(attributes.map((a) => a.value));
    if (signature !== lastAttributes) {
      upsertSearchAttributes(attributes);
      lastAttributes = signature;
    }
    s.stepDescription = steps[s.step] ? describeStep(steps[s.step]!) : 'done';
    s.stepNumber = stepNumberOf(s.step, steps.length);
    const position = `step ${s.stepNumber} of ${steps.length} (${s.stepDescription})`;
    let line: string;
    if (s.status === 'progressing') line = [`${position}: ${describeRouting(s.routing)}`, judgingIn()].filter(Boolean).join(', ');
    else if (s.status === 'paused') line = `${position}: ${describeRouting(s.routing)}, paused by ${s.pause?.by}: ${s.pause?.reason}`;
    else if (s.status === 'promoted') line = `promoted: ${describeRouting(s.routing)}`;
    else if (s.status === 'refused') line = `refused: ${s.events.at(-1)?.reason ?? 'another rollout holds this pipeline'}`;
    else line = `${s.status.replace('_', ' ')}: ${describeRouting(s.routing)}`;
    s.details = line;
    const last = s.judgements.at(-1);
    setCurrentDetails(
      [
        `**${s.pipeline}**: ${s.baselineVersion} -> ${s.version}, status **${s.status}**`,
        line,
        ...(last ? [`last judgement (step ${last.stepNumber ?? last.step + 1}): **${last.outcome}**, score ${last.score}; ${last.metrics.join('; ')}`] : []),
        ...(s.incident ? [`incident: ${s.incident}`] : []),
      ].join('\n'),
    );
  }

  // ---- human controls -------------------------------------------------------------------------
  const validated = (name: string, raw: unknown): ControlInput => {
    const r = controlInputSchema.safeParse(raw);
    if (!r.success) throw refuse('invalid_input', `${name}: ${describeZodError(r.error)}`);
    return r.data;
  };
  const notFinal = (name: string) => {
    if (isFinal(s.status)) throw refuse('invalid_state', `${name}: the rollout is already ${s.status}`);
  };

  function finish(status: 'promoted' | 'rolled_back' | 'aborted', by: string, reason: string): void {
    s.status = status;
    s.finishedAt = iso(now());
    delete s.pause;
    delete s.stepEndsAt;
    delete s.remainingMs;
    if (status === 'promoted') route('canary', 100, by, reason);
    else route('baseline', 0, by, reason);
    record(status, by, reason);
    if (status !== 'promoted') pendingAlert = { kind: 'failed', summary: `rollout ${s.rolloutId} ${status.replace('_', ' ')}: ${reason}` };
    version++;
  }

  setHandler(promoteUpdate, (raw) => {
    const c = validated('promote', raw);
    finish('promoted', c.by, c.reason);
    publish();
    return s;
  }, {
    validator: (raw) => {
      validated('promote', raw);
      notFinal('promote');
    },
    description: 'Skip the remaining steps: the canary takes 100 % of keys at the next batch boundary. Input {by, reason}.',
  });

  setHandler(abortUpdate, (raw) => {
    const c = validated('abort', raw);
    finish('aborted', c.by, c.reason);
    publish();
    return s;
  }, {
    validator: (raw) => {
      validated('abort', raw);
      notFinal('abort');
    },
    description: 'Roll back to the baseline at the next batch boundary and open an incident. Input {by, reason}.',
  });

  setHandler(pauseUpdate, (raw) => {
    const c = validated('pause', raw);
    if (s.stepEndsAt) {
      s.remainingMs = Math.max(0, Date.parse(s.stepEndsAt) - now());
      delete s.stepEndsAt;
    }
    s.status = 'paused';
    s.pause = { by: c.by, reason: c.reason, at: iso(now()), cause: 'person' };
    record('paused', c.by, c.reason);
    version++;
    publish();
    return s;
  }, {
    validator: (raw) => {
      validated('pause', raw);
      notFinal('pause');
      if (s.status === 'paused') throw refuse('invalid_state', `pause: already paused by ${s.pause?.by} (${s.pause?.reason})`);
    },
    description: 'Hold the rollout at its current step (the step timer stops) until resume. Input {by, reason}.',
  });

  setHandler(resumeUpdate, (raw) => {
    const c = validated('resume', raw);
    const cause = s.pause?.cause;
    s.status = 'progressing';
    delete s.pause;
    if (cause === 'person' && s.remainingMs !== undefined) {
      s.stepEndsAt = iso(now() + s.remainingMs);
      delete s.remainingMs;
    }
    record('resumed', c.by, c.reason);
    // A person's go-ahead after a pause() step or a marginal/inconclusive judgement moves on.
    if (cause !== 'person') advance(c.by, `resumed: ${c.reason}`);
    version++;
    publish();
    return s;
  }, {
    validator: (raw) => {
      validated('resume', raw);
      notFinal('resume');
      if (s.status !== 'paused') throw refuse('invalid_state', `resume: the rollout is ${s.status}, not paused`);
    },
    description: 'Continue a paused rollout; after a pause() step or a marginal/inconclusive judgement this accepts it and goes to the next step. Input {by, reason}.',
  });

  setHandler(stateQuery, () => s, { description: 'Rollout state: status, step, routing (mode, weight, epoch), judgements, recent audit events.' });

  // ---- step machine ---------------------------------------------------------------------------
  function advance(by: string, reason: string): void {
    s.step++;
    s.stepEntered = false;
    delete s.stepEndsAt;
    delete s.remainingMs;
    s.stepStartedAt = iso(now());
    record('step', by, steps[s.step] ? `step ${s.step + 1} of ${steps.length}: ${describeStep(steps[s.step]!)} (${reason})` : `all steps done (${reason})`);
  }

  function pauseFor(cause: 'step' | 'judgement', reason: string): void {
    s.status = 'paused';
    s.pause = { by: cause === 'step' ? 'pause step' : 'judgement', reason, at: iso(now()), cause };
    record('paused', s.pause.by, reason);
    pendingAlert = { kind: 'waiting', summary: `rollout ${s.rolloutId} waits for a person: ${reason}` };
  }

  /**
   * Publishes the routing to the pipeline when it changed since the last publication. Only the
   * holder of the pipeline's lock publishes (a refused rollout must not touch the running one's
   * routing). Versioned with patched(): runs started before the pipeline obeyed rollouts replay
   * without these activities.
   */
  async function publishRouting(): Promise<void> {
    if (!s.lockHeld || s.status === 'refused' || s.routing.epoch <= (s.publishedEpoch ?? 0)) return;
    if (!patched('rollout-publishes-routing')) return;
    if (s.status === 'promoted' && s.routing.mode === 'canary') {
      s.handover = await side.handOverProcessor({
        pipeline: s.pipeline,
        rolloutId: s.rolloutId,
        canaryVersion: s.version,
        flags: input.flags,
        by: `rollout ${s.rolloutId}`,
        reason: `promoted: ${s.events.at(-1)?.reason ?? 'all steps passed'}`,
      });
    }
    await side.publishRouting({
      pipeline: s.pipeline,
      rolloutId: s.rolloutId,
      routing: s.routing,
      step: Math.min(s.step, steps.length - 1),
      status: s.status,
      final: isFinal(s.status),
      flags: input.flags,
      fields: input.analysis.metrics.filter((m) => m.name.startsWith('field:')).map((m) => m.name.slice('field:'.length)),
      publishedAt: iso(now()),
    });
    s.publishedEpoch = s.routing.epoch;
  }

  async function flush(): Promise<void> {
    await publishRouting();
    if (pendingAudit.length > 0) {
      const events = pendingAudit.splice(0, pendingAudit.length);
      await side.recordRolloutEvents({
        rolloutId: s.rolloutId,
        pipeline: s.pipeline,
        baselineVersion: s.baselineVersion,
        canaryVersion: s.version,
        workflowId: info.workflowId,
        runId: info.runId,
        firstRunId: info.firstExecutionRunId,
        events,
      });
    }
    if (pendingAlert) {
      const alert = pendingAlert;
      pendingAlert = undefined;
      await fireAlert(alert.kind, alert.summary);
    }
    // A person acted (resume, promote, abort) or the wait ended: the "waiting for a person" incident
    // resolves, so it stops escalating and repeating. Versioned: older runs replay without it.
    if (s.waitingIncident && s.status !== 'paused' && patched('rollout-clears-waiting-incident')) {
      const last = s.events.at(-1);
      await side.clearRolloutAlert({
        detector: rolloutAlertDetectors.waiting,
        labels: incidentLabels(),
        note: `rollout ${s.rolloutId} no longer waits: ${s.status}${last ? ` (${last.type} by ${last.by}: ${last.reason})` : ''}`,
        clearedAt: iso(now()),
      });
      delete s.waitingIncident;
    }
  }

  async function fireAlert(kind: 'failed' | 'waiting', summary: string): Promise<void> {
    const last = s.judgements.at(-1);
    const firing: AlertFiring = {
      detector: rolloutAlertDetectors[kind],
      labels: incidentLabels(),
      severity: kind === 'failed' ? input.notify.severity : 'warning',
      summary: summary.slice(0, 1000),
      value: last?.score ?? 0,
      threshold: input.analysis.passScore,
      windowStart: s.windowStartedAt,
      windowEnd: iso(now()),
      pipeline: s.pipeline,
      // The rollout id travels as a query parameter ({rollout:String}, the alert's `rollout` label), never spliced in.
      query: 'SELECT judged_at, metric, verdict, p_value, effect, reason FROM canary_judgements FINAL WHERE rollout_id = {rollout:String} ORDER BY judged_at DESC, metric',
      firedAt: iso(now()),
    };
    s.incident = await side.fireRolloutAlert(firing);
    if (kind === 'waiting') s.waitingIncident = s.incident;
  }

  async function judgeNow(): Promise<void> {
    const epoch = s.routing.epoch;
    const step = s.step;
    const summary = await judging.judgeCanary({
      rolloutId: s.rolloutId,
      pipeline: s.pipeline,
      step,
      stepNumber: step + 1,
      epoch,
      seq: s.eventSeq + 1,
      baselineVersion: s.baselineVersion,
      canaryVersion: s.version,
      windowStart: s.windowStartedAt,
      windowEnd: iso(now()),
      analysis: input.analysis,
    });
    const { reason, ...kept } = summary;
    s.judgements.push({ ...(kept as JudgementSummary), stepNumber: stepNumberOf(step, steps.length) });
    if (s.judgements.length > 50) s.judgements.splice(0, s.judgements.length - 50);
    record('judgement', 'judge', `${summary.outcome}, score ${summary.score}: ${reason}; ${summary.metrics.join('; ')}`);
    // A person may have acted while the judge ran: their decision stands.
    if (s.status !== 'progressing' || s.step !== step) return;
    if (summary.outcome === 'pass') advance('judge', `judgement passed (score ${summary.score})`);
    else if (summary.outcome === 'fail') finish('rolled_back', 'judge', `judgement failed: ${reason}`);
    else pauseFor('judgement', `judgement ${summary.outcome} (score ${summary.score}): ${reason}`);
  }

  /** Runs the entry actions of the current step once. */
  function enter(step: RolloutStep): void {
    s.stepEntered = true;
    // The step starts when its entry actions run (a timed step's duration counts from here).
    s.stepStartedAt = iso(now());
    if ('shadow' in step) {
      route('shadow', 0, 'rollout', `step ${s.step + 1}: shadow for ${formatDuration(step.shadow)}`);
      s.stepEndsAt = iso(now() + step.shadow);
    } else if ('weight' in step) {
      route('weight', step.weight, 'rollout', `step ${s.step + 1}: weight ${step.weight} %`);
    } else if ('pause' in step) {
      if (typeof step.pause === 'number') s.stepEndsAt = iso(now() + step.pause);
      else pauseFor('step', `step ${s.step + 1} is pause(): waiting for resume or promote`);
    }
  }

  /** Waits until `deadline` (ms) or any handler action; true when the deadline passed. */
  async function waitUntil(deadline: number): Promise<boolean> {
    const v = version;
    const left = deadline - now();
    if (left <= 0) return true;
    return !(await condition(() => version !== v, left));
  }

  // ---- the target must be a registered processor version ------------------------------------
  // Checked by an activity against the worker's catalogue and the pipeline's processor, before the
  // lock is taken or anything is published. Versioned: runs started before the check replay without it.
  if (!carried && patched('rollout-checks-target')) {
    let checked: Awaited<ReturnType<RolloutActivities['checkRolloutTarget']>>;
    try {
      checked = await side.checkRolloutTarget({ pipeline: input.pipeline, version: input.version, flags: input.flags, metrics: input.analysis.metrics.map((m) => m.name) });
    } catch (err) {
      if (err instanceof ActivityFailure && err.cause instanceof ApplicationFailure && err.cause.type === 'invalid_input') {
        throw refuseStart(input.pipeline, 'invalid_input', err.cause.message);
      }
      throw err;
    }
    // The baseline as recorded at start: the version the pipeline runs (`request-enriched@1`), not
    // the word `current` (the input's default). Results recorded before the check reported it have none.
    if (input.baselineVersion === 'current' && checked.baseline) {
      s.baselineVersion = checked.baseline;
      s.routing = { ...s.routing, baselineVersion: checked.baseline };
    }
  }

  // ---- one rollout per pipeline ---------------------------------------------------------------
  if (!s.lockHeld) {
    const lockId = rolloutLockWorkflowId(s.pipeline);
    try {
      await startChild(rolloutLock, {
        workflowId: lockId,
        args: [{ pipeline: s.pipeline, holder: s.rolloutId }],
        parentClosePolicy: ParentClosePolicy.ABANDON,
      });
      s.lockHeld = true;
    } catch (err) {
      if (!(err instanceof WorkflowExecutionAlreadyStartedError)) throw err;
      const holder = await side.rolloutLockHolder(s.pipeline);
      if (holder !== s.rolloutId) {
        s.status = 'refused';
        s.finishedAt = iso(now());
        record('refused', input.requestedBy, `pipeline ${s.pipeline} already has a running rollout: ${holder ?? '(ending)'}`);
        publish();
        await flush();
        throw refuse('rollout_refused', `pipeline "${s.pipeline}" already has a running rollout: ${holder ?? '(one that is ending; retry in a moment)'} (one rollout per pipeline at a time)`);
      }
      s.lockHeld = true;
    }
    if (!carried) record('started', input.requestedBy, `${s.baselineVersion} -> ${s.version}: ${steps.map(describeStep).join('; ')}`);
  }

  while (!isFinal(s.status)) {
    publish();
    await flush();
    if (isFinal(s.status)) break;
    const historyFull = workflowInfo().continueAsNewSuggested || workflowInfo().historyLength > (input.historyLimit ?? 5_000);
    if (historyFull) {
      await condition(allHandlersFinished);
      if (!isFinal(s.status) && pendingAudit.length === 0 && !pendingAlert) {
        record('continued', 'rollout', `continue-as-new at history length ${workflowInfo().historyLength}`);
        await flush();
        return await continueAsNew<typeof canaryRollout>(rawInput, s);
      }
      continue;
    }
    if (s.status === 'paused') {
      // Waiting for a person: remind through the alert workflow every remindEvery.
      const woke = !(await waitUntil(now() + input.notify.remindEvery));
      if (!woke && s.status === 'paused') {
        record('reminded', 'rollout', `still paused since ${s.pause?.at} (${s.pause?.reason})`);
        pendingAlert = { kind: 'waiting', summary: `rollout ${s.rolloutId} still waits for a person since ${s.pause?.at}: ${s.pause?.reason}` };
      }
      continue;
    }
    const step = steps[s.step];
    if (!step) {
      finish('promoted', 'rollout', 'all steps passed');
      continue;
    }
    if (!s.stepEntered) {
      enter(step);
      continue;
    }
    if ('shadow' in step || ('pause' in step && typeof step.pause === 'number')) {
      if (!(await waitUntil(Date.parse(s.stepEndsAt ?? iso(now()))))) continue;
      if (s.status !== 'progressing') continue;
      if ('shadow' in step) await judgeNow();
      else advance('rollout', `pause of ${formatDuration(step.pause as number)} over`);
      continue;
    }
    if ('analysis' in step) {
      await judgeNow();
      continue;
    }
    // weight: takes effect at once; the following steps decide how long it runs.
    advance('rollout', `weight ${'weight' in step ? step.weight : 0} % set`);
  }

  // ---- end ------------------------------------------------------------------------------------
  publish();
  await flush();
  if (s.lockHeld && s.status !== 'refused') {
    try {
      await getExternalWorkflowHandle(rolloutLockWorkflowId(s.pipeline)).signal(releaseSignal, { holder: s.rolloutId });
    } catch {
      // The lock already ended (its holder check saw this run finish): nothing to release.
    }
    s.lockHeld = false;
  }
  await condition(allHandlersFinished);
  return s;
}
