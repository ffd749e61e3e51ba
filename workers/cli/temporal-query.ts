/** Queries for the CLI: bounded in time, because a workflow whose worker is gone never answers. */
import type { Client } from '@temporalio/client';

/** Runs query `name` on a workflow, failing after `timeoutMs` instead of hanging. */
export async function queryWithin<T>(client: Client, workflowId: string, name: string, timeoutMs = 3000, runId?: string): Promise<T> {
  return client.connection.withDeadline(Date.now() + timeoutMs, () => client.workflow.getHandle(workflowId, runId).query<T>(name));
}

/** Visibility filter of the running pipelines, on one task queue unless `all`. */
export function runningPipelinesQuery(taskQueue: string, all: boolean, pipelineId?: string): string {
  const clean = (v: string): string => v.replace(/["\\]/g, '');
  return [
    'WorkflowType = "pipeline"',
    'ExecutionStatus = "Running"',
    ...(all ? [] : [`TaskQueue = "${clean(taskQueue)}"`]),
    ...(pipelineId ? [`Pipeline = "${clean(pipelineId)}"`] : []),
  ].join(' AND ');
}
