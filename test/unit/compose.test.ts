/**
 * docker-compose.yml cannot run on these machines (no Docker), so it is checked the way compose
 * itself reads it: YAML with merge keys, `${VAR:-default}` interpolation, then every value that the
 * platform reads is validated by the platform's own config schema, and every address is checked
 * against the service that is supposed to answer there.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { buildDashboards } from '../../dashboards/build.js';
import { DEFAULT_DATASOURCE_UID, DEFAULT_PROMETHEUS_UID, DATASOURCE_TYPE, PROMETHEUS_DATASOURCE_TYPE, prometheusPanels } from '../../dashboards/panels.js';
import { serverProperties, pinnedKafkaVersion } from '../../infra/local/kafka.js';
import { TEMPORAL_CLI_VERSION } from '../../infra/local/temporal.js';
import { pipelineInputSchema, pipelineWorkflowId } from '../../schemas/ingest/pipeline.js';
import { searchAttributes } from '../../schemas/search-attributes.js';
import * as workflows from '../../workflows/index.js';
import generateCommand from '../../workers/cli/generate.js';
import { envSchema, loadConfig } from '../../schemas/config.js';

const root = join(import.meta.dirname, '../..');

interface Healthcheck {
  test: string | string[];
}
interface Service {
  image?: string;
  build?: { context: string; dockerfile: string };
  command?: string[];
  environment?: Record<string, string | number | boolean | null>;
  expose?: (string | number)[];
  ports?: string[];
  volumes?: string[];
  depends_on?: Record<string, { condition: string }>;
  healthcheck?: Healthcheck;
  profiles?: string[];
  user?: string;
}
interface Compose {
  services: Record<string, Service>;
  volumes?: Record<string, unknown>;
}

/**
 * Compose's variable interpolation for the forms this file uses: `${NAME}`, `${NAME:-default}`,
 * `${NAME-default}`, `$NAME` and `$$` (a literal dollar). Values come from `env` (empty here, so
 * the file's own defaults are what is checked).
 */
function interpolate(text: string, env: Record<string, string>): string {
  return text.replace(/\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])((?:[^}$]|\$\$|\$\([^)]*\))*))?\}|\$([A-Za-z_][A-Za-z0-9_]*)/g, (match, braced?: string, op?: string, fallback?: string, bare?: string) => {
    if (match === '$$') return '$';
    const name = braced ?? bare!;
    const value = env[name];
    if (op === ':?' && (value === undefined || value === '')) throw new Error(`docker-compose.yml: required variable ${name} is missing a value: ${fallback ?? ''}`);
    if (op === ':-') return value === undefined || value === '' ? (fallback ?? '') : value;
    if (op === '-') return value ?? fallback ?? '';
    if (value === undefined) throw new Error(`docker-compose.yml uses \${${name}} without a default`);
    return value;
  });
}

/** What an operator must export before `docker compose up` (the file has no default for them). */
const composeRequired = { ALERT_SIGNING_SECRET: 'a-real-secret-from-openssl-rand-0123456789' };

function loadCompose(): Compose {
  const raw = readFileSync(join(root, 'docker-compose.yml'), 'utf8');
  // Interpolation applies to the YAML text's values; no key in this file contains a `$`.
  // Required variables (`${NAME:?message}`) get a value, as the operator has to give them.
  return parse(interpolate(raw, composeRequired), { merge: true }) as Compose;
}

const compose = loadCompose();
const services = compose.services;

function service(name: string): Service {
  const found = services[name];
  if (!found) throw new Error(`docker-compose.yml: expected a service "${name}", found ${Object.keys(services).join(', ')}`);
  return found;
}

function stringEnv(svc: Service): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [key, value] of Object.entries(svc.environment ?? {})) {
    if (value !== null && value !== undefined) out[key] = String(value);
  }
  return out;
}

function exposedPorts(svc: Service): number[] {
  return (svc.expose ?? []).map(Number);
}

/** `host:container` port mappings as container -> host. */
function publishedPorts(svc: Service): Map<number, number> {
  const out = new Map<number, number>();
  for (const mapping of svc.ports ?? []) {
    const parts = mapping.split(':');
    out.set(Number(parts.at(-1)), Number(parts.at(-2)));
  }
  return out;
}

/** The value after `flag` in a command list (`--port 7233`). */
function flagValue(command: string[] | undefined, flag: string): string | undefined {
  const args = command ?? [];
  const index = args.indexOf(flag);
  return index >= 0 ? args[index + 1] : undefined;
}

function hostPort(address: string): { host: string; port: number } {
  const [host, port] = address.split(':');
  return { host: host!, port: Number(port) };
}

const platformServices = ['worker', 'analytics-worker', 'generator'];

describe('docker-compose.yml', () => {
  it('defines the platform, its servers, Grafana, the init steps and the demo generator', () => {
    expect(Object.keys(services).sort()).toEqual(
      ['analytics-worker', 'clickhouse', 'dashboards', 'demo-pipeline', 'generator', 'grafana', 'kafka', 'prometheus', 'temporal', 'temporal-init', 'worker'].sort(),
    );
    expect(service('generator').profiles).toEqual(['demo']);
    expect(service('demo-pipeline').profiles).toEqual(['demo']);
    for (const name of ['worker', 'analytics-worker', 'temporal', 'kafka', 'clickhouse', 'grafana']) {
      expect(service(name).profiles, `${name} starts without a profile`).toBeUndefined();
    }
  });

  it('pins every image to a version tag (no latest, no untagged image)', () => {
    for (const [name, svc] of Object.entries(services)) {
      expect(svc.image, `${name}: image`).toBeTruthy();
      const image = svc.image!;
      const tag = image.includes(':') ? image.slice(image.lastIndexOf(':') + 1) : '';
      expect(tag, `${name}: ${image} has no tag`).not.toBe('');
      expect(tag, `${name}: ${image}`).not.toBe('latest');
      // prom/prometheus tags its releases with a leading v.
      expect(tag, `${name}: ${image} tag names a version`).toMatch(/^v?\d+(\.\d+)*([-.][A-Za-z0-9.]+)?$/);
    }
    // The locally built image is tagged with the package version it is built from.
    const { version } = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { version: string };
    for (const name of ['worker', 'analytics-worker', 'dashboards', 'generator']) expect(service(name).image, name).toBe(`streamwarden/platform:${version}`);
    const dockerfile = readFileSync(join(root, 'infra/docker/Dockerfile'), 'utf8');
    const from = /^FROM\s+(\S+)/m.exec(dockerfile)?.[1] ?? '';
    expect(from).toMatch(/^node:20(\.\d+)*-/);
  });

  it('runs the same server versions as the local stack', () => {
    expect(service('temporal').image).toBe(`temporalio/temporal:${TEMPORAL_CLI_VERSION}`);
    expect(service('temporal-init').image).toBe(`temporalio/temporal:${TEMPORAL_CLI_VERSION}`);
    expect(service('demo-pipeline').image).toBe(`temporalio/temporal:${TEMPORAL_CLI_VERSION}`);
    expect(service('kafka').image).toBe(`apache/kafka:${pinnedKafkaVersion()}`);
    expect(service('clickhouse').image).toMatch(/^clickhouse\/clickhouse-server:26\.\d+/);
  });

  it('gives every platform container an environment that the config schema accepts', () => {
    const known = new Set(Object.keys(envSchema.shape));
    for (const name of platformServices) {
      const env = stringEnv(service(name));
      const unknown = Object.keys(env).filter((key) => !known.has(key));
      // loadConfig ignores unknown names, so a typo would silently fall back to a default.
      expect(unknown, `${name}: variables the platform does not read`).toEqual([]);
      const config = loadConfig(env);
      expect(config.TEMPORAL_ADDRESS, `${name}: TEMPORAL_ADDRESS`).toBeDefined();
      expect(config.KAFKA_BROKERS, `${name}: KAFKA_BROKERS`).toBeDefined();
      expect(config.CLICKHOUSE_URL, `${name}: CLICKHOUSE_URL`).toBeDefined();
    }
    // One environment for all: the workers differ only in the task queues they poll.
    const withoutQueues = (env: Record<string, string>) => Object.fromEntries(Object.entries(env).filter(([k]) => k !== 'WORKER_TASK_QUEUES'));
    const workerEnv = withoutQueues(stringEnv(service('worker')));
    const analyticsEnv = withoutQueues(stringEnv(service('analytics-worker')));
    expect(stringEnv(service('generator'))).toEqual(workerEnv);
    expect(analyticsEnv).toEqual(workerEnv);
  });

  it('serves the analytics queue from a worker of its own, and the platform queue from the other', () => {
    const platform = loadConfig(stringEnv(service('worker')));
    const analytics = loadConfig(stringEnv(service('analytics-worker')));
    expect(platform.WORKER_TASK_QUEUES).toBe('platform');
    expect(analytics.WORKER_TASK_QUEUES).toBe('analytics');
    // The same base queue, so the aggregators the platform worker starts land on `<queue>-analytics`.
    expect(analytics.TEMPORAL_TASK_QUEUE).toBe(platform.TEMPORAL_TASK_QUEUE);
    expect(service('analytics-worker').command).toEqual(service('worker').command);
    // The acknowledge endpoint is the platform worker's alone.
    expect(publishedPorts(service('analytics-worker')).size).toBe(0);
    expect(service('analytics-worker').depends_on).toMatchObject(service('worker').depends_on ?? {});
    // What starts a pipeline, or scrapes the workers, brings both up: a pipeline without the
    // analytics worker would land events that no detector judges.
    for (const name of ['demo-pipeline', 'prometheus']) expect(service(name).depends_on, name).toMatchObject({ worker: { condition: 'service_started' }, 'analytics-worker': { condition: 'service_started' } });
  });

  it('points the worker at the temporal service on the port the dev server listens on', () => {
    const config = loadConfig(stringEnv(service('worker')));
    const temporal = service('temporal');
    const { host, port } = hostPort(config.TEMPORAL_ADDRESS!);
    expect(host).toBe('temporal');
    expect(Number(flagValue(temporal.command, '--port'))).toBe(port);
    expect(flagValue(temporal.command, '--ip')).toBe('0.0.0.0');
    expect(exposedPorts(temporal)).toContain(port);
    expect(flagValue(temporal.command, '--namespace')).toBe(config.TEMPORAL_NAMESPACE);
    // The UI is published on the port the README names.
    const uiPort = Number(flagValue(temporal.command, '--ui-port'));
    expect(publishedPorts(temporal).get(uiPort)).toBe(8233);
  });

  it('points the worker at a Kafka listener that advertises the same address', () => {
    const config = loadConfig(stringEnv(service('worker')));
    const kafka = stringEnv(service('kafka'));
    const advertised = kafka.KAFKA_ADVERTISED_LISTENERS!.split(',').map((l) => l.replace(/^[A-Z_]+:\/\//, ''));
    const listenerPorts = kafka.KAFKA_LISTENERS!.split(',').map((l) => Number(l.split(':').at(-1)));
    for (const broker of config.KAFKA_BROKERS!) {
      const { host, port } = hostPort(broker);
      expect(host).toBe('kafka');
      expect(advertised).toContain(broker);
      expect(listenerPorts).toContain(port);
      expect(exposedPorts(service('kafka'))).toContain(port);
    }
    // The host listener is advertised with the port it is published on.
    const hostListener = advertised.find((a) => a.startsWith('localhost:'))!;
    const hostListenerPort = hostPort(hostListener).port;
    expect(publishedPorts(service('kafka')).get(hostListenerPort)).toBe(hostListenerPort);
  });

  it('configures the single KRaft node like the local stack (replication 1, no rebalance delay)', () => {
    const kafka = stringEnv(service('kafka'));
    const local = serverProperties(loadConfig({}))
      .split('\n')
      .filter((line) => /replication\.factor|min\.isr|min\.insync|initial\.rebalance|auto\.create\.topics/.test(line));
    expect(local.length).toBeGreaterThanOrEqual(8);
    for (const line of local) {
      const [key, value] = line.split('=');
      const variable = `KAFKA_${key!.toUpperCase().replaceAll('.', '_')}`;
      expect(kafka[variable], `${variable} (local stack: ${line})`).toBe(value);
    }
    expect(kafka.KAFKA_PROCESS_ROLES).toBe('broker,controller');
    expect(kafka.CLUSTER_ID).toMatch(/^[A-Za-z0-9_-]{22}$/);
  });

  it('points the worker and Grafana at the ClickHouse service, database and user it creates', () => {
    const config = loadConfig(stringEnv(service('worker')));
    const clickhouse = stringEnv(service('clickhouse'));
    const url = new URL(config.CLICKHOUSE_URL!);
    expect(url.hostname).toBe('clickhouse');
    expect(exposedPorts(service('clickhouse'))).toContain(Number(url.port));
    expect(JSON.stringify(service('clickhouse').healthcheck?.test)).toContain(`:${url.port}/ping`);
    expect(clickhouse.CLICKHOUSE_DB).toBe(config.CLICKHOUSE_DATABASE);
    expect(clickhouse.CLICKHOUSE_USER).toBe(config.CLICKHOUSE_USER);
    expect(clickhouse.CLICKHOUSE_PASSWORD).toBe(config.CLICKHOUSE_PASSWORD);

    const grafana = stringEnv(service('grafana'));
    expect(grafana.CLICKHOUSE_HOST).toBe(url.hostname);
    expect(grafana.CLICKHOUSE_USER).toBe(config.CLICKHOUSE_USER);
    expect(grafana.CLICKHOUSE_PASSWORD).toBe(config.CLICKHOUSE_PASSWORD);
    expect(grafana.CLICKHOUSE_DATABASE).toBe(config.CLICKHOUSE_DATABASE);
  });

  it('publishes the platform HTTP port that acknowledge links point at', () => {
    const config = loadConfig(stringEnv(service('worker')));
    const worker = service('worker');
    expect(exposedPorts(worker)).toContain(config.LOCAL_ACK_PORT);
    const published = publishedPorts(worker).get(config.LOCAL_ACK_PORT);
    expect(published).toBeDefined();
    const publicUrl = new URL(config.PLATFORM_PUBLIC_URL!);
    expect(publicUrl.hostname).toBe('localhost');
    expect(Number(publicUrl.port)).toBe(published);
  });

  it('has no built-in signing secret: compose refuses to start without ALERT_SIGNING_SECRET, as the worker would on its non-loopback bind', () => {
    const raw = readFileSync(join(root, 'docker-compose.yml'), 'utf8');
    expect(() => interpolate(raw, {})).toThrow(/required variable ALERT_SIGNING_SECRET/);
    const config = loadConfig(stringEnv(service('worker')));
    expect(config.PLATFORM_HTTP_HOST).toBe('0.0.0.0');
    expect(config.ALERT_SIGNING_SECRET).toBe(composeRequired.ALERT_SIGNING_SECRET);
  });

  it('registers exactly the search attributes of schemas/search-attributes.ts', () => {
    const init = service('temporal-init');
    const command = init.command ?? [];
    expect(command.slice(0, 3)).toEqual(['operator', 'search-attribute', 'create']);
    const config = loadConfig(stringEnv(service('worker')));
    expect(flagValue(command, '--address')).toBe(config.TEMPORAL_ADDRESS);
    expect(flagValue(command, '--namespace')).toBe(config.TEMPORAL_NAMESPACE);
    const created: Record<string, string> = {};
    for (let i = 0; i < command.length; i++) {
      if (command[i] === '--name') {
        expect(command[i + 2], `--type after --name ${command[i + 1]}`).toBe('--type');
        created[command[i + 1]!] = command[i + 3]!;
      }
    }
    expect(created).toEqual({ ...searchAttributes });
  });

  it('starts the demo pipeline with a Temporal CLI command the platform accepts, then streams to its topic', () => {
    const command = service('demo-pipeline').command ?? [];
    expect(command.slice(0, 2)).toEqual(['workflow', 'start']);
    const config = loadConfig(stringEnv(service('worker')));
    expect(flagValue(command, '--address')).toBe(config.TEMPORAL_ADDRESS);
    expect(flagValue(command, '--namespace')).toBe(config.TEMPORAL_NAMESPACE);
    expect(flagValue(command, '--task-queue')).toBe(config.TEMPORAL_TASK_QUEUE);
    const type = flagValue(command, '--type')!;
    expect(Object.keys(workflows), `workflow type ${type}`).toContain(type);
    // The input is what the workflow validates at its boundary.
    const input = pipelineInputSchema.parse(JSON.parse(flagValue(command, '--input')!));
    expect(flagValue(command, '--workflow-id')).toBe(pipelineWorkflowId(input.pipelineId));
    expect(flagValue(command, '--id-conflict-policy'), 'a second `up` joins the running pipeline').toBe('UseExisting');

    const generator = service('generator').command ?? [];
    expect(generator.slice(0, 4)).toEqual(['npx', 'tsx', 'workers/platform.ts', 'generate']);
    expect(flagValue(generator, '--topic')).toBe(input.topic);
    expect(Number(flagValue(generator, '--partitions'))).toBe(input.partitions);
    expect(flagValue(generator, '--incident-at'), 'the demo alert needs an incident').toBeDefined();
    for (const flag of generator.filter((arg) => arg.startsWith('--'))) {
      expect(generateCommand.usage, `platform generate knows ${flag}`).toMatch(new RegExp(`^\\s+${flag}\\b`, 'm'));
    }
    expect(service('generator').depends_on).toMatchObject({ 'demo-pipeline': { condition: 'service_completed_successfully' } });
  });

  it('starts each service after the ones it needs are healthy or done', () => {
    const worker = service('worker');
    expect(worker.depends_on).toMatchObject({
      temporal: { condition: 'service_healthy' },
      'temporal-init': { condition: 'service_completed_successfully' },
      kafka: { condition: 'service_healthy' },
      clickhouse: { condition: 'service_healthy' },
    });
    expect(service('temporal-init').depends_on).toMatchObject({ temporal: { condition: 'service_healthy' } });
    expect(service('grafana').depends_on).toMatchObject({
      clickhouse: { condition: 'service_healthy' },
      dashboards: { condition: 'service_completed_successfully' },
    });
    for (const [name, svc] of Object.entries(services)) {
      for (const [dependency, { condition }] of Object.entries(svc.depends_on ?? {})) {
        expect(services[dependency], `${name} depends on unknown service ${dependency}`).toBeDefined();
        if (condition === 'service_healthy') {
          expect(services[dependency]!.healthcheck, `${dependency} needs a healthcheck (${name} waits for it)`).toBeDefined();
        }
      }
    }
  });

  it('builds the platform image for the worker and runs `npm run worker`', () => {
    const worker = service('worker');
    expect(worker.build).toEqual({ context: '.', dockerfile: 'infra/docker/Dockerfile' });
    expect(worker.command).toEqual(['npm', 'run', '--silent', 'worker']);
    const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { scripts: Record<string, string> };
    expect(pkg.scripts.worker).toBeDefined();
    const dockerfile = readFileSync(join(root, 'infra/docker/Dockerfile'), 'utf8');
    expect(dockerfile).toMatch(/RUN npm (ci|install) --omit=dev\b/);
    expect(dockerfile).toMatch(/CMD \["npm", "run", "--silent", "worker"\]/);
  });

  it('provisions Grafana with the ClickHouse plugin, the datasource the dashboards use and the built dashboards', () => {
    const grafana = service('grafana');
    const env = stringEnv(grafana);
    expect(env.GF_INSTALL_PLUGINS).toContain(DATASOURCE_TYPE);
    // The build reads the host's dashboard sources, at the image's working directory.
    expect(readFileSync(join(root, 'infra/docker/Dockerfile'), 'utf8')).toMatch(/^WORKDIR \/app$/m);
    expect(service('dashboards').volumes).toContain('./dashboards:/app/dashboards:ro');
    expect(grafana.volumes).toContain('./infra/grafana/provisioning:/etc/grafana/provisioning:ro');

    const datasources = parse(readFileSync(join(root, 'infra/grafana/provisioning/datasources/clickhouse.yaml'), 'utf8')) as {
      datasources: { uid: string; type: string; jsonData: Record<string, unknown>; secureJsonData: Record<string, string> }[];
    };
    const [ds] = datasources.datasources;
    expect(ds?.type).toBe(DATASOURCE_TYPE);
    expect(ds?.uid).toBe(DEFAULT_DATASOURCE_UID);
    expect(ds?.jsonData.port).toBe(exposedPorts(service('clickhouse'))[0]);
    // Every $VAR the provisioning file reads is set on the Grafana container.
    const referenced = JSON.stringify(ds).match(/\$[A-Z_]+/g) ?? [];
    expect(referenced.length).toBeGreaterThan(0);
    for (const ref of referenced) expect(env[ref.slice(1)], ref).toBeDefined();

    const providers = parse(readFileSync(join(root, 'infra/grafana/provisioning/dashboards/streamwarden.yaml'), 'utf8')) as {
      providers: { type: string; options: { path: string } }[];
    };
    const providerPath = providers.providers[0]!.options.path;
    const out = flagValue(service('dashboards').command, '--out');
    expect(out).toBe(providerPath);
    // The image creates the mount point for its unprivileged user, so the fresh volume is writable.
    const dockerfile = readFileSync(join(root, 'infra/docker/Dockerfile'), 'utf8');
    expect(dockerfile).toMatch(new RegExp(`chown node:node[^\\n]*${out!.replaceAll('/', '\\/')}`));
    const volumeOf = (svc: Service, path: string) => (svc.volumes ?? []).find((v) => v.split(':')[1] === path)?.split(':')[0];
    expect(volumeOf(grafana, providerPath)).toBeDefined();
    expect(volumeOf(grafana, providerPath)).toBe(volumeOf(service('dashboards'), out!));
    const home = env.GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH ?? '';
    expect(home.startsWith(`${providerPath}/`)).toBe(true);
    expect(buildDashboards().map((d) => d.file)).toContain(home.slice(providerPath.length + 1));
  });

  it('runs Prometheus scraping the worker\'s METRICS_PORT and TEMPORAL_METRICS_PORT, provisioned as the datasource the dashboards use', () => {
    const worker = service('worker');
    const config = loadConfig(stringEnv(worker));
    expect(config.METRICS_HOST).toBe('0.0.0.0');
    expect(exposedPorts(worker)).toEqual(expect.arrayContaining([config.METRICS_PORT, config.TEMPORAL_METRICS_PORT]));
    const prometheus = service('prometheus');
    expect(prometheus.volumes).toContain('./infra/prometheus/prometheus.yml:/etc/prometheus/prometheus.yml:ro');
    const scrape = parse(readFileSync(join(root, 'infra/prometheus/prometheus.yml'), 'utf8')) as { scrape_configs: { static_configs: { targets: string[] }[] }[] };
    const targets = scrape.scrape_configs.flatMap((c) => c.static_configs.flatMap((s) => s.targets)).sort();
    expect(exposedPorts(service('analytics-worker'))).toEqual(expect.arrayContaining([config.METRICS_PORT, config.TEMPORAL_METRICS_PORT]));
    expect(targets).toEqual(['worker', 'analytics-worker'].flatMap((w) => [`${w}:${config.METRICS_PORT}`, `${w}:${config.TEMPORAL_METRICS_PORT}`]).sort());
    const ds = (parse(readFileSync(join(root, 'infra/grafana/provisioning/datasources/prometheus.yaml'), 'utf8')) as { datasources: { uid: string; type: string; url: string }[] }).datasources[0]!;
    expect(ds.type).toBe(PROMETHEUS_DATASOURCE_TYPE);
    expect(ds.uid).toBe(DEFAULT_PROMETHEUS_UID);
    const url = new URL(ds.url);
    expect(url.hostname).toBe('prometheus');
    expect(exposedPorts(prometheus)).toContain(Number(url.port));
    expect(prometheus.command).toContain(`--web.listen-address=:${url.port}`);
    expect(service('grafana').depends_on).toMatchObject({ prometheus: { condition: 'service_healthy' } });
    // Every Prometheus panel of the dashboards points at the variable that defaults to this datasource.
    const promPanels = buildDashboards().flatMap((d) => prometheusPanels(d.dashboard));
    expect(promPanels.length).toBeGreaterThan(0);
  });

  it('installs in the image (npm install --omit=dev) every package the platform code imports at run time', () => {
    const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { dependencies: Record<string, string> };
    const runtime = new Set(Object.keys(pkg.dependencies));
    const builtins = new Set(builtinModules);
    const missing: string[] = [];
    const walk = (dir: string): string[] =>
      readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
        const path = join(dir, entry.name);
        if (entry.isDirectory()) return entry.name === 'node_modules' || entry.name === 'dist' ? [] : walk(path);
        return /\.(ts|mts|js|mjs)$/.test(entry.name) ? [path] : [];
      });
    const files = ['workers', 'activities', 'workflows', 'schemas', 'infra', 'dashboards'].flatMap((dir) => walk(join(root, dir)));
    expect(files.length).toBeGreaterThan(10);
    for (const file of files) {
      const text = readFileSync(file, 'utf8');
      // Type-only imports are erased by tsx, so a dev dependency there is fine.
      const specifiers = [
        ...[...text.matchAll(/^\s*(?:import|export)\s+(type\s+)?[^;]*?\sfrom\s+'([^']+)'/gms)].filter((m) => !m[1]).map((m) => m[2]!),
        ...[...text.matchAll(/\bimport\(\s*'([^']+)'\s*\)/g)].map((m) => m[1]!),
        ...[...text.matchAll(/^\s*import\s+'([^']+)'/gm)].map((m) => m[1]!),
      ];
      for (const spec of specifiers) {
        if (spec.startsWith('.') || spec.startsWith('node:') || builtins.has(spec)) continue;
        const name = spec.startsWith('@') ? spec.split('/').slice(0, 2).join('/') : spec.split('/')[0]!;
        if (!runtime.has(name)) missing.push(`${relative(root, file)}: ${spec}`);
      }
    }
    expect(missing, 'imported at run time but only a devDependency (or not declared)').toEqual([]);
  });

  it('publishes ports on the loopback interface only', () => {
    for (const [name, svc] of Object.entries(services)) {
      for (const mapping of svc.ports ?? []) expect(mapping, name).toMatch(/^127\.0\.0\.1:\d+:\d+$/);
    }
  });

  it('declares every named volume it mounts', () => {
    const declared = new Set(Object.keys(compose.volumes ?? {}));
    for (const [name, svc] of Object.entries(services)) {
      for (const volume of svc.volumes ?? []) {
        const source = volume.split(':')[0]!;
        if (!source.startsWith('.') && !source.startsWith('/')) expect(declared.has(source), `${name}: volume ${source}`).toBe(true);
      }
    }
  });
});
