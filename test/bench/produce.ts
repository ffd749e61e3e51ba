/** Step 1: fill the fresh topic with the platform's synthetic event stream and time it. */
import type { Kafka } from 'kafkajs';
import { produceEvents as generateToKafka } from '../../workers/generator.js';
import type { Deadline } from './deadline.js';
import type { RateResult } from './raw-consume.js';

/** What was produced: the rate, and how many events the generator made invalid (and why). */
export interface ProduceResult extends RateResult {
  valid: number;
  invalid: number;
  byReason: Record<string, number>;
}

/**
 * Produces `count` events with the platform's generator, as fast as the producer goes (no
 * pacing, no incident: the bench measures throughput, not alerting). `invalidFraction` is split
 * evenly between malformed JSON and contract violations, so both dead-letter paths are used.
 * A fixed seed makes every run carry the same data.
 */
export async function produceEvents(kafka: Kafka, topic: string, partitions: number, count: number, invalidFraction: number, deadline: Deadline): Promise<ProduceResult> {
  const startedAt = performance.now();
  const summary = await generateToKafka(kafka, {
    topic,
    partitions,
    count,
    malformed: invalidFraction / 2,
    invalid: invalidFraction / 2,
    seed: 1,
    signal: deadline.signal,
  });
  deadline.check('produce', `${summary.total}/${count} produced`);
  const seconds = (performance.now() - startedAt) / 1000;
  return {
    events: summary.total,
    seconds,
    perSecond: summary.total / seconds,
    firstEventMs: null,
    valid: summary.valid,
    invalid: summary.rejected,
    byReason: { ...summary.byReason },
  };
}
