/**
 * `npm run bench`: one run, on the local stack (started or reused), that produces N events to a
 * fresh topic and measures (a) the platform, (b) raw KafkaJS consumption and (c) a naive
 * consume-then-insert loop on the same data; prints a table and writes JSON under
 * `<state>/bench/`. A measurement, not a test: nothing here asserts a speed. Bounded by a global
 * deadline; deletes its topic, groups and databases at the end unless --keep.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { loadavg } from 'node:os';
import { join, resolve } from 'node:path';
import type { Admin } from 'kafkajs';
import { ensureStack } from '../../infra/local/stack.js';
import { migrate } from '../../infra/clickhouse/migrate.js';
import { defaultConsumerGroup } from '../../schemas/ingest/pipeline.js';
import { loadConfig } from '../../schemas/config.js';
import { connectTemporal, createKafka, createWarehouse } from '../../workers/connections.js';
import { bundlePlatformWorkflows } from '../../workers/worker.js';
import { CpuMeter } from './cpu.js';
import { Deadline, DeadlineExceededError } from './deadline.js';
import { deleteGroups, topicExtent } from './kafka-util.js';
import { measureNaive } from './naive.js';
import { BenchUsageError, parseBenchArgs, usage, type BenchOptions } from './options.js';
import { measurePlatform } from './platform.js';
import { produceEvents } from './produce.js';
import { measureRawConsume } from './raw-consume.js';
import { measureStages } from './stages.js';
import { measureDuplicateIdCheck, formatDuplicateIdBench, duplicateIdSides, type DuplicateIdSide } from './duplicate-ids.js';
import { formatRangeReaderBench, measureRangeReaders } from './range-readers.js';
import { measureDetectionLatency } from './detection-latency.js';
import { measureAggregationHistory } from './aggregation-history.js';
import { seedServiceCatalog } from '../../activities/processing/service-catalog.js';
import { formatReport, hostFacts, ratio, writeReport, type BenchReport } from './report.js';
import { dropDatabase, landedCounts } from './warehouse-util.js';

const log = (line: string): void => console.log(`[bench ${new Date().toISOString().slice(11, 19)}] ${line}`);

/** Extra time after the deadline for cleanup before the process gives up on it. */
const cleanupGraceMs = 90_000;

async function bench(options: BenchOptions): Promise<number> {
  const config = loadConfig();
  const stateDir = resolve(config.PLATFORM_STATE_DIR);
  const deadline = new Deadline(options.deadlineMinutes * 60_000);
  let interruptedAt = 0;
  process.on('SIGINT', () => {
    // tsx relays the terminal's SIGINT, so one Ctrl-C can arrive twice: only a later one quits.
    if (interruptedAt === 0) {
      interruptedAt = Date.now();
      log('interrupted: stopping the current measurement and cleaning up (Ctrl-C again to quit at once)');
      deadline.abort('interrupted (Ctrl-C)');
    } else if (Date.now() - interruptedAt > 1000) {
      process.exit(130);
    }
  });
  // If cleanup itself hangs (a server gone away), the run still ends, and says why.
  setTimeout(() => {
    console.error(`[bench] deadline + ${cleanupGraceMs / 1000} s passed and cleanup did not finish; exiting. Leftovers may remain (names above).`);
    process.exit(3);
  }, deadline.budgetMs + cleanupGraceMs).unref();

  const id = `${Date.now().toString(36)}${randomBytes(2).toString('hex')}`;
  const names = {
    topic: `bench-${id}`,
    naiveDatabase: `bench_${id}_naive`,
    platformDatabase: `bench_${id}_platform`,
    taskQueue: `bench-${id}`,
    pipelineId: `bench-${id}`,
  };
  const report: BenchReport = {
    startedAt: new Date().toISOString(),
    finishedAt: '',
    command: `npm run bench -- ${process.argv.slice(2).join(' ')}`.trim(),
    options: { ...options, skip: [...options.skip] },
    host: hostFacts(),
    loadAverage: { start: loadavg(), end: [] },
    names: { topic: names.topic, naiveDatabase: names.naiveDatabase, platformDatabase: names.platformDatabase, taskQueue: names.taskQueue, workflowId: `pipeline-${names.pipelineId}` },
    ratios: { aOverB: null, aOverC: null, cOverB: null },
    benchPeakRssMb: 0,
    stoppedEarly: null,
    notes: ['CPU of temporal/kafka/clickhouse counts every client of the shared stack during the step, not only the bench'],
  };
  log(`run ${id}: ${options.events} events, ${options.partitions} partitions, deadline ${options.deadlineMinutes} min`);
  const meter = new CpuMeter();
  meter.track('bench', process.pid);
  const endpoints = await ensureStack(config, {
    log: (line) => console.log(`[stack] ${line}`),
    onResult: (r) => meter.track(r.component, r.pid),
  });
  // Measures a step and the CPU every tracked process spent during it.
  const metered = async <T extends object>(step: () => Promise<T>): Promise<T & { cpu: Record<string, number> }> => {
    const before = await meter.sample();
    const result = await step();
    return { ...result, cpu: CpuMeter.delta(before, await meter.sample()) };
  };
  deadline.check('starting the stack');

  const kafka = createKafka(config, endpoints, '-bench');
  const chAdmin = createWarehouse(config, endpoints, 'default');
  let admin: Admin | null = null;
  const cleanups: { what: string; run: () => Promise<unknown> }[] = [];
  let exitCode = 0;
  try {
    admin = kafka.admin();
    await admin.connect();
    const kafkaAdmin = admin;
    await kafkaAdmin.createTopics({ topics: [{ topic: names.topic, numPartitions: options.partitions, replicationFactor: 1 }], waitForLeaders: true });
    cleanups.push({ what: `topic ${names.topic}`, run: () => kafkaAdmin.deleteTopics({ topics: [names.topic] }) });

    log(`producing ${options.events} events to ${names.topic}`);
    const produced = await metered(() => produceEvents(kafka, names.topic, options.partitions, options.events, options.invalidFraction, deadline));
    report.produce = produced;
    const extent = await topicExtent(kafkaAdmin, names.topic);
    log(`produced ${produced.events} (${produced.valid} valid, ${produced.invalid} invalid) in ${produced.seconds.toFixed(2)} s = ${Math.round(produced.perSecond)}/s; topic holds ${extent.total}`);
    if (extent.total !== produced.events) report.notes.push(`the topic holds ${extent.total} records, the generator reported ${produced.events}`);

    if (!options.skip.has('stages')) {
      log('(s) stages: TypeScript vs WebAssembly, CPU only');
      report.stages = await measureStages();
      log(`(s) pseudonymise WebAssembly/TypeScript ${report.stages.ratios.stageWasmOverTs.toFixed(2)}, processor v2/v1 ${report.stages.ratios.processorV2OverV1.toFixed(2)}`);
    }

    if (!options.skip.has('duplicates')) {
      const sides = {} as Record<DuplicateIdSide, ReturnType<typeof createWarehouse>>;
      for (const side of duplicateIdSides) {
        const db = `bench_${id}_dup_${side}`;
        sides[side] = createWarehouse(config, endpoints, db);
        cleanups.push({ what: `database ${db}`, run: () => dropDatabase(chAdmin, db) });
        await migrate(sides[side], db, { admin: chAdmin });
      }
      cleanups.push({ what: 'duplicate-id bench clients', run: () => Promise.all(duplicateIdSides.map((side) => sides[side].close())) });
      log('(u) landBatch with the duplicate-id check off vs lookup vs claims');
      report.duplicateIds = await measureDuplicateIdCheck(kafka, sides, names.topic, extent, deadline);
      log(formatDuplicateIdBench(report.duplicateIds));
    }

    if (!options.skip.has('readers')) {
      log('(r) range readers: raw CRC-checked vs KafkaJS on the same ranges');
      report.rangeReaders = await measureRangeReaders(kafka, names.topic, extent, deadline);
      log(formatRangeReaderBench(report.rangeReaders));
      if (!report.rangeReaders.sameRecords) report.notes.push('(r) the raw reader and KafkaJS returned different records for some range');
    }

    if (!options.skip.has('raw')) {
      const group = `bench-${id}-raw`;
      cleanups.push({ what: `group ${group}`, run: () => deleteGroups(kafkaAdmin, [group]) });
      log('(b) raw KafkaJS consume');
      report.raw = await metered(() => measureRawConsume(kafka, names.topic, extent, group, deadline));
      log(`(b) ${Math.round(report.raw.perSecond)}/s`);
    }

    if (!options.skip.has('naive')) {
      const group = `bench-${id}-naive`;
      const warehouse = createWarehouse(config, endpoints, names.naiveDatabase);
      cleanups.push({ what: `group ${group}`, run: () => deleteGroups(kafkaAdmin, [group]) });
      cleanups.push({ what: `database ${names.naiveDatabase}`, run: () => dropDatabase(chAdmin, names.naiveDatabase) });
      cleanups.push({ what: 'naive warehouse client', run: () => warehouse.close() });
      await migrate(warehouse, names.naiveDatabase, { admin: chAdmin });
      log(`(c) naive consume -> validate -> insert into ${names.naiveDatabase}`);
      const naive = await metered(() => measureNaive(kafka, warehouse, names.topic, extent, group, deadline));
      const counts = await landedCounts(warehouse);
      report.naive = { ...naive, ...counts };
      log(`(c) ${Math.round(naive.perSecond)}/s; ${counts.landed} rows, ${counts.deadLetters} dead letters, ${naive.batches} inserts`);
      if (counts.landed !== produced.valid || counts.deadLetters !== produced.invalid) {
        report.notes.push(`naive loop landed ${counts.landed}/${counts.deadLetters}, the generator reported ${produced.valid} valid / ${produced.invalid} invalid`);
      }
    }

    if (!options.skip.has('platform')) {
      const warehouse = createWarehouse(config, endpoints, names.platformDatabase);
      const temporal = await connectTemporal(config, endpoints);
      cleanups.push({ what: `group ${defaultConsumerGroup(names.pipelineId)}`, run: () => deleteGroups(kafkaAdmin, [defaultConsumerGroup(names.pipelineId)]) });
      cleanups.push({ what: `database ${names.platformDatabase}`, run: () => dropDatabase(chAdmin, names.platformDatabase) });
      cleanups.push({ what: 'platform warehouse client', run: () => warehouse.close() });
      cleanups.push({ what: 'Temporal connection', run: () => temporal.connection.close() });
      // Migrated here too, so the count queries work before the worker's first batch.
      await migrate(warehouse, names.platformDatabase, { admin: chAdmin });
      await mkdir(join(stateDir, 'bench'), { recursive: true });
      // Bundled here, untimed, so webpack's memory does not count as the worker's.
      log('bundling the workflow code for the worker');
      const bundle = await bundlePlatformWorkflows();
      const workflowBundlePath = join(stateDir, 'bench', `${id}-workflows.js`);
      if (!('code' in bundle)) throw new Error('bench: expected bundlePlatformWorkflows() to return code');
      await writeFile(workflowBundlePath, bundle.code);
      cleanups.push({ what: 'workflow bundle file', run: () => rm(workflowBundlePath, { force: true }) });
      deadline.check('bundling workflows');
      log(`(a) platform: worker child on ${names.taskQueue}, database ${names.platformDatabase}`);
      const partitions = [...extent.high.keys()].sort((a, b) => a - b);
      const platform = await measurePlatform(
        temporal,
        warehouse,
        endpoints,
        {
          pipelineId: names.pipelineId,
          topic: names.topic,
          partitions,
          taskQueue: names.taskQueue,
          database: names.platformDatabase,
          expectedValid: produced.valid,
          expectedInvalid: produced.invalid,
          workerLog: join(stateDir, 'bench', `${id}-worker.log`),
          workflowBundlePath,
        },
        deadline,
        log,
        meter,
      );
      report.platform = {
        ...platform,
        workerPeakRssMb: platform.workerPeakRss?.mb ?? null,
        workerPeakRssSource: platform.workerPeakRss?.source ?? 'not measured',
        workerReadyRssMb: platform.workerReadyRssMb,
      };
      report.notes.push(`(a) timed ${platform.timing}`);
      log(`(a) ${Math.round(platform.perSecond)}/s; exactly once: ${platform.exactlyOnce ? 'yes' : 'NO'}`);
      if (!platform.exactlyOnce) exitCode = 1;

      if (!options.skip.has('processor')) {
        // (a') the same pipeline on the same topic with the demo processor (this change), in its own database.
        const processorDatabase = `${names.platformDatabase}_processor`;
        const processorWarehouse = createWarehouse(config, endpoints, processorDatabase);
        await migrate(processorWarehouse, processorDatabase, { admin: chAdmin });
        cleanups.push({ what: `database ${processorDatabase}`, run: () => dropDatabase(chAdmin, processorDatabase) });
        await seedServiceCatalog(processorWarehouse);
        log(`(a') platform with processor request-enriched v1, database ${processorDatabase}`);
        const withProcessor = await measurePlatform(
          temporal,
          processorWarehouse,
          endpoints,
          {
            pipelineId: `${names.pipelineId}-p`,
            topic: names.topic,
            partitions,
            taskQueue: `${names.taskQueue}-p`,
            database: processorDatabase,
            expectedValid: produced.valid,
            expectedInvalid: produced.invalid,
            workerLog: join(stateDir, 'bench', `${id}-worker-processor.log`),
            workflowBundlePath,
            processor: { name: 'request-enriched', version: 1 },
          },
          deadline,
          log,
          meter,
        );
        report.platformProcessor = { events: withProcessor.events, seconds: withProcessor.seconds, perSecond: withProcessor.perSecond, exactlyOnce: withProcessor.exactlyOnce };
        log(`(a') ${Math.round(withProcessor.perSecond)}/s; exactly once: ${withProcessor.exactlyOnce ? 'yes' : 'NO'}`);
        await processorWarehouse.close();
      }
      if (!options.skip.has('instrumented')) {
        // (d): the same landing, same topic, with metrics, JSON logs, tracing and OpenLineage on.
        const database = `${names.platformDatabase}_instr`;
        const pipelineId = `${names.pipelineId}-instr`;
        const instrWarehouse = createWarehouse(config, endpoints, database);
        cleanups.push({ what: `group ${defaultConsumerGroup(pipelineId)}`, run: () => deleteGroups(kafkaAdmin, [defaultConsumerGroup(pipelineId)]) });
        cleanups.push({ what: `database ${database}`, run: () => dropDatabase(chAdmin, database) });
        cleanups.push({ what: 'instrumented warehouse client', run: () => instrWarehouse.close() });
        await migrate(instrWarehouse, database, { admin: chAdmin });
        log('bundling the workflow code with the OpenTelemetry interceptors');
        const traced = await bundlePlatformWorkflows({ tracing: true });
        if (!('code' in traced)) throw new Error('bench: expected bundlePlatformWorkflows() to return code');
        const tracedPath = join(stateDir, 'bench', `${id}-workflows-traced.js`);
        await writeFile(tracedPath, traced.code);
        cleanups.push({ what: 'traced workflow bundle file', run: () => rm(tracedPath, { force: true }) });
        cleanups.push({ what: 'OpenLineage file', run: () => rm(join(stateDir, 'bench', `${database}-openlineage.ndjson`), { force: true }) });
        deadline.check('bundling workflows');
        log(`(d) platform with instrumentation on: worker child on ${names.taskQueue}-instr, database ${database}`);
        const instrumented = await measurePlatform(
          temporal,
          instrWarehouse,
          endpoints,
          {
            pipelineId,
            topic: names.topic,
            partitions,
            taskQueue: `${names.taskQueue}-instr`,
            database,
            expectedValid: produced.valid,
            expectedInvalid: produced.invalid,
            workerLog: join(stateDir, 'bench', `${id}-worker-instr.log`),
            workflowBundlePath: tracedPath,
            extraEnv: { BENCH_OBSERVABILITY: 'on' },
          },
          deadline,
          log,
          meter,
        );
        report.instrumented = { ...instrumented, workerPeakRssMb: instrumented.workerPeakRss?.mb ?? null };
        log(`(d) ${Math.round(instrumented.perSecond)}/s; exactly once: ${instrumented.exactlyOnce ? 'yes' : 'NO'}`);
        if (!instrumented.exactlyOnce) exitCode = 1;
      }
      if (!options.skip.has('latency')) {
        // (l): its own paced topic, pipeline, database and worker child (same workflow bundle).
        // Deployed shape first (the analytics queue in a worker process of its own, as in
        // docker-compose.yml), then 30 s of the one-process shape (`npm start`'s) for the ratio.
        const latencyCtx = { temporal, kafka, chAdmin, createWarehouse: (db: string) => createWarehouse(config, endpoints, db), endpoints, workflowBundlePath, stateDir, deadline, log, keep: options.keep };
        log('(l) detection latency: window final -> alert workflow signalled, at 5,000 events/s, analytics worker process of its own');
        report.latency = await measureDetectionLatency(latencyCtx, { rate: 5000, seconds: 60, pollMs: 250, analyticsProcess: true });
        log(`(l) p50 ${report.latency.latency.p50 ?? '-'} ms, p99 ${report.latency.latency.p99 ?? '-'} ms over ${report.latency.latency.count} firings`);
        log('(l) again for 30 s with the analytics queue in the landing worker process');
        report.latencyInProcess = await measureDetectionLatency(latencyCtx, { rate: 5000, seconds: 30, pollMs: 250, analyticsProcess: false });
        log(`(l) in-process p50 ${report.latencyInProcess.latency.p50 ?? '-'} ms, p99 ${report.latencyInProcess.latency.p99 ?? '-'} ms over ${report.latencyInProcess.latency.count} firings`);
      }
    }
    if (!options.skip.has('aggregation')) {
      // (h): ClickHouse only, two fresh databases of its own.
      log('(h) one aggregation step as the history grows, with and without the event-time skip indexes');
      report.aggregationHistory = await measureAggregationHistory(chAdmin, (db) => createWarehouse(config, endpoints, db), deadline, log, { keep: options.keep });
    }
  } catch (err) {
    if (err instanceof DeadlineExceededError) {
      report.stoppedEarly = err.interrupted ? err.message : `${err.message}. Raise --deadline-min or lower --events.`;
      exitCode = err.interrupted ? 130 : 2;
    } else {
      report.stoppedEarly = `error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`;
      exitCode = 1;
    }
    log(`stopped early: ${report.stoppedEarly}`);
  } finally {
    for (const c of cleanups.reverse()) {
      const dataLike = /^(topic|group|database) /.test(c.what);
      if (options.keep && dataLike) continue;
      await c.run().catch((err: unknown) => log(`cleanup of ${c.what} failed: ${(err as Error).message}`));
    }
    if (options.keep) log(`kept: topic ${names.topic}, databases ${names.naiveDatabase} / ${names.platformDatabase}`);
    await admin?.disconnect().catch(() => undefined);
    await chAdmin.close().catch(() => undefined);
  }

  report.ratios = { aOverB: ratio(report.platform, report.raw), aOverC: ratio(report.platform, report.naive), cOverB: ratio(report.naive, report.raw), dOverA: ratio(report.instrumented, report.platform) };
  report.benchPeakRssMb = process.resourceUsage().maxRSS / 1024;
  report.loadAverage.end = loadavg();
  report.finishedAt = new Date().toISOString();
  const path = await writeReport(stateDir, report);
  console.log(`\n${formatReport(report)}\n\nresults: ${path}`);
  return exitCode;
}

async function main(): Promise<number> {
  let options: BenchOptions | null;
  try {
    options = parseBenchArgs(process.argv.slice(2));
  } catch (err) {
    if (err instanceof BenchUsageError || (err as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) {
      console.error(`bench: ${(err as Error).message}\n\n${usage}`);
      return 2;
    }
    throw err;
  }
  if (!options) {
    console.log(usage);
    return 0;
  }
  return bench(options);
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    console.error(err instanceof Error ? (err.stack ?? err.message) : err);
    process.exit(1);
  },
);
