/**
 * `platform generate --shape`: the generator's incident shapes (workers/generator.ts
 * {@link IncidentShape}) written on the command line as `KIND:key=value,key=value`. Times are
 * durations after the first event (`90s`, `2m`, `500ms`, or plain seconds).
 *
 * | kind | keys (required, [optional]) | detector it exercises |
 * |---|---|---|
 * | `step` | service, at, for, factor | EWMA (level shift in latency) |
 * | `drift` | service, at, for, factor | median/MAD (latency grows to factor over `for`) |
 * | `spike` | service, at, for, factor | rate of change |
 * | `seasonality` | service, period, amplitude (0..1) | seasonal baseline |
 * | `silence` | service, at, [for] | absence (the service sends nothing; forever without `for`) |
 * | `drop` | service, at, for, keep (0..1) | seasonal / MAD on traffic (keeps that share) |
 * | `errors` | service, at, for, rate (0..1), [every] | threshold (error burst; repeats every `every`) |
 * | `late` | fraction (0..1), mean or max | watermark, allowed lateness, late_events |
 *
 * `late` delays a share of event times: exponentially with mean `mean`, or uniformly up to `max`.
 */
import type { IncidentShape } from '../generator.js';
import { parseDurationSeconds } from './duration.js';
import { UsageError } from './command.js';

const keysOf: Record<string, { required: string[]; optional: string[] }> = {
  step: { required: ['service', 'at', 'for', 'factor'], optional: [] },
  drift: { required: ['service', 'at', 'for', 'factor'], optional: [] },
  spike: { required: ['service', 'at', 'for', 'factor'], optional: [] },
  seasonality: { required: ['service', 'period', 'amplitude'], optional: [] },
  silence: { required: ['service', 'at'], optional: ['for'] },
  drop: { required: ['service', 'at', 'for', 'keep'], optional: [] },
  errors: { required: ['service', 'at', 'for', 'rate'], optional: ['every'] },
  late: { required: ['fraction'], optional: ['mean', 'max'] },
};

/** The shape kinds `--shape` accepts. */
export const shapeKinds = Object.keys(keysOf);

/**
 * Parses one `--shape` value. @throws UsageError naming the shape, the key and the expected form,
 * e.g. `--shape spike:...: factor: expected a number above 0, got "x"`.
 */
export function parseShape(value: string): IncidentShape {
  const m = /^([a-z]+):(.*)$/.exec(value.trim());
  const where = `--shape ${value}`;
  if (!m) throw new UsageError(`${where}: expected KIND:key=value,... with KIND one of ${shapeKinds.join(', ')}`);
  const kind = m[1]!;
  const allowed = keysOf[kind];
  if (!allowed) throw new UsageError(`${where}: unknown kind "${kind}"; expected one of ${shapeKinds.join(', ')}`);
  const kv: Record<string, string> = {};
  for (const part of m[2]!.split(',').filter((p) => p.length > 0)) {
    const eq = part.indexOf('=');
    const key = eq < 0 ? part : part.slice(0, eq);
    if (eq < 0 || ![...allowed.required, ...allowed.optional].includes(key)) {
      throw new UsageError(`${where}: unexpected "${part}"; ${kind} takes ${allowed.required.join(', ')}${allowed.optional.length ? ` and optionally ${allowed.optional.join(', ')}` : ''}, as key=value`);
    }
    kv[key] = part.slice(eq + 1);
  }
  for (const key of allowed.required) if (kv[key] === undefined) throw new UsageError(`${where}: ${key}: required for ${kind}`);
  const seconds = (key: string) => parseDurationSeconds(`${where}: ${key}`, kv[key]!);
  const num = (key: string, min: number, max: number, minExclusive = false) => {
    const n = Number(kv[key]);
    if (kv[key]!.trim() === '' || !Number.isFinite(n) || n > max || (minExclusive ? n <= min : n < min)) {
      throw new UsageError(`${where}: ${key}: expected a number ${minExclusive ? 'above' : 'from'} ${min}${max === Infinity ? '' : ` to ${max}`}, got ${JSON.stringify(kv[key])}`);
    }
    return n;
  };
  const service = kv.service ?? '';
  if (kind !== 'late' && service.trim() === '') throw new UsageError(`${where}: service: expected a service name`);
  switch (kind) {
    case 'step':
    case 'drift':
    case 'spike':
      return { kind, service, at: seconds('at'), duration: seconds('for'), factor: num('factor', 0, Infinity, true) };
    case 'seasonality':
      return { kind, service, period: seconds('period'), amplitude: num('amplitude', 0, 1) };
    case 'silence':
      return { kind, service, at: seconds('at'), ...(kv.for !== undefined ? { duration: seconds('for') } : {}) };
    case 'drop':
      return { kind: 'silence', service, at: seconds('at'), duration: seconds('for'), keep: num('keep', 0, 1) };
    case 'errors':
      return { kind, service, at: seconds('at'), duration: seconds('for'), rate: num('rate', 0, 1), ...(kv.every !== undefined ? { every: seconds('every') } : {}) };
    default: {
      if ((kv.mean === undefined) === (kv.max === undefined)) throw new UsageError(`${where}: expected exactly one of mean (exponential delay) or max (uniform delay)`);
      const fraction = num('fraction', 0, 1);
      return kv.mean !== undefined
        ? { kind: 'late', fraction, distribution: { type: 'exponential', meanMs: seconds('mean') * 1000 } }
        : { kind: 'late', fraction, distribution: { type: 'uniform', maxMs: seconds('max') * 1000 } };
    }
  }
}
