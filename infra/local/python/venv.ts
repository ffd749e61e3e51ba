/**
 * A pinned Python virtual environment under the state folder, for reference implementations that
 * tests are checked against (scipy for the canary statistics). Created once per requirements file
 * (a hash stamp decides), with pip's progress visible; needs `python3` (>= 3.11 for scipy 1.16).
 */
import { execFile, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

function runVisible(command: string, args: string[]): Promise<void> {
  return new Promise((done, fail) => {
    const child = spawn(command, args, { stdio: ['ignore', 'inherit', 'inherit'] });
    child.on('error', fail);
    child.on('exit', (code) => (code === 0 ? done() : fail(new Error(`${command} ${args.join(' ')} exited with ${code}`))));
  });
}

/**
 * Returns the path of the venv's python under `<stateDir>/python/<name>`, creating the venv and
 * installing `requirementsFile` (exact pins) when missing or when the file changed.
 * Throws naming the failing command.
 */
export async function ensureVenv(stateDir: string, name: string, requirementsFile: string): Promise<string> {
  const dir = resolve(stateDir, 'python', name);
  const python = join(dir, 'bin', 'python');
  const stamp = join(dir, 'requirements.sha256');
  const wanted = createHash('sha256').update(await readFile(requirementsFile)).digest('hex');
  if ((await readFile(stamp, 'utf8').catch(() => '')) === wanted) return python;
  await mkdir(dir, { recursive: true });
  console.log(`[python] creating venv ${dir} (${requirementsFile})`);
  await run('python3', ['-m', 'venv', dir]);
  await runVisible(python, ['-m', 'pip', 'install', '--disable-pip-version-check', '--progress-bar', 'off', '-r', requirementsFile]);
  await writeFile(stamp, wanted);
  return python;
}
