/**
 * Stopping a pipeline's children: asks the Temporal server to cancel each workflow by id and
 * returns once the server has accepted every request. The supervisor calls it when it is
 * cancelled, before it completes as cancelled.
 *
 * Why an activity rather than only `getExternalWorkflowHandle(id).cancel()` from the workflow:
 * CI saw the supervisor issue its three RequestCancelExternalWorkflowExecution commands and
 * complete as cancelled in the same workflow task; the children never got the request and ran on.
 * A request the server confirmed to a client cannot be lost that way, and the activity keeps the
 * supervisor open until it is confirmed.
 */
import { WorkflowNotFoundError, type Client } from '@temporalio/client';

/** Input of `cancelWorkflows`. */
export interface CancelWorkflowsInput {
  /** Workflow ids (latest run of each is cancelled). */
  workflowIds: string[];
}

/** What happened to each id: `requested`, or `absent` when no such workflow runs (already closed or never started). */
export interface CancelOutcome { workflowId: string; outcome: 'requested' | 'absent' }

/** Dependencies of {@link createConsumerStopActivities}. */
export interface ConsumerStopDeps {
  temporal: Client;
}

/** Creates the `cancelWorkflows` activity. */
export function createConsumerStopActivities(deps: ConsumerStopDeps) {
  return {
    /**
     * Requests cancellation of every workflow in `workflowIds`.
     *
     * @throws the client's error for anything but "not found / already closed" (the activity is
     *   retried), so a Temporal outage delays the stop instead of losing it.
     */
    async cancelWorkflows(input: CancelWorkflowsInput): Promise<CancelOutcome[]> {
      return Promise.all(input.workflowIds.map(async (workflowId): Promise<CancelOutcome> => {
        try {
          await deps.temporal.workflow.getHandle(workflowId).cancel();
          return { workflowId, outcome: 'requested' };
        } catch (err) {
          if (err instanceof WorkflowNotFoundError) return { workflowId, outcome: 'absent' };
          throw err;
        }
      }));
    },
  };
}
