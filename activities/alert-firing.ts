/**
 * The detector path's entry into alerting: signal-with-start of the incident workflow whose id is
 * derived from the fingerprint, so repeated firings reach the open incident instead of opening
 * duplicates, and a firing after the incident closed starts a new run (a new incident).
 */
import type { Client } from '@temporalio/client';
import {
  alertFingerprint,
  alertFiringSchema,
  alertWorkflowId,
  alertWorkflowType,
  fireSignalName,
  type AlertFiring,
} from '../schemas/alert.js';

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
  });
  return { workflowId, fingerprint };
}
