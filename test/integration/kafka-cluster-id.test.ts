/**
 * A local broker whose state folder keeps a cluster id starting with `-` (made by an earlier
 * version, which drew ids without Kafka's rule) still formats and serves: the format command passes
 * the id as one argument (`--cluster-id=<id>`). Before, `kafka-storage format -t -E__...` failed
 * with "argument --cluster-id/-t: expected one argument" and the broker never started.
 */
import { Kafka, logLevel } from 'kafkajs';
import { afterAll, describe, expect, it } from 'vitest';
import { startPrivateKafka, type PrivateKafka } from '../support/private-kafka.js';
import { testConfig, uniqueId } from '../support/stack.js';

const config = testConfig();
let broker: PrivateKafka | undefined;

afterAll(async () => {
  await broker?.stop();
}, 60_000);

describe('a kept cluster id that starts with "-"', () => {
  it('formats the KRaft storage, and the broker takes and serves a record', { timeout: 240_000 }, async () => {
    broker = await startPrivateKafka(config, { clusterId: '-E__E4oowM_ZD1Q5b4hs-g' });
    const kafka = new Kafka({ clientId: 'cluster-id-test', brokers: [broker.broker], logLevel: logLevel.NOTHING });
    const admin = kafka.admin();
    await admin.connect();
    try {
      const cluster = await admin.describeCluster();
      expect(cluster.clusterId).toBe('-E__E4oowM_ZD1Q5b4hs-g');
      const topic = uniqueId('cid');
      await admin.createTopics({ topics: [{ topic, numPartitions: 1, replicationFactor: 1 }], waitForLeaders: true });
      const producer = kafka.producer();
      await producer.connect();
      await producer.send({ topic, messages: [{ value: 'kept' }] });
      await producer.disconnect();
      const [offsets] = await admin.fetchTopicOffsets(topic);
      expect(offsets?.high).toBe('1');
    } finally {
      await admin.disconnect();
    }
  });
});
