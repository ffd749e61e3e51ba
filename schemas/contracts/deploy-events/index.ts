/** The `deploy-events` subject: every version of its contract. Pure. */
import { defineSubject } from '../define.js';
import { deployEventsSubject, deployEventsV1 } from './v1.js';

/** Deployment state changes, for correlating incidents with deploys. */
export const deployEvents = defineSubject({
  subject: deployEventsSubject,
  description: 'One state change of a deployment (started, succeeded, failed, rolled back).',
  compatibility: 'FULL',
  versions: [{ version: 1, schema: deployEventsV1 }],
});
