/**
 * The detector path's entry into alerting: signal-with-start of the incident workflow whose id is
 * derived from the fingerprint, so repeated firings reach the open incident instead of opening
 * duplicates, and a firing after the incident closed starts a new run (a new incident).
 */
import { WorkflowNotFoundError, type Client } from '@temporalio/client';
import {
  alertClearSchema,
  alertFingerprint,
  alertFiringSchema,
  clearSignalName,
  alertWorkflowId,
  alertWorkflowType,
  fireSignalName,
  type AlertClear,
  type AlertFiring,
} from '../../schemas/alerting/alert.js';

/** Sends one firing to its incident workflow (starting it if none is open); returns the workflow id. */
export async function fireAlert(client: Client, taskQueue: string, firing: AlertFiring): Promise<{ workflowId: string; fingerprint: string }> {
  const valid = alertFiringSchema.parse(firing);
  const fingerprint = alertFingerprint(valid.detector, valid.labels);
  const workflowId = alertWorkflowId(fingerprint);
  await client.workflow.signalWithStart(alertWorkflowType, {
    workflowId,
    taskQueue,
    args: [{ fingerprint, firing: valid }],
    signal: fireSignalName,
    signalArgs: [valid],
    // What the Temporal UI shows for the incident in words (the workflow adds its live details).
    staticSummary: `${valid.severity.toUpperCase()} ${valid.detector}: ${valid.summary}`.slice(0, 400),
    staticDetails: [
      `**${valid.detector}** fired: ${valid.summary}`,
      `value ${valid.value} vs threshold ${valid.threshold}, window ${valid.windowStart} .. ${valid.windowEnd}`,
      `labels: ${Object.entries(valid.labels).map(([k, v]) => `${k}=${v}`).join(', ') || '(none)'}`,
      ...(valid.pipeline ? [`pipeline: ${valid.pipeline}`] : []),
      ...(valid.query ? ['query:', '```sql', valid.query, '```'] : []),
    ].join('\n'),
  });
  return { workflowId, fingerprint };
}

/**
 * Tells an open incident that its detector's clear condition held (`clear` signal): it resolves by
 * itself. Returns false when no incident is open for the fingerprint (nothing to clear).
 */
export async function clearAlert(client: Client, detector: string, labels: Record<string, string>, clear: AlertClear): Promise<{ workflowId: string; cleared: boolean }> {
  const valid = alertClearSchema.parse(clear);
  const workflowId = alertWorkflowId(alertFingerprint(detector, labels));
  try {
    await client.workflow.getHandle(workflowId).signal(clearSignalName, valid);
    return { workflowId, cleared: true };
  } catch (err) {
    if (err instanceof WorkflowNotFoundError) return { workflowId, cleared: false };
    throw err;
  }
}
