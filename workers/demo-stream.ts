/**
 * The event stream `npm start` produces: request telemetry at `rate` events/s with 2% contract
 * violations, 1% malformed JSON, and a timeline of incidents so that several of the demo
 * pipeline's detectors (infra/analytics/pipelines.json) fire and then resolve on their own:
 *
 * | from | what (generator shape) | fires, then resolves |
 * |---|---|---|
 * | +45 s, 2 min | checkout fails 60% and is 8x slower (the incident) | `error_rate_threshold` (and the old `rollup` error rate), `latency_jump` |
 * | +4 min, 30 s | search latency x6 (`spike`) | `latency_ewma`, `latency_jump` |
 * | +5 min, 90 s | recommendations sends nothing (`silence` with a duration) | `service_silent` |
 *
 * `test/unit/demo-incidents.test.ts` runs the demo's declared detectors over this stream and
 * checks which fire and resolve, so the timeline and the declarations cannot drift apart.
 */
import type { GeneratorOptions, IncidentShape } from './generator.js';

/** The demo's incident shapes (times in seconds after the first event). */
export const demoShapes: readonly IncidentShape[] = [
  { kind: 'spike', service: 'search', at: 240, duration: 30, factor: 6 },
  { kind: 'silence', service: 'recommendations', at: 300, duration: 90 },
];

/** Generator options of the demo stream (no count: `npm start` runs until stopped). */
export function demoStreamOptions(rate: number, seed: number): Omit<GeneratorOptions, 'count'> {
  return {
    rate,
    invalid: 0.02,
    malformed: 0.01,
    incidentAt: 45,
    incidentDuration: 120,
    incidentService: 'checkout',
    shapes: [...demoShapes],
    seed,
  };
}
