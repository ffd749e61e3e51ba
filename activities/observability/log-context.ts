/**
 * The data-path context of the code running now: which pipeline and batch, which workflow run.
 * The activity interceptor (see interceptor.ts) enters it around every activity, so a log line
 * written anywhere below (the landing code, the Kafka fetcher, ClickHouse errors) carries
 * pipeline, batch id, workflow id and run id without being passed them. Node's
 * AsyncLocalStorage, the mechanism OpenTelemetry's Node context manager also uses.
 */
import { AsyncLocalStorage } from 'node:async_hooks';

/** Fields stamped on every log line written inside one activity execution. */
export interface DataPathContext {
  /** Activity type, e.g. `landBatch`. */
  activity?: string;
  pipeline?: string;
  /** `<pipeline>/<topic>/<partition>/<from>-<to>` for landings. */
  batchId?: string;
  workflowId?: string;
  runId?: string;
  attempt?: number;
}

const storage = new AsyncLocalStorage<DataPathContext>();

/** Runs `fn` with `context` as the data-path context of everything it calls. */
export function withDataPathContext<T>(context: DataPathContext, fn: () => T): T {
  return storage.run(context, fn);
}

/** The data-path context of the caller, or undefined outside any activity. */
export function currentDataPathContext(): DataPathContext | undefined {
  return storage.getStore();
}
