/** Kafka helpers shared by the bench's measurements: topic watermarks and "until every partition is read". */
import type { Admin } from 'kafkajs';

/** Per-partition [low, high) offsets of a topic, and the number of messages in between. */
export interface TopicExtent {
  /** partition -> first offset still in the log. */
  low: Map<number, bigint>;
  /** partition -> offset after the last message (the high watermark). */
  high: Map<number, bigint>;
  /** Sum over partitions of high - low. */
  total: number;
}

/** Reads the topic's watermarks (what a consumer from the beginning will see). */
export async function topicExtent(admin: Admin, topic: string): Promise<TopicExtent> {
  const offsets = await admin.fetchTopicOffsets(topic);
  const low = new Map<number, bigint>();
  const high = new Map<number, bigint>();
  let total = 0;
  for (const p of offsets) {
    low.set(p.partition, BigInt(p.low));
    high.set(p.partition, BigInt(p.high));
    total += Number(BigInt(p.high) - BigInt(p.low));
  }
  return { low, high, total };
}

/**
 * Tracks how far a consumer got in each partition; `done()` is true once every partition's last
 * offset seen is the one just below its high watermark. Offsets, not counts, decide the end, so a
 * redelivery after a rebalance cannot end the measurement early.
 */
export class PartitionProgress {
  private readonly next = new Map<number, bigint>();
  /** Messages handed to the callback, redeliveries included. */
  delivered = 0;

  constructor(private readonly extent: TopicExtent) {
    for (const [partition, low] of extent.low) this.next.set(partition, low);
  }

  /** Records that offsets up to and including `lastOffset` of `partition` were seen. */
  saw(partition: number, lastOffset: string, count: number): void {
    this.delivered += count;
    const after = BigInt(lastOffset) + 1n;
    if (after > (this.next.get(partition) ?? 0n)) this.next.set(partition, after);
  }

  /** Messages (by offset) read so far, without redeliveries. */
  read(): number {
    let n = 0;
    for (const [partition, low] of this.extent.low) n += Number((this.next.get(partition) ?? low) - low);
    return n;
  }

  /** True when every partition has been read up to its high watermark. */
  done(): boolean {
    for (const [partition, high] of this.extent.high) {
      if ((this.next.get(partition) ?? 0n) < high) return false;
    }
    return true;
  }
}

/**
 * Deletes consumer groups, treating "no such group" as done (a step stopped early may never have
 * created its group). Other failures, e.g. a group that still has members, are raised.
 */
export async function deleteGroups(admin: Admin, groupIds: string[]): Promise<void> {
  try {
    await admin.deleteGroups(groupIds);
  } catch (err) {
    const groups = (err as { groups?: { error?: { type?: string } }[] }).groups;
    const allMissing = groups !== undefined && groups.length > 0 && groups.every((g) => g.error?.type === 'GROUP_ID_NOT_FOUND');
    if (!allMissing) {
      const detail = groups?.map((g) => g.error?.type ?? '?').join(', ');
      throw new Error(`${(err as Error).message}${detail ? ` (${detail})` : ''}`, { cause: err });
    }
  }
}
