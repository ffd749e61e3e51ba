/**
 * Group coordinator (type `alertGroup`, id `alert-group-<receiver>-<hash of group key>`): batches
 * the first notifications of the incidents of one routing group, Alertmanager style. The first
 * alert of a batch waits group_wait so that its siblings join it; later alerts wait until
 * group_interval after the previous batch. One notification per target carries the whole batch;
 * each incident is told the outcome (`groupNotified`) and records it. The coordinator ends after a
 * quiet group_interval; the next alert signal-with-starts a new run.
 */
import {
  ActivityFailure,
  ApplicationFailure,
  allHandlersFinished,
  condition,
  continueAsNew,
  defineSignal,
  getExternalWorkflowHandle,
  log,
  proxyActivities,
  setHandler,
  sleep,
  workflowInfo,
} from '@temporalio/workflow';
import type { NotifyActivities } from '../../activities/alerting/notify.js';
import {
  alertGroupInputSchema,
  describeZodError,
  groupEnqueueInputSchema,
  type AlertGroupInput,
  type GroupEnqueueInput,
} from '../../schemas/alerting/alert-incident.js';
import type { NotifiedAlert, NotifyResult } from '../../schemas/alerting/notification.js';
import { groupNotifiedSignal, notifyRetry } from './alert.js';

/** `enqueue` (signal): an incident joins the group's next batch. */
export const enqueueSignal = defineSignal<[GroupEnqueueInput]>('enqueue');

const channels = proxyActivities<NotifyActivities>({
  startToCloseTimeout: '1m',
  scheduleToCloseTimeout: '10m',
  retry: notifyRetry,
});

/** The group coordinator workflow; returns the number of batches it sent. */
export async function alertGroup(rawInput: AlertGroupInput): Promise<{ batches: number }> {
  const parsed = alertGroupInputSchema.safeParse(rawInput);
  if (!parsed.success) {
    throw ApplicationFailure.create({ type: 'invalid_input', nonRetryable: true, message: `alertGroup input: ${describeZodError(parsed.error)}` });
  }
  const input = parsed.data;
  const info = workflowInfo();
  const queue = new Map<string, NotifiedAlert>();
  let firstArrivalMs: number | undefined;

  setHandler(
    enqueueSignal,
    (raw) => {
      const item = groupEnqueueInputSchema.safeParse(raw);
      if (!item.success) {
        log.warn('alertGroup: enqueue signal rejected', { error: describeZodError(item.error) });
        return;
      }
      queue.set(item.data.incidentWorkflowId, item.data.alert);
      const arrived = item.data.arrivedAt !== undefined ? Math.min(Date.parse(item.data.arrivedAt), Date.now()) : Date.now();
      firstArrivalMs = Math.min(firstArrivalMs ?? arrived, arrived);
    },
    { description: 'An incident joins the next batch: { "incidentWorkflowId": "alert-...", "alert": { ... } }.' },
  );

  let lastSentMs: number | undefined;
  let batches = 0;
  for (;;) {
    if (queue.size === 0) {
      const arrived = await condition(() => queue.size > 0, input.groupIntervalMs);
      if (!arrived) break;
    }
    const sendAt = lastSentMs === undefined ? firstArrivalMs! + input.groupWaitMs : lastSentMs + input.groupIntervalMs;
    if (sendAt > Date.now()) await sleep(sendAt - Date.now());

    const batch = [...queue];
    queue.clear();
    firstArrivalMs = undefined;
    batches++;
    // As Alertmanager's aggregation group, the next flush is group_interval after this one starts,
    // however long the deliveries take.
    const flushStartedMs = Date.now();
    const notificationId = `${info.workflowId}/${info.runId.slice(0, 8)}/b${batches}`;
    const alerts = batch.map(([, alert]) => alert);
    const results = await Promise.all(
      input.targets.map((target) =>
        channels
          .notify({ notificationId, kind: 'trigger', receiver: input.receiver, target, alerts })
          .catch((err: unknown): NotifyResult => failure(notificationId, target, err)),
      ),
    );
    lastSentMs = flushStartedMs;
    await Promise.all(
      batch.map(([incidentWorkflowId]) =>
        getExternalWorkflowHandle(incidentWorkflowId)
          .signal(groupNotifiedSignal, { notificationId, receiver: input.receiver, batchSize: batch.length, results })
          // The incident may have been resolved meanwhile; nothing left to tell it.
          .catch((err: unknown) => log.info('alertGroup: incident gone', { incidentWorkflowId, error: String(err) })),
      ),
    );
    if (workflowInfo().continueAsNewSuggested && queue.size === 0) {
      await condition(allHandlersFinished);
      return await continueAsNew<typeof alertGroup>(input);
    }
  }
  await condition(allHandlersFinished);
  return { batches };
}

function failure(notificationId: string, target: string, err: unknown): NotifyResult {
  const cause = err instanceof ActivityFailure && err.cause ? err.cause : err;
  const detail = cause instanceof ApplicationFailure ? `${cause.type ?? 'error'}: ${cause.message}` : cause instanceof Error ? cause.message : String(cause);
  const attempts = err instanceof ActivityFailure && String(err.retryState) === 'MAXIMUM_ATTEMPTS_REACHED' ? notifyRetry.maximumAttempts : 1;
  return { notificationId, target, delivered: false, duplicate: false, detail, attempts };
}
