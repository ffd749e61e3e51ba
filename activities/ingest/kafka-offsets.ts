/**
 * Commits a pipeline's progress to its Kafka consumer group so the usual lag tooling
 * (kafka-consumer-groups.sh, Grafana, Burrow) sees it. The group never has members: the platform
 * consumes through Temporal, not through group membership.
 *
 * KafkaJS's `admin.setOffsets` joins the group with a temporary consumer to commit, which takes a
 * rebalance per call and fails when two partitions commit at once. Kafka's own AdminClient
 * (alterConsumerGroupOffsets) instead sends OffsetCommit with generation -1 and no member id,
 * which the coordinator accepts for a group without members. KafkaJS has that request but not
 * as public API, so this module reaches its cluster through the pinned version's private factory
 * and falls back to `admin.setOffsets` if that ever disappears.
 */
import type { Admin, Kafka } from 'kafkajs';

interface Coordinator {
  offsetCommit(request: {
    groupId: string;
    groupGenerationId: number;
    memberId: string;
    topics: { topic: string; partitions: { partition: number; offset: string }[] }[];
  }): Promise<unknown>;
}

interface Cluster {
  connect(): Promise<void>;
  disconnect(): Promise<void>;
  findGroupCoordinator(request: { groupId: string }): Promise<Coordinator>;
}

type ClusterFactory = (options: Record<string, unknown>) => Cluster;

function privateClusterFactory(kafka: Kafka): ClusterFactory | null {
  const symbol = Object.getOwnPropertySymbols(kafka).find((s) => s.description === 'private:Kafka:createCluster');
  if (!symbol) return null;
  const fn = (kafka as unknown as Record<symbol, unknown>)[symbol];
  return typeof fn === 'function' ? (fn.bind(kafka) as ClusterFactory) : null;
}

/** Commits offsets of a member-less consumer group. */
export class GroupOffsetCommitter {
  private cluster: Promise<Cluster> | null = null;
  private readonly factory: ClusterFactory | null;

  constructor(
    kafka: Kafka,
    private readonly admin: () => Promise<Admin>,
  ) {
    this.factory = privateClusterFactory(kafka);
  }

  private async connected(): Promise<Cluster> {
    if (!this.factory) throw new Error('unreachable');
    if (!this.cluster) {
      const cluster = this.factory({ allowAutoTopicCreation: false, metadataMaxAge: 300_000 });
      this.cluster = cluster.connect().then(
        () => cluster,
        (err: unknown) => {
          this.cluster = null;
          throw err;
        },
      );
    }
    return this.cluster;
  }

  /** Sets the group's committed offset of one partition (the next offset to read). */
  async commit(groupId: string, topic: string, partition: number, offset: number): Promise<void> {
    if (!this.factory) {
      const admin = await this.admin();
      await admin.setOffsets({ groupId, topic, partitions: [{ partition, offset: String(offset) }] });
      return;
    }
    const cluster = await this.connected();
    const coordinator = await cluster.findGroupCoordinator({ groupId });
    await coordinator.offsetCommit({
      groupId,
      groupGenerationId: -1,
      memberId: '',
      topics: [{ topic, partitions: [{ partition, offset: String(offset) }] }],
    });
  }

  /** Closes the connection. */
  async close(): Promise<void> {
    const cluster = this.cluster;
    this.cluster = null;
    if (cluster) await (await cluster).disconnect();
  }
}
