/**
 * Local Kafka: one Apache Kafka 4.x node in KRaft mode (broker and controller in one JVM, no
 * ZooKeeper), from the jars pinned in infra/local/kafka/pom.xml (Maven Central, copied with
 * `mvn dependency:copy-dependencies`), run with the machine's Java 17+.
 */
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, readFileSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Kafka, logLevel } from 'kafkajs';
import type { PlatformConfig } from '../../schemas/config.js';
import type { LocalComponent } from './component.js';
import { componentPaths, ensureDir, portOpen, repoRoot, runInstall, sleep, spawnDetached, type LogFn } from './process.js';

const host = '127.0.0.1';

/** The pom that pins the Kafka version and its jars. */
export const kafkaPom: string = join(repoRoot, 'infra/local/kafka/pom.xml');

/** The Kafka version pinned in the pom (`<kafka.version>`). */
export function pinnedKafkaVersion(): string {
  const match = /<kafka\.version>([^<]+)<\/kafka\.version>/.exec(readFileSync(kafkaPom, 'utf8'));
  if (!match?.[1]) throw new Error(`${kafkaPom}: no <kafka.version> property`);
  return match[1].trim();
}

/** Folder of the pinned Kafka jars (`<state>/kafka/libs`), filled by {@link ensureKafkaJars}. */
export function libsDir(config: PlatformConfig): string {
  return join(componentPaths(config, 'kafka').dataDir, 'libs');
}

function propertiesFile(config: PlatformConfig): string {
  return join(componentPaths(config, 'kafka').dataDir, 'server.properties');
}

/** The broker's `log.dirs` (topic-partition folders with their segment files). */
export function logDir(config: PlatformConfig): string {
  return join(componentPaths(config, 'kafka').dataDir, 'data');
}

function pomHash(): string {
  return createHash('sha256').update(readFileSync(kafkaPom)).digest('hex');
}

/** Checks for Java 17+ and Maven up front so a missing tool is named instead of a cryptic failure. */
async function checkJava(): Promise<void> {
  let out: string;
  try {
    out = await runInstall('java', ['-version'], { cwd: repoRoot });
  } catch (err) {
    throw new Error(`Java 17 or newer is needed to run Kafka, but \`java -version\` failed: ${(err as Error).message.split('\n')[0]}`);
  }
  const match = /version "(\d+)(?:\.(\d+))?/.exec(out);
  const major = match ? Number(match[1] === '1' ? match[2] : match[1]) : NaN;
  if (!(major >= 17)) throw new Error(`Kafka 4.x needs Java 17 or newer; found: ${out.split('\n')[0]}`);
}

/**
 * The pinned Kafka jars (broker and Java client, kafka-clients), installed when missing, even
 * when the broker itself comes from KAFKA_BROKERS: the tests use the Java producer as reference.
 * Returns the libs folder. Throws when Java 17+ or Maven is missing.
 */
export async function ensureKafkaJars(config: PlatformConfig, log: LogFn): Promise<string> {
  await installKafka(config, log);
  return libsDir(config);
}

/**
 * Copies the pinned jars into `<state>/kafka/libs` when they are missing or the pom changed
 * (a hash of the pom is kept next to them). Downloads go to a temporary folder that is renamed
 * into place, so an interrupted install is simply redone.
 */
async function installKafka(config: PlatformConfig, log: LogFn): Promise<void> {
  await checkJava();
  const libs = libsDir(config);
  const stamp = join(libs, '.pom-sha256');
  const hash = pomHash();
  if (existsSync(stamp) && readFileSync(stamp, 'utf8').trim() === hash) return;
  const version = pinnedKafkaVersion();
  ensureDir(componentPaths(config, 'kafka').dataDir);
  const tmp = `${libs}.tmp`;
  rmSync(tmp, { recursive: true, force: true });
  log(`[kafka] installing Apache Kafka ${version} (org.apache.kafka:kafka_2.13) from Maven Central with mvn dependency:copy-dependencies ...`);
  const started = Date.now();
  try {
    await runInstall('mvn', ['-q', '-B', '-f', kafkaPom, 'dependency:copy-dependencies', `-DoutputDirectory=${tmp}`], { cwd: repoRoot });
  } catch (err) {
    throw new Error(`could not install the Kafka jars (is Maven installed? mvn -v): ${(err as Error).message}`);
  }
  const jars = readdirSync(tmp).filter((f) => f.endsWith('.jar'));
  if (!jars.some((j) => j.startsWith('kafka_2.13-'))) throw new Error(`mvn copied ${jars.length} jars to ${tmp} but not kafka_2.13`);
  writeFileSync(join(tmp, '.pom-sha256'), `${hash}\n`);
  rmSync(libs, { recursive: true, force: true });
  renameSync(tmp, libs);
  log(`[kafka] installed ${jars.length} jars into ${libs} in ${((Date.now() - started) / 1000).toFixed(1)} s`);
}

/**
 * The broker configuration, rewritten on every start from the configured ports. The replication
 * settings of the internal topics must be 1 on a single node: with the defaults (3) the group
 * coordinator never becomes available and consumer groups (KafkaJS included) cannot join.
 * Topics are not auto-created, because the platform creates them with explicit partition counts.
 */
export function serverProperties(config: PlatformConfig): string {
  const controller = `${host}:${config.LOCAL_KAFKA_CONTROLLER_PORT}`;
  return [
    '# Written by infra/local/kafka.ts on every start; edit that file, not this one.',
    'process.roles=broker,controller',
    'node.id=1',
    `controller.quorum.voters=1@${controller}`,
    'controller.listener.names=CONTROLLER',
    `listeners=PLAINTEXT://${host}:${config.LOCAL_KAFKA_PORT},CONTROLLER://${controller}`,
    `advertised.listeners=PLAINTEXT://${host}:${config.LOCAL_KAFKA_PORT}`,
    'inter.broker.listener.name=PLAINTEXT',
    'listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT',
    `log.dirs=${logDir(config)}`,
    'num.partitions=1',
    'default.replication.factor=1',
    'min.insync.replicas=1',
    'offsets.topic.replication.factor=1',
    'offsets.topic.num.partitions=10',
    'transaction.state.log.replication.factor=1',
    'transaction.state.log.min.isr=1',
    'share.coordinator.state.topic.replication.factor=1',
    'share.coordinator.state.topic.min.isr=1',
    'group.initial.rebalance.delay.ms=0',
    // A restarted node waits for its previous broker session to expire before it is unfenced;
    // the default 9 s session made every restart ~8 s slower. 6 s still tolerates GC pauses and
    // a busy 2-core machine (heartbeats every second).
    'broker.session.timeout.ms=6000',
    'broker.heartbeat.interval.ms=1000',
    'auto.create.topics.enable=false',
    'delete.topic.enable=true',
    // Tests create many short-lived topics; keep the local disk use bounded.
    'log.retention.hours=24',
    'log.segment.bytes=67108864',
    'log.retention.check.interval.ms=60000',
    'num.network.threads=2',
    'num.io.threads=4',
    'num.recovery.threads.per.data.dir=1',
    '',
  ].join('\n');
}

const log4j2Properties = [
  '# Broker log for the local stack: INFO to stdout (redirected into <state>/kafka.log), chatty loggers at WARN.',
  'appender.console.type=Console',
  'appender.console.name=STDOUT',
  'appender.console.layout.type=PatternLayout',
  'appender.console.layout.pattern=[%d] %p %m (%c)%n',
  'rootLogger.level=INFO',
  'rootLogger.appenderRef.stdout.ref=STDOUT',
  'logger.request.name=kafka.request.logger',
  'logger.request.level=WARN',
  'logger.state.name=state.change.logger',
  'logger.state.level=WARN',
  'logger.cleaner.name=kafka.log.LogCleaner',
  'logger.cleaner.level=WARN',
  'logger.storage.name=org.apache.kafka.storage',
  'logger.storage.level=WARN',
  'logger.log.name=kafka.log',
  'logger.log.level=WARN',
  'logger.coordinator.name=org.apache.kafka.coordinator',
  'logger.coordinator.level=WARN',
  '',
].join('\n');

function javaArgs(config: PlatformConfig, mainClass: string, args: string[]): string[] {
  const dir = componentPaths(config, 'kafka').dataDir;
  return [
    '-Xms256m',
    '-Xmx512m',
    '-XX:+UseG1GC',
    '-XX:MaxGCPauseMillis=20',
    '-Djava.awt.headless=true',
    `-Dlog4j2.configurationFile=${join(dir, 'log4j2.properties')}`,
    `-Dkafka.logs.dir=${dir}`,
    '-cp',
    `${libsDir(config)}/*`, // expanded by java itself, not a shell
    mainClass,
    ...args,
  ];
}

/**
 * A new KRaft cluster id: a Kafka Uuid, the base64url of 16 random bytes, drawn again while it
 * starts with `-`, as Kafka's own `Uuid.randomUuid()` does (an id like `-E__E4oo...` reads as an
 * option to command-line parsers: `kafka-storage format -t -E__...` failed with "argument
 * --cluster-id/-t: expected one argument", about 1 start in 64).
 * @param random source of random bytes. @default crypto.randomBytes
 */
export function newClusterId(random: (n: number) => Buffer = randomBytes): string {
  for (;;) {
    const id = random(16).toString('base64url');
    if (!id.startsWith('-')) return id;
  }
}

/** Cluster id of the local node: made once ({@link newClusterId}), kept in the state folder. */
function clusterId(config: PlatformConfig): string {
  const file = join(componentPaths(config, 'kafka').dataDir, 'cluster-id');
  if (existsSync(file)) return readFileSync(file, 'utf8').trim();
  const id = newClusterId();
  writeFileSync(file, `${id}\n`);
  return id;
}

/** Formats the KRaft log directory once (it is then recognised by its meta.properties). */
async function formatStorage(config: PlatformConfig, log: LogFn): Promise<void> {
  if (existsSync(join(logDir(config), 'meta.properties'))) return;
  const id = clusterId(config);
  log(`[kafka] formatting KRaft storage in ${logDir(config)} (cluster id ${id}) ...`);
  try {
    // `--cluster-id=<id>` is one argument: an id kept from an older state folder may start with `-`.
    const args = ['format', `--cluster-id=${id}`, '-c', propertiesFile(config), '--ignore-formatted'];
    await runInstall('java', javaArgs(config, 'kafka.tools.StorageTool', args), { cwd: repoRoot });
  } catch (err) {
    throw new Error(`kafka.tools.StorageTool format failed: ${(err as Error).message}`);
  }
}

function client(brokers: string[]): Kafka {
  return new Kafka({
    clientId: 'streamwarden-stack',
    brokers,
    logLevel: logLevel.NOTHING,
    connectionTimeout: 1500,
    requestTimeout: 3000,
    retry: { retries: 0 },
  });
}

/**
 * True when a broker answers metadata requests. The TCP check first keeps the probe cheap (and
 * KafkaJS quiet) while nothing listens yet.
 */
async function probeBrokers(brokers: string[]): Promise<boolean> {
  const [first] = brokers;
  if (!first) return false;
  const [h, p] = [first.slice(0, first.lastIndexOf(':')), Number(first.slice(first.lastIndexOf(':') + 1))];
  if (!(await portOpen(h, p))) return false;
  const admin = client(brokers).admin();
  try {
    await admin.connect();
    const cluster = await admin.describeCluster();
    return cluster.brokers.length > 0 && cluster.controller !== null;
  } catch {
    return false;
  } finally {
    await admin.disconnect().catch(() => undefined);
  }
}

/**
 * Waits until the group coordinator answers (its first use creates `__consumer_offsets`), so the
 * first consumer group of a test or a worker does not meet "coordinator not available".
 */
async function warmGroupCoordinator(brokers: string[], timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  while (Date.now() < deadline) {
    const admin = client(brokers).admin();
    try {
      await admin.connect();
      // Without retries KafkaJS does not load metadata lazily: describeCluster fills its broker pool.
      await admin.describeCluster();
      await admin.describeGroups(['streamwarden-stack-health']);
      return;
    } catch (err) {
      lastError = err;
      await sleep(500);
    } finally {
      await admin.disconnect().catch(() => undefined);
    }
  }
  throw new Error(`the Kafka group coordinator did not become available in ${timeoutMs / 1000} s: ${(lastError as Error | undefined)?.message ?? 'no answer'}`);
}

/** The local Kafka KRaft node component. */
export const kafkaComponent: LocalComponent = {
  name: 'kafka',
  startTimeoutMs: 120_000,
  stopGraceMs: 20_000, // a controlled shutdown flushes logs and avoids recovery on the next start
  port: (config) => config.LOCAL_KAFKA_PORT,
  extraPorts: (config) => [config.LOCAL_KAFKA_CONTROLLER_PORT],
  address: (config) => `${host}:${config.LOCAL_KAFKA_PORT}`,
  external: (config) => (config.KAFKA_BROKERS ? config.KAFKA_BROKERS.join(',') : null),
  marker: (config) => propertiesFile(config),

  probe: (config) => probeBrokers([`${host}:${config.LOCAL_KAFKA_PORT}`]),

  install: installKafka,

  async start(config, log) {
    const paths = componentPaths(config, 'kafka');
    ensureDir(paths.dataDir);
    writeFileSync(propertiesFile(config), serverProperties(config));
    writeFileSync(join(paths.dataDir, 'log4j2.properties'), log4j2Properties);
    await formatStorage(config, log);
    return spawnDetached({
      command: 'java',
      args: javaArgs(config, 'kafka.Kafka', [propertiesFile(config)]),
      cwd: paths.dataDir,
      logFile: paths.logFile,
      pidFile: paths.pidFile,
    });
  },

  async afterReady(config) {
    if (config.KAFKA_BROKERS) return; // an external cluster is not ours to poke
    await warmGroupCoordinator([`${host}:${config.LOCAL_KAFKA_PORT}`], 60_000);
  },

  async version(config) {
    if (config.KAFKA_BROKERS) return null; // the protocol does not tell a broker's release
    const libs = libsDir(config);
    if (!existsSync(libs)) return null;
    const jar = readdirSync(libs).find((f) => /^kafka_2\.13-.*\.jar$/.test(f));
    return jar ? jar.replace(/^kafka_2\.13-/, '').replace(/\.jar$/, '') : null;
  },
};
