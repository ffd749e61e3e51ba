/**
 * Routing activities of the alert workflow: `planAlert` applies the alerting config (validated
 * once at worker start) to a firing, so workflow code never reads files; `enqueueGroupAlert`
 * signal-with-starts the group coordinator, which workflow code cannot do itself.
 * Also `loadAlertingConfigFile`, the worker's start-up loader of infra/alerting/policy.json.
 */
import type { Client } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import { Context } from '@temporalio/activity';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { alertingConfigSchema, planAlert, routingLabels, type AlertingConfig, type AlertPlan } from '../../schemas/alerting/alert-policy.js';
import { severitySchema } from '../../schemas/alerting/alert.js';
import {
  alertGroupInputSchema,
  alertGroupWorkflowType,
  describeZodError,
  groupEnqueueInputSchema,
  type AlertGroupInput,
  type GroupEnqueueInput,
} from '../../schemas/alerting/alert-incident.js';
import { z } from 'zod';
import { PlatformError } from '../../schemas/errors.js';

/** The repo's versioned alerting config. */
export const defaultAlertingConfigPath = fileURLToPath(new URL('../../infra/alerting/policy.json', import.meta.url));

/** Thrown when the alerting config file is missing or invalid; the worker refuses to start. */
export class AlertingConfigError extends PlatformError {
  constructor(message: string) {
    super('alerting_config_invalid', message, false);
    this.name = 'AlertingConfigError';
  }
}

/** Reads and validates an alerting config file (JSON); errors name the file and each bad field. */
export async function loadAlertingConfigFile(path: string = defaultAlertingConfigPath): Promise<AlertingConfig> {
  let raw: unknown;
  try {
    raw = JSON.parse(await readFile(path, 'utf8'));
  } catch (err) {
    throw new AlertingConfigError(`${path}: expected a readable JSON file: ${err instanceof Error ? err.message : String(err)}`);
  }
  const parsed = alertingConfigSchema.safeParse(raw);
  if (!parsed.success) throw new AlertingConfigError(`${path}: ${describeZodError(parsed.error, 'config')}`);
  return parsed.data;
}

/** Dependencies of {@link createAlertRoutingActivities}. */
export interface AlertRoutingDeps {
  /** Validated alerting config (from {@link loadAlertingConfigFile}). */
  alerting: AlertingConfig;
  /** Client for signal-with-start of group coordinators. @default the worker's client (activity context) */
  client?: Client;
  /** Task queue of the group coordinators. @default the task queue of the calling activity */
  taskQueue?: string;
}

const planInputSchema = z.object({
  detector: z.string().min(1),
  labels: z.record(z.string(), z.string()),
  severity: severitySchema,
});

/** Builds the routing activities. */
export function createAlertRoutingActivities(deps: AlertRoutingDeps) {
  const { alerting } = deps;
  return {
    /** The route, policy and grouping for a firing's labels, fixed for the incident's lifetime. */
    async planAlert(input: z.input<typeof planInputSchema>): Promise<AlertPlan> {
      const parsed = planInputSchema.safeParse(input);
      if (!parsed.success) {
        throw ApplicationFailure.create({ type: 'invalid_input', nonRetryable: true, message: `planAlert: ${describeZodError(parsed.error)}` });
      }
      return planAlert(alerting, routingLabels(parsed.data));
    },

    /** Adds an incident to its group's next batch, starting the coordinator when none is running. */
    async enqueueGroupAlert(input: { groupWorkflowId: string; group: AlertGroupInput; item: GroupEnqueueInput }): Promise<void> {
      const group = alertGroupInputSchema.parse(input.group);
      const item = groupEnqueueInputSchema.parse(input.item);
      const client = deps.client ?? Context.current().client;
      const taskQueue = deps.taskQueue ?? Context.current().info.taskQueue;
      await client.workflow.signalWithStart(alertGroupWorkflowType, {
        workflowId: input.groupWorkflowId,
        taskQueue,
        args: [group],
        signal: 'enqueue',
        signalArgs: [item],
        staticSummary: `alert group: receiver ${group.receiver}${group.groupKey ? `, ${group.groupKey}` : ''}`,
      });
    },
  };
}

/** The routing activities' type, for `proxyActivities<AlertRoutingActivities>`. */
export type AlertRoutingActivities = ReturnType<typeof createAlertRoutingActivities>;
