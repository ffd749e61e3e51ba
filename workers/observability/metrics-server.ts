/**
 * Serves the worker's prom-client registry at `GET /metrics` (Prometheus text format 0.0.4) on
 * METRICS_HOST:METRICS_PORT, 127.0.0.1 by default so it is not exposed unless configured.
 * Anything else is 404. A scrape that fails to collect answers 500 with the reason.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';

/** A running metrics endpoint. */
export interface RunningMetricsServer {
  /** e.g. `http://127.0.0.1:9464/metrics` */
  url: string;
  port: number;
  close(): Promise<void>;
}

/** Options of {@link startMetricsServer}. */
export interface MetricsServerOptions {
  registry: Registry;
  /** TCP port; 0 picks a free one (tests). */
  port: number;
  /** @default "127.0.0.1" */
  host?: string;
}

/** Starts the endpoint; rejects (e.g. EADDRINUSE) when the port cannot be bound. */
export async function startMetricsServer(options: MetricsServerOptions): Promise<RunningMetricsServer> {
  const host = options.host ?? '127.0.0.1';
  const server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET' || path !== '/metrics') {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found: the metrics are at GET /metrics\n');
      return;
    }
    options.registry.metrics().then(
      (body) => res.writeHead(200, { 'content-type': options.registry.contentType }).end(body),
      (err: unknown) => res.writeHead(500, { 'content-type': 'text/plain' }).end(`collecting metrics failed: ${err instanceof Error ? err.message : String(err)}\n`),
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://${host.includes(':') ? `[${host}]` : host}:${port}/metrics`,
    port,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/** True when `host:port` can be bound now (checked before handing a port to Temporal's native exporter, which cannot report a failure back). */
export async function portIsFree(host: string, port: number): Promise<boolean> {
  const probe = createServer();
  return new Promise<boolean>((resolve) => {
    probe.once('error', () => resolve(false));
    probe.listen(port, host, () => probe.close(() => resolve(true)));
  });
}
