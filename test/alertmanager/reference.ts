/**
 * The reference Alertmanager for differential tests: the real v0.35.0 server and amtool, built by
 * `infra/alerting/conformance/install.sh` (cached in ~/.cache/streamwarden), started on free ports
 * of 127.0.0.1 with a temporary config and data dir. Helpers translate the platform's alerting
 * config into Alertmanager YAML, so both sides read the very same matcher text.
 */
import { execFile, execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type AddressInfo } from 'node:net';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { stringify } from 'yaml';

const run = promisify(execFile);
const installer = fileURLToPath(new URL('../../infra/alerting/conformance/install.sh', import.meta.url));

/** Where the installer puts the binaries. */
export function referenceDir(): string {
  return join(process.env.STREAMWARDEN_CACHE ?? join(homedir(), '.cache', 'streamwarden'), 'alertmanager-v0.35.0');
}

/** Builds (once) and returns the reference binaries; progress goes to the terminal. */
export function ensureReference(): { alertmanager: string; amtool: string } {
  execFileSync('bash', [installer], { stdio: 'inherit' });
  return { alertmanager: join(referenceDir(), 'alertmanager'), amtool: join(referenceDir(), 'amtool') };
}

/** A free TCP port on 127.0.0.1. */
export async function freePort(): Promise<number> {
  return await new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

/** Route node as the platform writes it (policy.json), the subset the conformance tests use. */
export interface RouteText {
  matchers?: string[];
  receiver?: string;
  groupBy?: string[];
  groupWait?: string;
  groupInterval?: string;
  repeatInterval?: string;
  continue?: boolean;
  routes?: RouteText[];
}

/** Inhibit rule as the platform writes it. */
export interface InhibitText {
  sourceMatchers: string[];
  targetMatchers: string[];
  equal?: string[];
}

function routeYaml(r: RouteText): Record<string, unknown> {
  return {
    ...(r.receiver !== undefined ? { receiver: r.receiver } : {}),
    ...(r.matchers?.length ? { matchers: r.matchers } : {}),
    ...(r.groupBy !== undefined ? { group_by: r.groupBy } : {}),
    ...(r.groupWait !== undefined ? { group_wait: r.groupWait } : {}),
    ...(r.groupInterval !== undefined ? { group_interval: r.groupInterval } : {}),
    ...(r.repeatInterval !== undefined ? { repeat_interval: r.repeatInterval } : {}),
    ...(r.continue ? { continue: true } : {}),
    ...(r.routes?.length ? { routes: r.routes.map(routeYaml) } : {}),
  };
}

/** Alertmanager YAML for a routing tree, receivers (optionally with a webhook URL) and inhibit rules. */
export function alertmanagerYaml(opts: { route: RouteText; receivers: string[]; inhibitRules?: InhibitText[]; webhookUrl?: string }): string {
  return stringify({
    route: routeYaml(opts.route),
    receivers: opts.receivers.map((name) => ({
      name,
      ...(opts.webhookUrl ? { webhook_configs: [{ url: `${opts.webhookUrl}/${name}`, send_resolved: false }] } : {}),
    })),
    inhibit_rules: (opts.inhibitRules ?? []).map((r) => ({ source_matchers: r.sourceMatchers, target_matchers: r.targetMatchers, equal: r.equal ?? [] })),
  });
}

/** The last non-empty line of a command's output (amtool logs warnings before its answer). */
export function lastLine(text: string): string {
  return text.trim().split('\n').at(-1)?.trim() ?? '';
}

/** amtool wrapper. */
export class Amtool {
  constructor(
    readonly bin: string,
    readonly dir: string,
  ) {}

  static async create(bin: string): Promise<Amtool> {
    return new Amtool(bin, await mkdtemp(join(tmpdir(), 'amtool-')));
  }

  /** `amtool check-config`: true when Alertmanager accepts the config. */
  async checkConfig(yamlText: string): Promise<{ ok: boolean; output: string }> {
    const file = join(this.dir, `check-${Math.random().toString(36).slice(2)}.yml`);
    await writeFile(file, yamlText);
    try {
      const { stdout, stderr } = await run(this.bin, ['check-config', file]);
      return { ok: true, output: stdout + stderr };
    } catch (err) {
      const e = err as { stdout?: string; stderr?: string };
      return { ok: false, output: `${e.stdout ?? ''}${e.stderr ?? ''}` };
    } finally {
      await rm(file, { force: true });
    }
  }

  /** `amtool config routes test`: receiver names, in routing-tree order, for labels given as `name="value"` texts. */
  async routesTest(yamlText: string, labelTexts: string[]): Promise<string[]> {
    const file = join(this.dir, `routes-${Math.random().toString(36).slice(2)}.yml`);
    await writeFile(file, yamlText);
    try {
      const { stdout } = await run(this.bin, ['config', 'routes', 'test', `--config.file=${file}`, '--', ...labelTexts]);
      // Config-parsing warnings (classic-parser fallbacks) are logged to stdout first; the answer is the last line.
      return lastLine(stdout).split(',').filter((s) => s !== '');
    } finally {
      await rm(file, { force: true });
    }
  }

  async close(): Promise<void> {
    await rm(this.dir, { recursive: true, force: true });
  }
}

/** A running reference Alertmanager. */
export class ReferenceAlertmanager {
  private constructor(
    readonly url: string,
    private readonly child: ChildProcess,
    private readonly dir: string,
    readonly logs: string[],
  ) {}

  /** Starts the server with the config on a free port (clustering off) and waits until it is ready. */
  static async start(bin: string, yamlText: string): Promise<ReferenceAlertmanager> {
    const dir = await mkdtemp(join(tmpdir(), 'alertmanager-'));
    await writeFile(join(dir, 'alertmanager.yml'), yamlText);
    const port = await freePort();
    const url = `http://127.0.0.1:${port}`;
    const child = spawn(
      bin,
      [
        `--config.file=${join(dir, 'alertmanager.yml')}`,
        `--storage.path=${join(dir, 'data')}`,
        `--web.listen-address=127.0.0.1:${port}`,
        '--cluster.listen-address=',
        '--log.level=warn',
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    const logs: string[] = [];
    child.stdout.on('data', (b: Buffer) => logs.push(b.toString()));
    child.stderr.on('data', (b: Buffer) => logs.push(b.toString()));
    const am = new ReferenceAlertmanager(url, child, dir, logs);
    const deadline = Date.now() + 30_000;
    for (;;) {
      if (child.exitCode !== null) throw new Error(`alertmanager exited ${child.exitCode}: ${logs.join('')}`);
      try {
        if ((await fetch(`${url}/-/ready`)).ok) return am;
      } catch {
        // not listening yet
      }
      if (Date.now() > deadline) throw new Error(`alertmanager not ready on ${url}: ${logs.join('')}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  /** POST /api/v2/alerts. */
  async postAlerts(alerts: { labels: Record<string, string>; startsAt?: string; endsAt?: string }[]): Promise<void> {
    const res = await fetch(`${this.url}/api/v2/alerts`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(alerts) });
    if (!res.ok) throw new Error(`POST /api/v2/alerts: ${res.status} ${await res.text()}`);
  }

  /** POST /api/v2/silences; returns the silence id. */
  async postSilence(silence: { matchers: { name: string; value: string; isRegex: boolean; isEqual: boolean }[]; startsAt: string; endsAt: string; createdBy: string; comment: string }): Promise<string> {
    const res = await fetch(`${this.url}/api/v2/silences`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(silence) });
    if (!res.ok) throw new Error(`POST /api/v2/silences: ${res.status} ${await res.text()}`);
    return ((await res.json()) as { silenceID: string }).silenceID;
  }

  /** GET /api/v2/alerts (active, silenced, inhibited and unprocessed alike). */
  async alerts(): Promise<ReferenceAlert[]> {
    const res = await fetch(`${this.url}/api/v2/alerts`);
    if (!res.ok) throw new Error(`GET /api/v2/alerts: ${res.status} ${await res.text()}`);
    return (await res.json()) as ReferenceAlert[];
  }

  async stop(): Promise<void> {
    if (this.child.exitCode === null) {
      const exited = new Promise((r) => this.child.once('exit', r));
      this.child.kill('SIGTERM');
      await exited;
    }
    await rm(this.dir, { recursive: true, force: true });
  }
}

/** An alert as `GET /api/v2/alerts` returns it (the fields the tests read). */
export interface ReferenceAlert {
  labels: Record<string, string>;
  fingerprint: string;
  receivers: { name: string }[];
  status: { state: 'active' | 'suppressed' | 'unprocessed'; silencedBy: string[]; inhibitedBy: string[] };
}
