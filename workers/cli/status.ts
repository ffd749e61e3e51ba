/**
 * `platform status`: one line per pipeline partition: the workflow's cursor and totals (its
 * `progress` query), the lag behind Kafka's high watermark, and what ClickHouse holds (events,
 * dead letters). Each source is optional: what cannot be reached is shown as `?` with a note.
 */
import type { Client } from '@temporalio/client';
import { partitionWorkflowId, type PartitionProgress, type PipelineProgress } from '../../schemas/ingest/pipeline.js';
import { loadConfig } from '../../schemas/config.js';
import { connectTemporal, createKafka, createWarehouse } from '../connections.js';
import { resolveEndpoints } from '../endpoints.js';
import { parseCommandLine, stringOption, type Command } from './command.js';
import { renderTable } from './sql.js';
import { queryWithin, runningPipelinesQuery } from './temporal-query.js';

interface Row {
  pipeline: string;
  topic: string;
  partition: number;
  progress: PartitionProgress | null;
  high: number | null;
  events: number | null;
  dead: number | null;
}

async function pipelines(client: Client, query: string, notes: string[]): Promise<PipelineProgress[]> {
  const found: PipelineProgress[] = [];
  for await (const wf of client.workflow.list({ query })) {
    try {
      found.push(await queryWithin<PipelineProgress>(client, wf.workflowId, 'progress', 3000, wf.runId));
    } catch (err) {
      // Running but silent: usually no worker polls its task queue.
      notes.push(`${wf.workflowId} is running but did not answer its progress query (${(err as Error).message}); is a worker running? (npm start / npm run worker)`);
    }
  }
  return found;
}

const command: Command = {
  name: 'status',
  summary: 'per pipeline partition: cursor, landed, rejected, lag, rows in ClickHouse',
  usage: [
    'Usage: platform status [--pipeline ID] [--all] [--json]',
    '',
    'Asks the running pipelines (Temporal `progress` queries), Kafka (high watermarks) and',
    'ClickHouse (events and dead_letters per partition) and prints one line per partition.',
    'Only pipelines on TEMPORAL_TASK_QUEUE unless --all.',
    '  --pipeline ID   only this pipeline',
    '  --all           pipelines on every task queue',
    '  --json          machine-readable output',
    '  -h, --help      this text',
  ].join('\n'),
  spec: { options: { pipeline: { type: 'string' }, all: { type: 'boolean', default: false }, json: { type: 'boolean', default: false } } },

  async run(args) {
    const parsed = parseCommandLine(this.spec, args).values;
    const values = { pipeline: stringOption(parsed, 'pipeline'), all: parsed.all === true, json: parsed.json === true };
    const config = loadConfig();
    const endpoints = resolveEndpoints(config);
    const client = await connectTemporal(config, endpoints);
    const kafka = createKafka(config, endpoints, '-status');
    const admin = kafka.admin();
    const quiet = new URL(endpoints.clickhouseUrl);
    quiet.searchParams.set('log_level', 'OFF');
    const warehouse = createWarehouse(config, { ...endpoints, clickhouseUrl: quiet.toString() });
    const notes: string[] = [];
    const rows: Row[] = [];
    try {
      const found = await pipelines(client, runningPipelinesQuery(config.TEMPORAL_TASK_QUEUE, values.all, values.pipeline), notes);
      let adminReady = true;
      await admin.connect().catch((err: unknown) => {
        adminReady = false;
        notes.push(`Kafka unreachable: ${(err as Error).message}`);
      });
      for (const p of found) {
        const highs = new Map<number, number>();
        if (adminReady) {
          try {
            for (const o of await admin.fetchTopicOffsets(p.topic)) highs.set(o.partition, Number(o.high));
          } catch (err) {
            notes.push(`${p.topic}: ${(err as Error).message}`);
          }
        }
        const counts = new Map<string, number>();
        try {
          const result = await warehouse.query({
            query: `SELECT 'e' AS t, partition, count() AS n FROM events WHERE pipeline = {p:String} GROUP BY partition
                    UNION ALL SELECT 'd' AS t, partition, count() AS n FROM dead_letters WHERE pipeline = {p:String} GROUP BY partition`,
            query_params: { p: p.pipelineId },
            format: 'JSONEachRow',
          });
          for (const r of await result.json<{ t: string; partition: number; n: string }>()) counts.set(`${r.t}${r.partition}`, Number(r.n));
        } catch (err) {
          notes.push(`ClickHouse: ${(err as Error).message.split('\n')[0]}`);
        }
        for (const partition of p.partitions) {
          let progress: PartitionProgress | null = null;
          try {
            progress = await queryWithin<PartitionProgress>(client, partitionWorkflowId(p.pipelineId, p.topic, partition), 'progress');
          } catch (err) {
            notes.push(`${partitionWorkflowId(p.pipelineId, p.topic, partition)}: ${(err as Error).message}`);
          }
          rows.push({
            pipeline: p.pipelineId,
            topic: p.topic,
            partition,
            progress,
            high: highs.get(partition) ?? null,
            events: counts.get(`e${partition}`) ?? 0,
            dead: counts.get(`d${partition}`) ?? 0,
          });
        }
      }
    } finally {
      await Promise.allSettled([admin.disconnect(), warehouse.close(), client.connection.close()]);
    }
    if (values.json) {
      for (const r of rows) console.log(JSON.stringify(r));
      return 0;
    }
    if (rows.length === 0 && notes.some((n) => n.includes('did not answer its progress query'))) {
      // Running pipelines exist, but no worker answers for them: say that, not "none" (the note below says which).
      console.log('no pipeline answered (running pipelines need a worker: npm start or npm run worker)');
    } else if (rows.length === 0) {
      console.log('no running pipelines (start one with `platform pipeline start --id demo --topic requests`)');
    } else {
      const show = (v: number | null | undefined): string => (v === null || v === undefined ? '?' : String(v));
      const columns = ['pipeline', 'topic', 'partition', 'cursor', 'high', 'lag', 'landed', 'rejected', 'batches', 'events', 'dead_letters', 'state'];
      console.log(
        renderTable(
          columns.map((name, i) => ({ name, type: i >= 2 && i <= 10 ? 'UInt64' : 'String' })),
          rows.map((r) => {
            const cursor = r.progress?.cursor ?? null;
            const lag = r.high !== null && cursor !== null ? Math.max(0, r.high - cursor) : null;
            const state = r.progress ? (r.progress.paused ? 'paused' : r.progress.inFlight ? 'landing' : 'idle') : '?';
            return [r.pipeline, r.topic, String(r.partition), show(cursor), show(r.high), show(lag), show(r.progress?.landed), show(r.progress?.rejected), show(r.progress?.batches), show(r.events), show(r.dead), state];
          }),
        ),
      );
    }
    for (const note of notes) console.error(`note: ${note}`);
    return 0;
  },
};

export default command;
