/**
 * A stand-in for `npm start`'s process: installs the SDK runtime with the file logger exactly as
 * workers/start.ts does, shows a live progress line, runs a real worker whose activity fails (the
 * SDK logs `Activity failed` with a stack trace), logs one SDK error, and prints a second progress
 * line. argv: <log file> <task queue> <temporal address>. Everything on stdout is "the screen".
 */
import { fileURLToPath } from 'node:url';
import { Client, Connection } from '@temporalio/client';
import { NativeConnection, Runtime, Worker } from '@temporalio/worker';
import type { PlatformConfig } from '../../../schemas/config.js';
import { installRuntime } from '../../../workers/observability/runtime.js';
import { createScreen, sdkFileLogger, startLog } from '../../../workers/start-screen.js';

const [logPath, taskQueue, address] = process.argv.slice(2) as [string, string, string];
const screen = createScreen({ tty: true });
const json = startLog(logPath, { level: 'info', secretValues: [] });
// As workers/start.ts: installRuntime with the file logger (Core's own lines forwarded to it too).
await installRuntime({ LOG_LEVEL: 'info', TEMPORAL_METRICS_PORT: 0, METRICS_HOST: '127.0.0.1' } as PlatformConfig, json, sdkFileLogger(json, (line) => screen.problem(line)));
screen.live('[+00:01] landed 1 | open alerts 0');

const connection = await NativeConnection.connect({ address });
const worker = await Worker.create({
  connection,
  taskQueue,
  workflowsPath: fileURLToPath(new URL('./failing-workflow.ts', import.meta.url)),
  activities: {
    explode: () => {
      throw new Error('boom: the sink refused the batch\n    with a second line');
    },
  },
});
const clientConnection = await Connection.connect({ address });
const client = new Client({ connection: clientConnection });
await worker.runUntil(async () => {
  const handle = await client.workflow.start('explodeTwice', { taskQueue, workflowId: `screen-${taskQueue}` });
  await handle.result().catch(() => undefined);
});
Runtime.instance().logger.error('core lost its connection\nstack line 1\nstack line 2');
// With Core's lines forwarded, the runtime logger sorts entries in a 100 ms buffer before they reach ours.
await new Promise((resolve) => setTimeout(resolve, 400));
screen.live('[+00:02] landed 2 | open alerts 1');
screen.endLive();
await clientConnection.close();
await connection.close();
