/**
 * `npm run stack:up | stack:down | stack:status`: starts (or reuses) the local Temporal, Kafka and
 * ClickHouse servers and leaves them running in the background, stops the ones it started, or
 * shows what is running.
 */
import { ConfigError, loadConfig, type PlatformConfig } from '../../schemas/config.js';
import { endpoints, ensureStack, stackStatus, stopStack, type ComponentStatus } from './stack.js';
import { temporalBinary } from './temporal.js';

const usage = `usage: tsx infra/local/cli.ts <up|down|status>
  up      install what is missing, start (or reuse) Temporal, Kafka and ClickHouse, print the endpoints;
          the servers keep running after this command exits
  down    stop the servers this stack started (PID files in the state folder)
  status  show each server: running, pid, port, address, version, log file`;

/** Renders rows as a left-aligned text table with a header. */
export function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]): string => cells.map((cell, i) => cell.padEnd(widths[i] ?? 0)).join('  ').trimEnd();
  return [line(header), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n');
}

function statusTable(status: ComponentStatus[]): string {
  return table(
    ['component', 'running', 'mode', 'pid', 'port', 'address', 'version', 'log'],
    status.map((s) => [
      s.component,
      s.running === null ? '?' : s.running ? 'yes' : 'no',
      s.mode,
      s.pid === null ? '-' : String(s.pid),
      s.port === null ? '-' : String(s.port),
      s.address,
      s.version ?? '-',
      s.log ?? '-',
    ]),
  );
}

function printEndpoints(config: PlatformConfig): void {
  const e = endpoints(config);
  console.log('');
  console.log(`Temporal     ${e.temporalAddress}   (namespace ${config.TEMPORAL_NAMESPACE})`);
  if (e.temporalUiUrl) console.log(`Temporal UI  ${e.temporalUiUrl}`);
  console.log(`Kafka        ${e.kafkaBrokers.join(',')}`);
  console.log(`ClickHouse   ${e.clickhouseUrl}`);
  if (!config.TEMPORAL_ADDRESS) {
    // Absolute: the line is pasted into other shells and folders.
    const cli = temporalBinary(config);
    console.log(`Temporal CLI ${cli}   (e.g. ${cli} workflow list --address ${e.temporalAddress})`);
  }
}

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (rest.length > 0 || !command || !['up', 'down', 'status'].includes(command)) {
    console.error(usage);
    return command === 'help' || command === '--help' ? 0 : 2;
  }
  const config = loadConfig();
  const log = (line: string): void => console.log(line);
  if (command === 'up') {
    const started = Date.now();
    await ensureStack(config, { log });
    printEndpoints(config);
    console.log(`\nstack up in ${((Date.now() - started) / 1000).toFixed(1)} s; stop it with npm run stack:down`);
    return 0;
  }
  if (command === 'down') {
    const results = await stopStack(config, { log });
    if (results.every((r) => r.pid === null)) console.log('nothing to stop: no server started by this stack is running');
    return results.every((r) => r.pid === null || r.stopped) ? 0 : 1;
  }
  const status = await stackStatus(config);
  console.log(statusTable(status));
  return status.every((s) => s.running !== false) ? 0 : 3;
}

main(process.argv.slice(2)).then(
  // Exit explicitly: the servers are detached and unref'd, but client sockets may linger briefly.
  (code) => process.exit(code),
  (err: unknown) => {
    if (err instanceof ConfigError) console.error(err.message);
    else console.error(err instanceof Error ? err.message : String(err));
    process.exit(1);
  },
);
