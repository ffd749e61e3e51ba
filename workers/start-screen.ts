/**
 * What `npm start` shows, and where everything else goes. The screen holds this job's own lines
 * and one live progress line (rewritten in place on a terminal); every log line (the worker's and
 * the Temporal SDK's, including multi-line `Activity failed` blocks with stack traces) goes to the
 * log file. An error that needs attention also reaches the screen as exactly one line of its own:
 * the live line is ended first, so the two never share a line.
 */
import { pino } from 'pino';
import { DefaultLogger, type LogEntry } from '@temporalio/worker';
import type { Logger } from '../activities/logger.js';
import { createJsonLogger, type JsonLogger } from '../activities/observability/json-logger.js';

/** The first non-empty line of a message, at most 200 characters: what an error shows on the screen. */
export function oneLine(message: string): string {
  const first = message.split(/\r?\n/).find((l) => l.trim() !== '') ?? '';
  return first.length > 200 ? `${first.slice(0, 199)}…` : first;
}

/** The screen of `npm start`. */
export interface Screen {
  /** A line of its own (ends the live line first). */
  say(line: string): void;
  /** Replaces the live progress line (a terminal), or prints it as a line (a pipe or file). */
  live(text: string): void;
  /** An error that needs attention: one line, `  ! <first line of the message>`. */
  problem(message: string): void;
  /** Ends the live line, if any (before exiting). */
  endLive(): void;
}

/** Creates the screen over `write` (default: stdout); `tty` chooses in-place progress. */
export function createScreen(options: { write?: (text: string) => void; tty?: boolean } = {}): Screen {
  const write = options.write ?? ((text: string) => void process.stdout.write(text));
  const tty = options.tty ?? process.stdout.isTTY === true;
  let liveLine = false;
  const endLive = (): void => {
    if (liveLine) write('\n');
    liveLine = false;
  };
  return {
    say(line) {
      endLive();
      write(`${line}\n`);
    },
    live(text) {
      if (tty) {
        write(`\r\x1b[K${text}`);
        liveLine = true;
      } else {
        write(`${text}\n`);
      }
    },
    problem(message) {
      endLive();
      write(`  ! ${oneLine(message)}\n`);
    },
    endLive,
  };
}

/**
 * The JSON log (pino, one object per line, secrets masked) that `npm start` appends to `path`.
 * Open it once and hand it to {@link fileLogger} and {@link sdkFileLogger}.
 */
export function startLog(path: string, options: { level: 'debug' | 'info' | 'warn' | 'error'; secretValues: readonly string[] }): JsonLogger {
  return createJsonLogger({ level: options.level, component: 'worker', secretValues: options.secretValues, destination: pino.destination({ dest: path, append: true, sync: true, mkdir: true }) });
}

/** The worker's logger: every line to the JSON log; ERROR lines also to `onProblem` (one line). */
export function fileLogger(json: JsonLogger, onProblem: (line: string) => void): Logger {
  return {
    debug: (message, meta) => json.debug(message, meta),
    info: (message, meta) => json.info(message, meta),
    warn: (message, meta) => json.warn(message, meta),
    error: (message, meta) => {
      json.error(message, meta);
      onProblem(`${message}${typeof meta?.error === 'string' ? `: ${meta.error}` : ''}`);
    },
  };
}

/**
 * The Temporal SDK's logger for `Runtime.install({ logger })` (install it before anything creates
 * the runtime): Core and worker entries at INFO and above into the JSON log (component `temporal`,
 * `sdkLevel`), ERROR entries also to `onProblem` as `temporal: <first line>`.
 */
export function sdkFileLogger(json: JsonLogger, onProblem: (line: string) => void): DefaultLogger {
  const sdk = json.child('temporal');
  return new DefaultLogger('INFO', (entry: LogEntry) => {
    const meta = { ...(entry.meta ?? {}), sdkLevel: entry.level };
    if (entry.level === 'ERROR') {
      sdk.error(entry.message, meta);
      onProblem(`temporal: ${entry.message}`);
    } else if (entry.level === 'WARN') sdk.warn(entry.message, meta);
    else sdk.info(entry.message, meta);
  });
}
