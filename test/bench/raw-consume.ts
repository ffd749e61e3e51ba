/** Baseline (b): how fast plain KafkaJS reads the topic when nothing is done with the messages. */
import type { Kafka } from 'kafkajs';
import type { Deadline } from './deadline.js';
import { PartitionProgress, type TopicExtent } from './kafka-util.js';

/** Result of one timed pass over the topic. */
export interface RateResult {
  /** Messages (or events) the rate is computed from. */
  events: number;
  /** Seconds from the start of the measurement to the last event. */
  seconds: number;
  /** events / seconds. */
  perSecond: number;
  /** Milliseconds from the start until the first event arrived (group join, first fetch...). */
  firstEventMs: number | null;
}

/**
 * Consumes the whole topic from the beginning in a fresh consumer group, with KafkaJS defaults,
 * counting messages until every partition reaches its high watermark. The clock starts just
 * before `consumer.run`, so the group join is included, as it is for the other two measurements.
 */
export async function measureRawConsume(kafka: Kafka, topic: string, extent: TopicExtent, groupId: string, deadline: Deadline): Promise<RateResult> {
  const consumer = kafka.consumer({ groupId });
  const progress = new PartitionProgress(extent);
  let firstAt: number | null = null;
  let lastAt = 0;
  try {
    await consumer.connect();
    await consumer.subscribe({ topic, fromBeginning: true });
    const startedAt = performance.now();
    await consumer.run({
      eachBatch: async ({ batch }) => {
        const n = batch.messages.length;
        if (n === 0) return;
        firstAt ??= performance.now();
        progress.saw(batch.partition, batch.lastOffset(), n);
        lastAt = performance.now();
      },
    });
    await deadline.waitFor('raw consume', async () => (progress.done() ? true : undefined), 50, () => `${progress.read()}/${extent.total} read`);
    const seconds = (lastAt - startedAt) / 1000;
    return { events: extent.total, seconds, perSecond: extent.total / seconds, firstEventMs: firstAt === null ? null : firstAt - startedAt };
  } finally {
    await consumer.disconnect();
  }
}
