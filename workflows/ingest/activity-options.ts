/**
 * Activity options of the data path, shared by every workflow that lands a range (the partition
 * consumer and `replay`), so a landing and its bookkeeping are picked up after a worker dies,
 * retried after an outage and cancelled at a step boundary the same way whoever scheduled them.
 * Pure constants: workflow code imports them.
 *
 * Why every one of them has a 2 s heartbeat timeout: when Temporal is down longer than the Core
 * SDK's retry budget for a completion (10 s), the result of an activity that finished during the
 * outage is lost, and so is an activity task handed out just before the server died. The server
 * then retries the activity only when one of its timeouts fires. With only a start-to-close
 * timeout of 30 s that was up to 30 s after the attempt started: a Temporal outage of 11 s left
 * a partition idle 20.1 s after the server was back (commitProgress scheduled 50 ms before the
 * server was killed, its attempt 2 started 30 s later; test/faults/temporal-outage.test.ts). A
 * heartbeat timeout bounds that wait to 2 s whatever the activity; the short activities heartbeat
 * every 0.5 s while they run (activities/ingest/heartbeat.ts), landBatch after each step and every
 * 0.5 s.
 */
import { ActivityCancellationType, type ActivityOptions } from '@temporalio/workflow';

/** Error types no retry of a data-path activity can fix (a bad input or an impossible range). */
export const dataPathNonRetryableErrorTypes = ['invalid_input', 'range_invalid'];

/**
 * Heartbeat timeout of every data-path activity: a dead worker, or an attempt whose task or result
 * a Temporal outage lost, is retried within this. The activities heartbeat every 0.5 s and the
 * worker sends heartbeats at most 0.5 s apart (`maxHeartbeatThrottleInterval` in
 * workers/worker.ts), so a live attempt has 1.5 s of margin.
 */
export const dataPathHeartbeatTimeout = '2 seconds';

/**
 * `landBatch`'s options:
 * - `heartbeatTimeout` {@link dataPathHeartbeatTimeout}: a worker that dies mid-batch is noticed
 *   within 2 s and the same batch (same plan, same steps and tokens) retried on another worker.
 *   Heartbeats also deliver cancellation. Was 3 s: the SIGKILL pickup took 3.6-4.3 s, first rows
 *   4.6-5.3 s (test/faults/worker-kill.test.ts).
 * - `startToCloseTimeout` 15 min: a bound on one landing attempt, far above any batch.
 * - `cancellationType` WAIT_CANCELLATION_COMPLETED: a cancel (stop, pause) waits for the step in
 *   flight to finish, so no step is half landed.
 * - retry from 100 ms, doubling, at most 2 s apart: after an outage of Kafka or ClickHouse the
 *   landing runs again within about 2 s of the server answering (with 30 s it took 29.8 s after a
 *   28 s Kafka outage, test/faults/kafka-outage.test.ts); no attempt limit (retried until it
 *   succeeds or fails with one of {@link dataPathNonRetryableErrorTypes}).
 */
export const landingActivityOptions: ActivityOptions = {
  startToCloseTimeout: '15 minutes',
  heartbeatTimeout: dataPathHeartbeatTimeout,
  cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
  retry: { initialInterval: '100 milliseconds', backoffCoefficient: 2, maximumInterval: '2 seconds', nonRetryableErrorTypes: dataPathNonRetryableErrorTypes },
};

/**
 * Options of a partition's short activities, `planBatch` and `commitProgress` (one Kafka or
 * ClickHouse round trip or two): heartbeat timeout {@link dataPathHeartbeatTimeout} (see the
 * module comment), start-to-close 30 s, retry from 200 ms, doubling, at most 2 s apart (after a
 * Kafka or ClickHouse outage the partition plans again within about 2 s of the server
 * answering), no attempt limit.
 */
export const partitionStepActivityOptions: ActivityOptions = {
  startToCloseTimeout: '30 seconds',
  heartbeatTimeout: dataPathHeartbeatTimeout,
  retry: { initialInterval: '200 milliseconds', backoffCoefficient: 2, maximumInterval: '2 seconds', nonRetryableErrorTypes: dataPathNonRetryableErrorTypes },
};
