/**
 * The local stack as the global setup left it: three healthy servers, reuse instead of restart,
 * the platform's search attributes in Temporal, consumer groups that work on the single KRaft
 * node, the embedded ClickHouse 26.x. Plus the failure paths: a busy port is named with its
 * component, and stopStack never touches a process that is not ours.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Partitioners } from 'kafkajs';
import { ensureStack, stackStatus, stopStack, type ComponentResult } from '../../infra/local/stack.js';
import { isAlive } from '../../infra/local/process.js';
import { TEMPORAL_CLI_VERSION, temporalDbFile, temporalSqliteArgs } from '../../infra/local/temporal.js';
import { searchAttributes } from '../../schemas/search-attributes.js';
import { loadConfig } from '../../schemas/config.js';
import { connectTemporal, createKafka, createWarehouse } from '../../workers/connections.js';
import { stackEndpoints, testConfig, uniqueId } from '../support/stack.js';

const config = testConfig();
const local = {
  temporal: config.TEMPORAL_ADDRESS === undefined,
  kafka: config.KAFKA_BROKERS === undefined,
  clickhouse: config.CLICKHOUSE_URL === undefined,
};

describe('local stack lifecycle', () => {
  it('reports the three servers running, with pid, port, address, log and version', async () => {
    const status = await stackStatus(config);
    expect(status.map((s) => s.component)).toEqual(['temporal', 'kafka', 'clickhouse']);
    for (const s of status) {
      if (!local[s.component]) {
        expect(s.mode).toBe('external');
        continue;
      }
      expect(s, s.component).toMatchObject({ running: true });
      expect(['local', 'foreign']).toContain(s.mode);
      expect(s.log).toMatch(new RegExp(`${s.component}\\.log$`));
      expect(s.version, `${s.component} version`).toBeTruthy();
    }
    const byName = Object.fromEntries(status.map((s) => [s.component, s]));
    if (local.temporal) expect(byName.temporal?.port).toBe(config.LOCAL_TEMPORAL_PORT);
    if (local.kafka) expect(byName.kafka?.version).toMatch(/^4\./);
    if (local.clickhouse) expect(byName.clickhouse?.address).toBe(`http://127.0.0.1:${config.LOCAL_CLICKHOUSE_PORT}`);
  });

  it('a second ensureStack reuses the running servers: same PIDs, nothing started', async () => {
    const before = await stackStatus(config);
    const results: ComponentResult[] = [];
    const lines: string[] = [];
    const endpoints = await ensureStack(config, { log: (l) => lines.push(l), onResult: (r) => results.push(r) });
    const after = await stackStatus(config);

    expect(endpoints).toEqual(stackEndpoints());
    expect(results.map((r) => r.mode)).not.toContain('started');
    expect(lines.join('\n')).not.toMatch(/starting on|installing/);
    for (const r of results) {
      const was = before.find((s) => s.component === r.component);
      if (r.mode === 'reused') expect(r.pid).toBe(was?.pid);
    }
    expect(after.map((s) => s.pid)).toEqual(before.map((s) => s.pid));
  });
});

describe('temporal', () => {
  it('has every custom search attribute of schemas/search-attributes.ts, with its type', async () => {
    const client = await connectTemporal(config, stackEndpoints());
    try {
      const res = await client.connection.operatorService.listSearchAttributes({ namespace: config.TEMPORAL_NAMESPACE });
      const custom = res.customAttributes ?? {};
      // temporal.api.enums.v1.IndexedValueType numbers
      const typeNumber = { Text: 1, Keyword: 2, Int: 3, Double: 4, Bool: 5, Datetime: 6, KeywordList: 7 } as const;
      for (const [name, type] of Object.entries(searchAttributes)) {
        expect(Number(custom[name]), name).toBe(typeNumber[type]);
      }
    } finally {
      await client.connection.close();
    }
  });
});

describe('temporal SQLite durability', () => {
  // SQLite's file header: bytes 18 and 19 are the write and read format versions, 1 for the
  // rollback journal and 2 for write-ahead logging (https://www.sqlite.org/fileformat.html).
  it.runIf(local.temporal)('the dev server the stack started keeps its SQLite file in write-ahead-log mode (LOCAL_TEMPORAL_SQLITE_SYNC=normal)', () => {
    expect(config.LOCAL_TEMPORAL_SQLITE_SYNC).toBe('normal');
    const header = readFileSync(temporalDbFile(config)).subarray(0, 20);
    expect(header.subarray(0, 15).toString('latin1')).toBe('SQLite format 3');
    expect([header[18], header[19]]).toEqual([2, 2]);
    expect(temporalSqliteArgs(config)).toEqual(['--sqlite-pragma', 'journal_mode=wal', '--sqlite-pragma', 'synchronous=normal']);
    // full switches a file once in WAL mode back (SQLite keeps the journal mode in the file).
    expect(temporalSqliteArgs({ LOCAL_TEMPORAL_SQLITE_SYNC: 'full' })).toEqual(['--sqlite-pragma', 'journal_mode=delete', '--sqlite-pragma', 'synchronous=full']);
  });
});

describe('temporal namespace on reuse', () => {
  it.runIf(local.temporal)('creates a namespace the running dev server lacks and registers the search attributes there', async () => {
    const namespace = `stack-${uniqueId()}`;
    const cfg = loadConfig({ ...process.env, TEMPORAL_NAMESPACE: namespace });
    await ensureStack(cfg);
    const client = await connectTemporal(cfg, stackEndpoints());
    try {
      const res = await client.connection.operatorService.listSearchAttributes({ namespace });
      expect(Object.keys(res.customAttributes ?? {})).toEqual(expect.arrayContaining(Object.keys(searchAttributes)));
      await client.connection.operatorService.deleteNamespace({ namespace }); // keep the shared server's namespace list short
    } finally {
      await client.connection.close();
    }
  });
});

describe('kafka', () => {
  it('creates a 3-partition topic; a fresh consumer group reads every keyed message, each key on one partition in order', async () => {
    const kafka = createKafka(config, stackEndpoints(), '-stack-test');
    const topic = `stack_${uniqueId()}`;
    const admin = kafka.admin();
    const producer = kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner });
    const consumer = kafka.consumer({ groupId: `g_${uniqueId()}` });
    await admin.connect();
    try {
      expect(await admin.createTopics({ topics: [{ topic, numPartitions: 3, replicationFactor: 1 }], waitForLeaders: true })).toBe(true);
      const meta = await admin.fetchTopicMetadata({ topics: [topic] });
      expect(meta.topics[0]?.partitions).toHaveLength(3);

      const keys = Array.from({ length: 12 }, (_, i) => `key-${i}`);
      const sent = keys.flatMap((key) => [0, 1, 2].map((seq) => ({ key, value: JSON.stringify({ key, seq }) })));
      await producer.connect();
      await producer.send({ topic, messages: sent });

      const received: { key: string; seq: number; partition: number }[] = [];
      let done!: () => void;
      const all = new Promise<void>((r) => (done = r));
      await consumer.connect();
      await consumer.subscribe({ topic, fromBeginning: true });
      await consumer.run({
        eachMessage: async ({ message, partition }) => {
          const body = JSON.parse(message.value!.toString()) as { key: string; seq: number };
          expect(message.key?.toString()).toBe(body.key);
          received.push({ ...body, partition });
          if (received.length === sent.length) done();
        },
      });
      await all;

      expect(received).toHaveLength(sent.length);
      const partitionsOfKey = new Map<string, Set<number>>();
      for (const r of received) partitionsOfKey.set(r.key, (partitionsOfKey.get(r.key) ?? new Set()).add(r.partition));
      for (const key of keys) {
        expect(partitionsOfKey.get(key)?.size, key).toBe(1);
        expect(received.filter((r) => r.key === key).map((r) => r.seq)).toEqual([0, 1, 2]);
      }
      // With 12 keys over 3 partitions the default partitioner uses more than one partition.
      expect(new Set(received.map((r) => r.partition)).size).toBeGreaterThan(1);
    } finally {
      await consumer.disconnect();
      await producer.disconnect();
      await admin.deleteTopics({ topics: [topic] }).catch(() => undefined);
      await admin.disconnect();
    }
  });
});

describe('kafka admin calls the platform relies on (KafkaJS 2.2.4 against the broker)', () => {
  it('reads watermarks, commits offsets for a member-less group, reads them back, grows partitions', async () => {
    const kafka = createKafka(config, stackEndpoints(), '-stack-test');
    const topic = `stack_admin_${uniqueId()}`;
    const groupId = `g_admin_${uniqueId()}`;
    const admin = kafka.admin();
    const producer = kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner });
    await admin.connect();
    try {
      await admin.createTopics({ topics: [{ topic, numPartitions: 2 }], waitForLeaders: true });
      await producer.connect();
      await producer.send({ topic, messages: Array.from({ length: 5 }, (_, i) => ({ value: `m${i}`, partition: 0 })) });

      const offsets = await admin.fetchTopicOffsets(topic);
      expect(offsets.find((o) => o.partition === 0)).toMatchObject({ low: '0', high: '5' });
      expect(offsets.find((o) => o.partition === 1)).toMatchObject({ low: '0', high: '0' });

      // Progress committed "from outside" (no consumer in the group), as lag tooling expects it.
      await admin.setOffsets({ groupId, topic, partitions: [{ partition: 0, offset: '3' }] });
      const [committed] = await admin.fetchOffsets({ groupId, topics: [topic] });
      expect(committed?.partitions.find((p) => p.partition === 0)?.offset).toBe('3');
      const { groups } = await admin.describeGroups([groupId]);
      expect(groups[0]).toMatchObject({ groupId, state: 'Empty', members: [] });

      await admin.createPartitions({ topicPartitions: [{ topic, count: 3 }] });
      const meta = await admin.fetchTopicMetadata({ topics: [topic] });
      expect(meta.topics[0]?.partitions).toHaveLength(3);
    } finally {
      await producer.disconnect();
      await admin.deleteGroups([groupId]).catch(() => undefined);
      await admin.deleteTopics({ topics: [topic] }).catch(() => undefined);
      await admin.disconnect();
    }
  });
});

describe('clickhouse', () => {
  it('answers SELECT version() with a 26.x ClickHouse through @clickhouse/client', async () => {
    const warehouse = createWarehouse(config, stackEndpoints(), 'default');
    try {
      const rs = await warehouse.query({ query: 'SELECT version() AS v', format: 'JSONEachRow' });
      const [row] = await rs.json<{ v: string }>();
      if (local.clickhouse) expect(row?.v).toMatch(/^26\./);
      else expect(row?.v).toMatch(/^\d+\./);
    } finally {
      await warehouse.close();
    }
  });
});

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as { port: number };
  await new Promise((r) => server.close(r));
  return port;
}

describe('failure paths (separate state folder, nothing started on the shared ports)', () => {
  const dirs: string[] = [];
  const tempState = (): string => {
    const dir = mkdtempSync(join(tmpdir(), 'stack-test-'));
    dirs.push(dir);
    return dir;
  };
  afterAll(() => {
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  it('refuses a port held by something that is not ClickHouse, naming component and port', async () => {
    const blocker: Server = createServer((socket) => socket.destroy());
    await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', r));
    const port = (blocker.address() as { port: number }).port;
    const e = stackEndpoints();
    try {
      // Temporal and Kafka come "from the environment" (the shared stack), so only ClickHouse is local.
      const cfg = loadConfig({
        PLATFORM_STATE_DIR: tempState(),
        TEMPORAL_ADDRESS: e.temporalAddress,
        KAFKA_BROKERS: e.kafkaBrokers.join(','),
        LOCAL_CLICKHOUSE_PORT: String(port),
      });
      await expect(ensureStack(cfg)).rejects.toThrow(new RegExp(`\\[clickhouse\\].*port ${port} is taken`));
    } finally {
      await new Promise((r) => blocker.close(r));
    }
  });

  it('fails fast when a server exits during start-up, quoting its log, and leaves no PID file', async () => {
    const dir = tempState();
    // A stand-in Temporal binary that dies at once; the orchestrator around it is what is tested.
    mkdirSync(join(dir, 'bin'), { recursive: true });
    writeFileSync(join(dir, 'bin', 'temporal'), '#!/bin/sh\necho "simulated failure: cannot open database" >&2\nexit 3\n', { mode: 0o755 });
    writeFileSync(join(dir, 'bin', 'temporal.version'), `${TEMPORAL_CLI_VERSION}\n`);
    const [port, uiPort] = await Promise.all([freePort(), freePort()]);
    const e = stackEndpoints();
    const cfg = loadConfig({
      PLATFORM_STATE_DIR: dir,
      LOCAL_TEMPORAL_PORT: String(port),
      LOCAL_TEMPORAL_UI_PORT: String(uiPort),
      KAFKA_BROKERS: e.kafkaBrokers.join(','),
      CLICKHOUSE_URL: e.clickhouseUrl,
    });
    const err: Error = await ensureStack(cfg).then(
      () => new Error('ensureStack succeeded'),
      (caught: unknown) => caught as Error,
    );
    expect(err.message).toContain(`[temporal] server process exited during start-up (exit code 3) (port ${port}, log ${join(dir, 'temporal.log')})`);
    expect(err.message).toContain('simulated failure: cannot open database');
    expect(existsSync(join(dir, 'temporal.pid'))).toBe(false);
  });

  it('stopStack leaves a process alone whose PID is in a PID file but which is not our server', async () => {
    const dir = tempState();
    const sleeper = spawn('sleep', ['60'], { stdio: 'ignore' });
    try {
      writeFileSync(join(dir, 'kafka.pid'), `${sleeper.pid}\n`);
      writeFileSync(join(dir, 'temporal.pid'), `${process.pid}\n`);
      const results = await stopStack(loadConfig({ PLATFORM_STATE_DIR: dir }));
      expect(results.every((r) => r.pid === null && !r.stopped)).toBe(true);
      expect(isAlive(sleeper.pid!)).toBe(true);
    } finally {
      sleeper.kill('SIGKILL');
    }
  });
});
