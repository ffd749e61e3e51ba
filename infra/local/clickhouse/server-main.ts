/**
 * Process entrypoint of the local ClickHouse endpoint (see http.ts):
 * `node --import tsx infra/local/clickhouse/server-main.ts --host 127.0.0.1 --port 8123 --path DIR`.
 * Prints `ready <url>` on stdout once it serves; SIGTERM/SIGINT close the engine and exit 0.
 */
import { parseArgs } from 'node:util';
import { loadConfig } from '../../../schemas/config.js';
import { startClickHouseHttp } from './http.js';

const usage = 'usage: clickhouse-server-main --path DIR [--host 127.0.0.1] [--port 8123]';

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: { host: { type: 'string', default: '127.0.0.1' }, port: { type: 'string' }, path: { type: 'string' } },
  });
  const config = loadConfig();
  const port = Number(values.port ?? config.LOCAL_CLICKHOUSE_PORT);
  if (!values.path || !Number.isInteger(port) || port < 0 || port > 65535) {
    throw new Error(`${usage}\n  got --path ${JSON.stringify(values.path)} --port ${JSON.stringify(values.port)}`);
  }
  const log = (line: string): void => console.error(`${new Date().toISOString()} ${line}`);
  const server = await startClickHouseHttp({
    host: values.host, port, dataPath: values.path, log,
    user: config.CLICKHOUSE_USER, password: config.CLICKHOUSE_PASSWORD,
  });
  let stopping = false;
  const stop = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    log(`${signal}: closing`);
    server.close().then(() => process.exit(0), (err: unknown) => {
      log(`close failed: ${err instanceof Error ? err.message : String(err)}`);
      process.exit(1);
    });
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  console.log(`ready ${server.url}`);
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});
