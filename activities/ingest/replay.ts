/**
 * Activities of the `replay` workflow around the one landing path (`landBatch`): claim a new
 * replay generation and check the range (`planReplay`), mark the dead letters a landed replay
 * batch resolved (`resolveDeadLetters`), and record the finished replay in lineage
 * (`recordReplay`). Every insert is exact under retries: a retried activity finds its own earlier
 * rows (by run id, or by the resolutions already present) and adds nothing.
 */
import { createHash } from 'node:crypto';
import { Context } from '@temporalio/activity';
import type { ClickHouseClient } from '@clickhouse/client';
import type { Admin } from 'kafkajs';
import { InvalidInputError, toActivityFailure } from '../errors.js';
import { silentLogger, type Logger } from '../logger.js';
import { heartbeating } from './heartbeat.js';

/** Dependencies of {@link createReplayActivities}. */
export interface ReplayDeps {
  /** Bound to the platform's database. */
  warehouse: ClickHouseClient;
  /** The worker's shared Kafka admin client. */
  admin: () => Promise<Admin>;
  log?: Logger;
}

/** Input of planReplay. */
export interface PlanReplayInput {
  pipelineId: string;
  topic: string;
  partition: number;
  from: number;
  to: number;
  onlyDeadLetters: boolean;
  consumerGroup: string;
  by: string;
  reason: string;
  /** When the replay was asked for (the workflow's start time), ISO-8601. */
  requestedAt: string;
}

/** Result of planReplay: the generation claimed and the range to re-read. */
export interface ReplayPlan {
  generation: number;
  /** The range to re-read: the input's, or narrowed to its open dead letters (empty when none). */
  from: number;
  to: number;
  /** The pipeline's committed offset on the partition when planned. */
  committed: number;
  /** Open dead letters in the input range when planned. */
  openDeadLetters: number;
}

/** Input of resolveDeadLetters. */
export interface ResolveDeadLettersInput {
  pipelineId: string;
  topic: string;
  partition: number;
  /** The replay batch whose landed events resolve dead letters at the same offsets. */
  batchId: string;
  generation: number;
  by: string;
  reason: string;
}

/** Input of recordReplay. */
export interface RecordReplayInput extends Omit<PlanReplayInput, 'consumerGroup'> {
  generation: number;
  batchIds: string[];
  landed: number;
  alreadyLanded: number;
  rejected: number;
  resolved: number;
}

/** ClickHouse DateTime64 text in UTC. */
function chTime(value: string | number): string {
  return new Date(value).toISOString().replace('T', ' ').replace('Z', '');
}

function dedup(token: string): Record<string, string | number> {
  return { insert_deduplicate: 1, insert_deduplication_token: token, async_insert: 0 };
}

/** Builds the replay activities. */
export function createReplayActivities(deps: ReplayDeps) {
  const { warehouse } = deps;
  const log = deps.log ?? silentLogger;

  async function one<T>(query: string, params: Record<string, unknown>): Promise<T | undefined> {
    const rows = await (await warehouse.query({ query, query_params: params, format: 'JSONEachRow' })).json<T>();
    return rows[0];
  }

  function execution(): { workflowId: string; runId: string } {
    const info = Context.current().info.workflowExecution;
    return { workflowId: info?.workflowId ?? '', runId: info?.runId ?? '' };
  }

  async function lineageRow(input: Omit<RecordReplayInput, 'batchIds' | 'landed' | 'alreadyLanded' | 'rejected' | 'resolved'> & Partial<RecordReplayInput>, status: 'started' | 'completed'): Promise<void> {
    const { workflowId, runId } = execution();
    await warehouse.insert({
      table: 'lineage_replays',
      values: [
        {
          pipeline: input.pipelineId,
          topic: input.topic,
          partition: input.partition,
          generation: input.generation,
          status,
          from_offset: input.from,
          to_offset: input.to,
          only_dead_letters: input.onlyDeadLetters,
          requested_by: input.by,
          reason: input.reason,
          requested_at: chTime(input.requestedAt),
          workflow_id: workflowId,
          run_id: runId,
          batch_ids: input.batchIds ?? [],
          landed: input.landed ?? 0,
          already_landed: input.alreadyLanded ?? 0,
          rejected: input.rejected ?? 0,
          resolved: input.resolved ?? 0,
        },
      ],
      format: 'JSONEachRow',
      clickhouse_settings: dedup(`replay/${workflowId}/${runId}/${status}`),
    });
  }

  return {
    /**
     * Checks the range against the pipeline's committed offset (a replay re-reads what the
     * pipeline already landed; beyond it the partition workflow is still landing and the two would
     * race), claims the next replay generation of the partition (one above every generation in
     * `lineage_replays`, recorded at once as a `started` row, so a failed replay's generation is
     * never reused; a retry of this activity finds its own claim by run id), and with
     * `onlyDeadLetters` narrows the range to its open dead letters. Throws a non-retryable
     * `invalid_input` failure naming `to` when the range is not landed yet.
     */
    planReplay: heartbeating(async (input: PlanReplayInput): Promise<ReplayPlan> => {
      try {
        const admin = await deps.admin();
        const group = await admin.fetchOffsets({ groupId: input.consumerGroup, topics: [input.topic] });
        const committed = Number(group[0]?.partitions.find((p) => p.partition === input.partition)?.offset ?? -1);
        if (committed < 0) {
          throw new InvalidInputError(
            `replay: pipeline ${input.pipelineId} has committed no offset on ${input.topic}[${input.partition}] (consumer group ${input.consumerGroup}): nothing landed yet to replay`,
          );
        }
        if (input.to > committed) {
          throw new InvalidInputError(
            `replay to: expected at most ${committed} (the pipeline's committed offset on ${input.topic}[${input.partition}]; later offsets are still being landed by the partition workflow), got ${input.to}`,
          );
        }
        const { runId } = execution();
        const key = { p: input.pipelineId, t: input.topic, n: input.partition };
        const mine = await one<{ g: number }>(
          "SELECT generation AS g FROM lineage_replays WHERE pipeline = {p:String} AND topic = {t:String} AND partition = {n:UInt32} AND run_id = {run:String} AND status = 'started' LIMIT 1",
          { ...key, run: runId },
        );
        let generation: number;
        if (mine) generation = Number(mine.g);
        else {
          const last = await one<{ g: number }>('SELECT max(generation) AS g FROM lineage_replays WHERE pipeline = {p:String} AND topic = {t:String} AND partition = {n:UInt32}', key);
          generation = Number(last?.g ?? 0) + 1;
          await lineageRow({ ...input, generation }, 'started');
        }
        const open = await one<{ c: string; lo: string; hi: string }>(
          `SELECT count() AS c, min(offset) AS lo, max(offset) AS hi FROM open_dead_letters
           WHERE pipeline = {p:String} AND topic = {t:String} AND partition = {n:UInt32} AND offset >= {from:UInt64} AND offset < {to:UInt64}`,
          { ...key, from: input.from, to: input.to },
        );
        const openDeadLetters = Number(open?.c ?? 0);
        let { from, to } = input;
        if (input.onlyDeadLetters) {
          if (openDeadLetters === 0) to = from;
          else {
            from = Number(open!.lo);
            to = Number(open!.hi) + 1;
          }
        }
        log.info('replay planned', { pipelineId: input.pipelineId, topic: input.topic, partition: input.partition, generation, from, to, openDeadLetters });
        return { generation, from, to, committed, openDeadLetters };
      } catch (err) {
        throw toActivityFailure(err);
      }
    }),

    /**
     * Marks resolved the dead letters whose offsets the replay batch `batchId` landed into
     * `events`, or processed without failure where the processor had failed before
     * (`processing_recoveries`) (one `dead_letter_resolutions` row per offset, with who, why and the generation).
     * Offsets already resolved are left out, so a retry adds nothing. Returns how many it marked.
     */
    resolveDeadLetters: heartbeating(async (input: ResolveDeadLettersInput): Promise<{ resolved: number }> => {
      const { workflowId, runId } = execution();
      const rows = await (
        await warehouse.query({
          query: `SELECT d.offset AS offset, any(d.reason_code) AS reason_code
                  FROM dead_letters AS d
                  INNER JOIN (SELECT offset FROM events WHERE pipeline = {p:String} AND topic = {t:String} AND partition = {n:UInt32} AND batch_id = {b:String}
                              UNION ALL
                              SELECT offset FROM processing_recoveries WHERE pipeline = {p:String} AND topic = {t:String} AND partition = {n:UInt32} AND batch_id = {b:String}) AS e ON e.offset = d.offset
                  WHERE d.pipeline = {p:String} AND d.topic = {t:String} AND d.partition = {n:UInt32}
                    AND d.offset NOT IN (SELECT offset FROM dead_letter_resolutions WHERE pipeline = {p:String} AND topic = {t:String} AND partition = {n:UInt32})
                  GROUP BY d.offset
                  ORDER BY d.offset`,
          query_params: { p: input.pipelineId, t: input.topic, n: input.partition, b: input.batchId },
          format: 'JSONEachRow',
        })
      ).json<{ offset: string; reason_code: string }>();
      if (rows.length === 0) return { resolved: 0 };
      const digest = createHash('sha256').update(rows.map((r) => r.offset).join(',')).digest('hex').slice(0, 16);
      await warehouse.insert({
        table: 'dead_letter_resolutions',
        values: rows.map((r) => ({
          pipeline: input.pipelineId,
          topic: input.topic,
          partition: input.partition,
          offset: r.offset,
          reason_code: r.reason_code,
          resolved_by_batch: input.batchId,
          generation: input.generation,
          replay_id: `${workflowId}/${runId}`,
          resolved_by: input.by,
          reason: input.reason,
        })),
        format: 'JSONEachRow',
        clickhouse_settings: dedup(`${input.batchId}/resolutions/${digest}`),
      });
      return { resolved: rows.length };
    }),

    /** Writes the replay's `completed` row to `lineage_replays` (who, when, why, range, generation, counts, batch ids). */
    recordReplay: heartbeating(async (input: RecordReplayInput): Promise<void> => {
      await lineageRow(input, 'completed');
    }),
  };
}

/** The replay activities. */
export type ReplayActivities = ReturnType<typeof createReplayActivities>;
