/**
 * Installs Temporal's time-skipping test server (the Java SDK's in-memory server, from Maven
 * Central, pinned in pom.xml next to this file) into the state folder, and writes the executable
 * that `TestWorkflowEnvironment.createTimeSkipping({ server: { executable: { type: 'existing-path',
 * path } } })` runs. The SDK starts that executable with the port as its only argument (then any
 * `extraArgs`), which is exactly what `io.temporal.testserver.TestServer` takes.
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmod, mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const run = promisify(execFile);
const pom = fileURLToPath(new URL('./pom.xml', import.meta.url));

/**
 * Returns the path of the test server's launcher under `<stateDir>/temporal-test-server`,
 * copying the jars with Maven first when they are missing or the pom changed. Needs `mvn` and `java`.
 */
export async function ensureTemporalTestServer(stateDir: string): Promise<string> {
  const dir = resolve(stateDir, 'temporal-test-server');
  const libs = join(dir, 'libs');
  const launcher = join(dir, 'temporal-test-server');
  const stamp = join(dir, 'pom.sha256');
  const wanted = createHash('sha256').update(await readFile(pom)).digest('hex');
  const current = await readFile(stamp, 'utf8').catch(() => '');
  const jars = await readdir(libs).catch(() => [] as string[]);
  if (current !== wanted || !jars.some((j) => j.startsWith('temporal-test-server-'))) {
    await mkdir(libs, { recursive: true });
    try {
      await run('mvn', ['-q', '-B', '-f', pom, 'dependency:copy-dependencies', `-DoutputDirectory=${libs}`], { maxBuffer: 16 * 1024 * 1024 });
    } catch (err) {
      const e = err as { stderr?: string; stdout?: string; message: string };
      throw new Error(`temporal test server: mvn dependency:copy-dependencies -f ${pom} failed: ${e.stderr || e.stdout || e.message}`);
    }
    await writeFile(stamp, wanted);
  }
  // The classpath wildcard is expanded by java itself, so the script does not depend on jar names.
  await writeFile(launcher, `#!/bin/sh\nexec java -Xss1m -XX:+UseSerialGC -cp '${libs}/*' io.temporal.testserver.TestServer "$@"\n`);
  await chmod(launcher, 0o755);
  return launcher;
}
