/**
 * Child process of the bench: one platform worker (workers/worker.ts `startWorker`) on the task
 * queue and database given by the parent through the environment, with the workflow bundle the
 * parent built (argv[2], a file path) so that webpack's bundling does not count in this
 * process's peak RSS; a production worker also runs a prebuilt bundle. Reports `ready`, and on
 * `stop` drains, then reports its own peak RSS and exits. Ends itself if the parent goes away.
 */
import { readFile } from 'node:fs/promises';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { loadConfig } from '../../schemas/config.js';
import { resolveEndpoints } from '../../workers/endpoints.js';
import { startWorker, type RunningWorker, type WorkerObservability } from '../../workers/worker.js';
import { instrumentation } from './instrumentation.js';
import { createJsonLogger } from '../../activities/observability/json-logger.js';
import type { ChildMessage, ParentMessage } from './worker-process.js';

function send(message: ChildMessage): void {
  process.send?.(message);
}

const loopDelay = monitorEventLoopDelay({ resolution: 10 });

async function main(): Promise<void> {
  const codePath = process.argv[2];
  if (!codePath) throw new Error('worker-child: expected the workflow bundle path as the first argument');
  const config = loadConfig();
  let running: RunningWorker | null = null;
  let stopping: Promise<void> | null = null;
  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      await running?.shutdown();
      // How long callbacks waited for this process's main thread while it served (activities,
      // local activities and the SDK's polling share it): one line in the worker log.
      const q = (p: number) => (loopDelay.percentile(p) / 1e6).toFixed(0);
      console.log(`event loop delay while serving (ms): p50 ${q(50)} p99 ${q(99)} max ${(loopDelay.max / 1e6).toFixed(0)}`);
      send({ type: 'stopped', maxRssKb: process.resourceUsage().maxRSS });
      process.disconnect?.();
    })();
    return stopping;
  };
  process.on('message', (m: ParentMessage) => {
    if (m.type === 'stop') void stop().then(() => process.exit(0), fail);
  });
  process.on('disconnect', () => {
    if (!stopping) void stop().then(() => process.exit(0), () => process.exit(1));
  });
  const endpoints = resolveEndpoints(config);
  // (d): everything on, exporters included (see instrumentation.ts); (a): nothing recorded.
  const observability: WorkerObservability | null = process.env.BENCH_OBSERVABILITY === 'on' ? instrumentation(config, endpoints) : null;
  running = await startWorker({
    config,
    endpoints,
    ...(observability ? { observability, log: createJsonLogger({ level: config.LOG_LEVEL }) } : {}),
    // startWorker takes the code itself (not a path); a few MB of text.
    workflowBundle: { code: await readFile(codePath, 'utf8') },
    // The bench migrated the database before starting this process.
    skipMigrations: true,
  });
  loopDelay.enable();
  send({ type: 'ready' });
  await running.done;
}

function fail(err: unknown): void {
  const message = err instanceof Error ? (err.stack ?? err.message) : String(err);
  console.error(message);
  send({ type: 'error', message: message.split('\n')[0] ?? message });
  process.exitCode = 1;
  setTimeout(() => process.exit(1), 500).unref();
}

main().catch(fail);
