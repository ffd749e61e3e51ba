/**
 * Whether the rollout that published a pipeline's routing is still running, as the batch planner
 * asks it before it routes a batch. A rollout that ends normally publishes a final routing row; one
 * that is terminated, times out or fails hard publishes nothing, and without this check its last
 * routing row (shadow or a weight share) would stay in force for good. Chosen over an expiring row
 * renewed by the rollout (a lease): nothing depends on the rollout's worker renewing in time, the
 * rollout's history gets no renewal timers, and the answer is Temporal's own, within `ttlMs`.
 */
import { WorkflowNotFoundError, type Client } from '@temporalio/client';

/** Answers "is workflow `id` running?" with a short per-process cache (one describe per rollout and `ttlMs`). */
export class RolloutLiveness {
  private readonly answers = new Map<string, { running: boolean; at: number }>();

  /**
   * @param temporal client of the rollout's namespace
   * @param ttlMs how long one answer is reused; a terminated rollout stops routing at the first batch
   *   boundary after this. @default 5000
   * @param now clock (ms) @default Date.now
   */
  constructor(
    private readonly temporal: Client,
    private readonly ttlMs = 5000,
    private readonly now: () => number = Date.now,
  ) {}

  /**
   * True when the latest run of workflow `rolloutId` is RUNNING (a continue-as-new run counts);
   * false when it is closed in any way or unknown. Other Temporal errors are thrown (the planning
   * activity is retried rather than routing on a guess).
   */
  async isRunning(rolloutId: string): Promise<boolean> {
    const cached = this.answers.get(rolloutId);
    if (cached && this.now() - cached.at < this.ttlMs) return cached.running;
    let running: boolean;
    try {
      running = (await this.temporal.workflow.getHandle(rolloutId).describe()).status.name === 'RUNNING';
    } catch (err) {
      if (!(err instanceof WorkflowNotFoundError)) throw err;
      running = false;
    }
    this.answers.set(rolloutId, { running, at: this.now() });
    if (this.answers.size > 1000) this.answers.delete(this.answers.keys().next().value!);
    return running;
  }
}
