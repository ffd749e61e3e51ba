/**
 * Measurement (a): the platform itself. A worker in a child process, the `pipeline` workflow
 * started on the topic, and the clock running until ClickHouse holds every valid event and every
 * dead letter; then the exactly-once check and the batch statistics from lineage_batches.
 */
import type { ClickHouseClient } from '@clickhouse/client';
import type { Client } from '@temporalio/client';
import type { StackEndpoints } from '../../infra/local/endpoints.js';
import { partitionWorkflowId, pipelineWorkflowId, type PipelineInputRaw } from '../../schemas/ingest/pipeline.js';
import { CpuMeter } from './cpu.js';
import type { Deadline } from './deadline.js';
import type { LandedCounts } from './report.js';
import type { RateResult } from './raw-consume.js';
import { landedCounts, rows } from './warehouse-util.js';
import { procRssMb, WorkerProcess, type PeakRss } from './worker-process.js';

/** Names and sizes the platform measurement works with. */
export interface PlatformRun {
  pipelineId: string;
  topic: string;
  partitions: number[];
  taskQueue: string;
  database: string;
  /** Valid and invalid events the topic holds (what must land, what must be dead-lettered). */
  expectedValid: number;
  expectedInvalid: number;
  /** Where the worker child's output goes. */
  workerLog: string;
  /** The prebuilt workflow bundle the worker runs. */
  workflowBundlePath: string;
  /** Run the pipeline with this processor (its rows land in typed tables besides `events`). */
  processor?: { name: string; version: number };
  /** More environment for the worker child (e.g. BENCH_OBSERVABILITY=on). @default none */
  extraEnv?: Record<string, string>;
}

/** What (a) measured. */
export interface PlatformResult extends RateResult, LandedCounts {
  exactlyOnce: boolean;
  /** Distinct landed batches and their mean size in offsets, from lineage_batches. */
  batches: number | null;
  meanBatchSize: number | null;
  workerPeakRss: PeakRss | null;
  /** The worker's RSS once it was polling, before any event (its idle footprint). */
  workerReadyRssMb: number | null;
  /** How the end of the run was timed. */
  timing: string;
  /** CPU seconds per process from workflow start until every row had landed. */
  cpu: Record<string, number>;
  /** The worker's RSS every ~2 s while landing: growth with the backlog vs a steady state. */
  workerRssSamples: { seconds: number; rssMb: number; landed: number }[];
}

interface LineageStats {
  batches: string;
  mean: number | null;
  first_ms: string | null;
  last_ms: string | null;
}

/**
 * Runs (a). The worker is always stopped and the workflows always terminated before this
 * returns or throws (a running worker would keep the bench alive and keep landing rows).
 */
export async function measurePlatform(
  temporal: Client,
  warehouse: ClickHouseClient,
  endpoints: StackEndpoints,
  run: PlatformRun,
  deadline: Deadline,
  log: (line: string) => void,
  meter: CpuMeter,
): Promise<PlatformResult> {
  const worker = WorkerProcess.start(endpoints, { database: run.database, taskQueue: run.taskQueue, workflowBundlePath: run.workflowBundlePath, ...(run.extraEnv ? { extraEnv: run.extraEnv } : {}) }, run.workerLog);
  const workflowId = pipelineWorkflowId(run.pipelineId);
  let started = false;
  let peak: PeakRss | null = null;
  try {
    await worker.ready(Math.min(120_000, deadline.remainingMs()));
    const readyRss = await procRssMb(worker.pid, 'VmRSS');
    log(`worker ready (pid ${worker.pid}, RSS ${readyRss?.toFixed(0) ?? '?'} MB, task queue ${run.taskQueue}, log ${run.workerLog})`);
    const input: PipelineInputRaw = {
      pipelineId: run.pipelineId,
      topic: run.topic,
      partitions: run.partitions.length,
      startFrom: 'earliest',
      // Alerts are not what is measured, and a fired alert would leave workflows behind.
      detector: { enabled: false },
      ...(run.processor ? { processor: run.processor } : {}),
    };
    meter.track('worker', worker.pid);
    const cpuBefore = await meter.sample();
    const startedWall = Date.now();
    const startedAt = performance.now();
    await temporal.workflow.start('pipeline', { taskQueue: run.taskQueue, workflowId, args: [input] });
    started = true;
    log(`started workflow ${workflowId}; waiting for ${run.expectedValid} events and ${run.expectedInvalid} dead letters`);
    let last: LandedCounts = { landed: 0, uniqueOffsets: 0, deadLetters: 0 };
    let lastLogged = 0;
    let lastSampled = 0;
    const rssSamples: PlatformResult['workerRssSamples'] = [];
    await deadline.waitFor(
      'platform pipeline',
      async () => {
        last = await landedCounts(warehouse);
        if (performance.now() - lastSampled >= 2_000) {
          lastSampled = performance.now();
          const rss = await procRssMb(worker.pid, 'VmRSS');
          if (rss !== null) rssSamples.push({ seconds: Math.round(lastSampled - startedAt) / 1000, rssMb: Math.round(rss), landed: last.uniqueOffsets + last.deadLetters });
        }
        if (performance.now() - lastLogged > 10_000) {
          lastLogged = performance.now();
          log(`  landed ${last.uniqueOffsets}/${run.expectedValid}, dead letters ${last.deadLetters}/${run.expectedInvalid}`);
        }
        return last.uniqueOffsets >= run.expectedValid && last.deadLetters >= run.expectedInvalid ? true : undefined;
      },
      500,
      () => `landed ${last.uniqueOffsets}/${run.expectedValid}, dead letters ${last.deadLetters}/${run.expectedInvalid}; worker log ${run.workerLog}`,
    );
    const polledSeconds = (performance.now() - startedAt) / 1000;
    const cpu = CpuMeter.delta(cpuBefore, await meter.sample());
    meter.untrack('worker');

    // Stop everything that writes before the final counts, so a late duplicate would be seen.
    await terminateAll(temporal, workflowId, run);
    started = false;
    peak = await worker.stop(60_000);

    const final = await landedCounts(warehouse);
    const [stats] = await rows<LineageStats>(
      warehouse,
      `SELECT uniqExact(batch_id) AS batches, avg(to_offset - from_offset) AS mean,
              toUnixTimestamp64Milli(min(started_at)) AS first_ms, toUnixTimestamp64Milli(max(finished_at)) AS last_ms
       FROM lineage_batches FINAL WHERE pipeline = {pipeline:String} AND to_offset > from_offset`,
      { pipeline: run.pipelineId },
    );
    const lastMs = stats?.last_ms ? Number(stats.last_ms) : null;
    const firstMs = stats?.first_ms ? Number(stats.first_ms) : null;
    // The poll loop sees the end up to one interval late; the last batch's finish time does not.
    const lineageSeconds = lastMs === null ? null : (lastMs - startedWall) / 1000;
    const useLineage = lineageSeconds !== null && lineageSeconds > 0 && lineageSeconds <= polledSeconds;
    const seconds = useLineage ? lineageSeconds : polledSeconds;
    const total = run.expectedValid + run.expectedInvalid;
    return {
      events: total,
      seconds,
      perSecond: total / seconds,
      firstEventMs: firstMs === null ? null : Math.max(0, firstMs - startedWall),
      ...final,
      exactlyOnce: final.landed === final.uniqueOffsets && final.uniqueOffsets === run.expectedValid,
      batches: stats ? Number(stats.batches) : null,
      meanBatchSize: stats?.mean ?? null,
      workerPeakRss: peak,
      workerReadyRssMb: readyRss,
      cpu,
      workerRssSamples: rssSamples,
      timing: useLineage
        ? `workflow start -> last lineage_batches.finished_at (poll saw it after ${polledSeconds.toFixed(2)} s)`
        : 'workflow start -> poll that saw every row',
    };
  } finally {
    if (started) await terminateAll(temporal, workflowId, run).catch((err: unknown) => log(`could not terminate ${workflowId}: ${(err as Error).message}`));
    if (peak === null) await worker.stop(30_000).catch(() => worker.kill());
  }
}

/** Terminates the supervisor and, in case they outlive it, its partition workflows. */
async function terminateAll(temporal: Client, workflowId: string, run: PlatformRun): Promise<void> {
  const ids = [workflowId, ...run.partitions.map((p) => partitionWorkflowId(run.pipelineId, run.topic, p))];
  for (const id of ids) {
    try {
      await temporal.workflow.getHandle(id).terminate('bench finished');
    } catch (err) {
      // Already closed (children end with their parent) is the normal case here.
      if (!/not found|already completed|workflow execution already/i.test((err as Error).message)) throw err;
    }
  }
}
