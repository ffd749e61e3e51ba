// Runs before `npm start`, `npm test`, `npm run bench` and `stack:up`: installs the npm packages when
// they are missing or older than package-lock.json, with npm's own progress on the terminal.
// Plain Node with no dependencies, because it runs before any are there. The local servers'
// binaries (Temporal CLI, Kafka jars) are installed by the stack itself when it first starts.
import { spawnSync } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../../', import.meta.url));
const marker = `${root}node_modules/.package-lock.json`;
const lock = `${root}package-lock.json`;

const pkg = `${root}package.json`;
const newer = (file) => existsSync(file) && statSync(file).mtimeMs > statSync(marker).mtimeMs + 1000;
const stale = !existsSync(marker) || newer(lock) || newer(pkg);
if (stale) {
  // `npm install`, not `npm ci`: npm 11 records only this platform's optional packages of chdb in
  // the lock file and then refuses `npm ci` as out of sync. The lock still pins every version.
  const cmd = 'install';
  console.log(`[setup] installing npm packages (npm ${cmd}) ...`);
  console.log('[setup] the first install compiles zstd-napi from C sources when its prebuilt binary cannot be downloaded (1-3 min; its compiler lines follow)');
  // --foreground-scripts shows the install scripts' output (the native compile) instead of one
  // spinner line for minutes; JOBS=max lets node-gyp's make use every core.
  const r = spawnSync('npm', [cmd, '--no-audit', '--no-fund', '--no-save', '--foreground-scripts'], { cwd: root, stdio: 'inherit', env: { JOBS: 'max', ...process.env } });
  if (r.status !== 0) {
    console.error(`[setup] npm ${cmd} failed with exit code ${r.status}; see the output above.`);
    process.exit(r.status ?? 1);
  }
  console.log('[setup] npm packages ready');
}
