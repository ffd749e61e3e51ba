/**
 * What `npm start` shows, and where everything else goes. The screen holds this job's own lines
 * and one live progress line (rewritten in place on a terminal); every log line (the worker's and
 * the Temporal SDK's, including multi-line `Activity failed` blocks with stack traces) goes to the
 * log file. An error that needs attention also reaches the screen as exactly one line of its own:
 * the live line is ended first, so the two never share a line.
 */
import { appendFileSync } from 'node:fs';
import { DefaultLogger, type LogEntry } from '@temporalio/worker';
import type { Logger } from '../activities/logger.js';

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

function safeJson(value: unknown): string {
  try {
    return JSON.stringify(value, (_key, v: unknown) => (typeof v === 'bigint' ? v.toString() : v instanceof Error ? { name: v.name, message: v.message, stack: v.stack } : v));
  } catch {
    return '(unserialisable)';
  }
}

/** The worker's logger: every line to the file; ERROR lines also to `onProblem` (one line). */
export function fileLogger(path: string, onProblem: (line: string) => void): Logger {
  const write = (level: string) => (message: string, meta?: Record<string, unknown>) => {
    appendFileSync(path, `${new Date().toISOString()} ${level} ${message}${meta && Object.keys(meta).length > 0 ? ` ${safeJson(meta)}` : ''}\n`);
    if (level === 'ERROR') onProblem(`${message}${typeof meta?.error === 'string' ? `: ${meta.error}` : ''}`);
  };
  return { debug: () => undefined, info: write('INFO'), warn: write('WARN'), error: write('ERROR') };
}

/**
 * The Temporal SDK's logger for `Runtime.install({ logger })` (install it before anything creates
 * the runtime): Core and worker entries at INFO and above into the file, ERROR entries also to
 * `onProblem` as `temporal: <first line>`.
 */
export function sdkFileLogger(path: string, onProblem: (line: string) => void): DefaultLogger {
  return new DefaultLogger('INFO', (entry: LogEntry) => {
    const time = new Date(Number(entry.timestampNanos / 1_000_000n)).toISOString();
    const meta = entry.meta && Object.keys(entry.meta).length > 0 ? ` ${safeJson(entry.meta)}` : '';
    appendFileSync(path, `${time} ${entry.level} [temporal] ${entry.message}${meta}\n`);
    if (entry.level === 'ERROR') onProblem(`temporal: ${entry.message}`);
  });
}
