/**
 * CPU time per process over a measurement, read from /proc/<pid>/stat (Linux): the bench, the
 * worker child, and the three servers of the local stack. On a shared 2-core machine the rate
 * alone says little; where the CPU went says what the rate is bounded by.
 */
import { execFileSync } from 'node:child_process';
import { readFile } from 'node:fs/promises';

let ticksPerSecond: number | null = null;

function clockTicks(): number {
  if (ticksPerSecond === null) {
    try {
      ticksPerSecond = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    } catch {
      ticksPerSecond = 100;
    }
  }
  return ticksPerSecond;
}

/** User + system CPU seconds a process has used so far; null when it cannot be read. */
export async function cpuSeconds(pid: number): Promise<number | null> {
  try {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name (which may contain spaces) start at field 3 (state).
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const utime = Number(fields[11]);
    const stime = Number(fields[12]);
    if (!Number.isFinite(utime) || !Number.isFinite(stime)) return null;
    return (utime + stime) / clockTicks();
  } catch {
    return null;
  }
}

/** Named processes whose CPU is tracked; the worker joins while (a) runs. */
export class CpuMeter {
  private readonly pids = new Map<string, number>();

  /** Tracks `pid` under `name` (ignored when null: an external server). */
  track(name: string, pid: number | null): void {
    if (pid !== null) this.pids.set(name, pid);
  }

  /** Stops tracking `name` (its process is gone). */
  untrack(name: string): void {
    this.pids.delete(name);
  }

  /** Current CPU seconds of every tracked process. */
  async sample(): Promise<Record<string, number>> {
    const out: Record<string, number> = {};
    for (const [name, pid] of this.pids) {
      const s = await cpuSeconds(pid);
      if (s !== null) out[name] = s;
    }
    return out;
  }

  /** CPU seconds used since `before`, per process present in both samples, rounded to 10 ms. */
  static delta(before: Record<string, number>, after: Record<string, number>): Record<string, number> {
    const out: Record<string, number> = {};
    for (const [name, end] of Object.entries(after)) {
      const start = before[name];
      if (start !== undefined) out[name] = Math.round((end - start) * 100) / 100;
    }
    return out;
  }
}
