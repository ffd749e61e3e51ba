/**
 * The Temporal time-skipping test server (Java), started with retries: the SDK gives the server
 * 5 s to come up, which a loaded machine (CI with other suites running) can exceed; a failed start
 * is tried again up to six times, 2 s apart.
 */
import { TestWorkflowEnvironment } from '@temporalio/testing';

/** Starts a time-skipping environment on the server at `launcher` (see ensureTemporalTestServer). */
export async function startTimeSkipping(launcher: string): Promise<TestWorkflowEnvironment> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await TestWorkflowEnvironment.createTimeSkipping({ server: { executable: { type: 'existing-path', path: launcher } } });
    } catch (err) {
      if (attempt >= 6) throw err;
      await new Promise((r) => setTimeout(r, 2000));
    }
  }
}
