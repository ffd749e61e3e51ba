// Makes sure a headless-capable Chromium is installed (for the /play page test): the Debian
// package `chromium`, installed with apt-get when missing, with apt's own progress on the terminal.
// Idempotent: prints the path and exits at once when it is already there. Needs root (CI runs as
// root); otherwise it says what to run.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';

const candidates = ['/usr/bin/chromium', '/usr/bin/chromium-browser'];
const found = () => candidates.find((path) => existsSync(path));

if (!found()) {
  if (typeof process.getuid === 'function' && process.getuid() !== 0) {
    console.error('[setup] chromium is missing: run `sudo apt-get install -y chromium` (Debian package)');
    process.exit(1);
  }
  console.log('[setup] installing chromium (apt-get install chromium) ...');
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  for (const args of [['update'], ['install', '-y', '--no-install-recommends', 'chromium']]) {
    const r = spawnSync('apt-get', args, { stdio: 'inherit', env });
    if (r.status !== 0) {
      console.error(`[setup] apt-get ${args.join(' ')} failed with exit code ${r.status}`);
      process.exit(r.status ?? 1);
    }
  }
}
console.log(found());
