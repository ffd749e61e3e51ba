/** A workflow whose activity fails twice, so the SDK logs its multi-line `Activity failed` warnings. */
import { proxyActivities } from '@temporalio/workflow';

const { explode } = proxyActivities<{ explode(): Promise<void> }>({
  startToCloseTimeout: '10 seconds',
  retry: { maximumAttempts: 2, initialInterval: '100 milliseconds' },
});

/** Calls `explode` (which always throws) and lets the failure end the workflow. */
export async function explodeTwice(): Promise<void> {
  await explode();
}
