/** Durations on the command line. */
import { UsageError } from './command.js';

/** Parses `20s`, `2m`, `500ms`, `1h` or a plain number of seconds into seconds. */
export function parseDurationSeconds(flag: string, value: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(value.trim());
  if (!m) throw new UsageError(`${flag}: expected a duration like 20s, 2m or 500ms, got ${JSON.stringify(value)}`);
  const n = Number(m[1]);
  const unit = m[2] ?? 's';
  return unit === 'ms' ? n / 1000 : unit === 'm' ? n * 60 : unit === 'h' ? n * 3600 : n;
}
