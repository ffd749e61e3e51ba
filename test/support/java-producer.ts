/**
 * Apache Kafka's Java producer as the reference implementation for the codec and transaction
 * tests. The pinned kafka-clients jar (with snappy-java, lz4-java and zstd-jni) comes from the
 * local Kafka install (`<state>/kafka/libs`, installed from Maven Central when missing); the
 * small program `test/support/java/Produce.java` is compiled once with javac into
 * `<state>/java-producer/` (recompiled when its source changes).
 */
import { execFile, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { ensureKafkaJars } from '../../infra/local/kafka.js';
import { stateDir } from '../../infra/local/process.js';
import type { PlatformConfig } from '../../schemas/config.js';

const source = fileURLToPath(new URL('./java/Produce.java', import.meta.url));

/** compression.type values of the Java producer. */
export type JavaCompression = 'none' | 'gzip' | 'snappy' | 'lz4' | 'zstd';

/** One record for the Java producer: its value, and whether its transaction commits or aborts. */
export interface JavaRecord {
  value: string;
  /** Only with `transactional`: this record's transaction is aborted. @default false */
  abort?: boolean;
}

/** Compiles the producer when needed; returns the classpath to run it with. */
export async function javaProducerClasspath(config: PlatformConfig): Promise<string> {
  const libs = await ensureKafkaJars(config, (line) => console.log(line));
  const out = join(stateDir(config), 'java-producer');
  const hash = createHash('sha256').update(readFileSync(source)).digest('hex');
  const stamp = join(out, '.source-sha256');
  if (!existsSync(stamp) || readFileSync(stamp, 'utf8') !== hash) {
    mkdirSync(out, { recursive: true });
    await promisify(execFile)('javac', ['-cp', `${libs}/*`, '-d', out, source]);
    writeFileSync(stamp, hash);
  }
  return `${out}:${libs}/*`;
}

/**
 * Produces `records` to partition 0 of `topic` with the Java producer; returns how many were
 * committed and aborted. Throws with the program's output when it fails.
 */
export async function produceWithJava(
  config: PlatformConfig,
  brokers: string,
  topic: string,
  compression: JavaCompression,
  records: readonly JavaRecord[],
  transactional = false,
): Promise<{ committed: number; aborted: number }> {
  const classpath = await javaProducerClasspath(config);
  const child = spawn('java', ['-cp', classpath, 'Produce', brokers, topic, compression, String(transactional)], { stdio: ['pipe', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
  child.stdin.end(records.map((r) => `${r.abort ? 'A' : 'C'}\t${r.value.replace(/\n/g, ' ')}\n`).join(''));
  const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
  if (code !== 0) throw new Error(`java producer (${compression}, transactional=${transactional}) exited with ${code}: ${stderr.slice(-2000)}`);
  const last = stdout.trim().split('\n').pop() ?? '';
  return JSON.parse(last) as { committed: number; aborted: number };
}
