/**
 * Secrets of processor stages. The pseudonymisation key comes from `PROCESSOR_PSEUDONYM_KEY`; when
 * unset, a random key is created once under the state folder (mode 0600) and reused, so pseudonyms
 * stay stable across restarts of a local stack. The key is never logged.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

/** The secrets handed to stages (`ctx.secrets`), by name. */
export async function processorSecrets(configured: string | undefined, stateDir: string): Promise<Record<string, string>> {
  if (configured !== undefined) return { pseudonymKey: configured.toLowerCase() };
  const file = join(stateDir, 'pseudonym.key');
  try {
    const text = (await readFile(file, 'utf8')).trim();
    if (/^[0-9a-f]{32}$/.test(text)) return { pseudonymKey: text };
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  await mkdir(stateDir, { recursive: true });
  const key = randomBytes(16).toString('hex');
  // `wx`: a concurrent first start keeps the other's key.
  try {
    await writeFile(file, `${key}\n`, { flag: 'wx', mode: 0o600 });
    return { pseudonymKey: key };
  } catch {
    return { pseudonymKey: (await readFile(file, 'utf8')).trim() };
  }
}
