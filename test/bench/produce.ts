/** Step 1: fill the fresh topic with the platform's synthetic event stream and time it. */
import type { Kafka } from 'kafkajs';
import type { Deadline } from './deadline.js';
import type { RateResult } from './raw-consume.js';

/** What was produced: the rate, and how many of the events the generator meant to be invalid. */
export interface ProduceResult extends RateResult {
  valid: number;
  invalid: number;
}

/** Interim stand-in until workers/generator.ts lands: valid request-telemetry plus ~2% bad JSON. */
export async function produceEvents(kafka: Kafka, topic: string, count: number, invalidFraction: number, deadline: Deadline): Promise<ProduceResult> {
  const producer = kafka.producer();
  await producer.connect();
  const startedAt = performance.now();
  let invalid = 0;
  try {
    const chunk = 5000;
    for (let done = 0; done < count; done += chunk) {
      deadline.check('produce', `${done}/${count} produced`);
      const messages = [];
      for (let i = done; i < Math.min(count, done + chunk); i++) {
        const bad = Math.random() < invalidFraction;
        if (bad) invalid += 1;
        const key = `tenant-${i % 97}`;
        const value = bad
          ? `{"broken": ${i}`
          : JSON.stringify({
              id: crypto.randomUUID(),
              subject: 'request-telemetry',
              version: 1,
              time: new Date().toISOString(),
              key,
              data: { service: 'checkout', route: '/orders/:id', method: 'GET', status: 200, duration_ms: 12.5, region: 'eu-west-1', tenant_id: key },
            });
        messages.push({ key, value });
      }
      await producer.send({ topic, messages });
    }
  } finally {
    await producer.disconnect();
  }
  const seconds = (performance.now() - startedAt) / 1000;
  return { events: count, seconds, perSecond: count / seconds, firstEventMs: null, valid: count - invalid, invalid };
}
