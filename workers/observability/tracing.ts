/**
 * OpenTelemetry tracing for a worker, configured by the standard OTEL_* variables (see
 * schemas/config.ts) and off when they are unset. When on: a NodeTracerProvider (registered as
 * the global provider, with the AsyncLocalStorage context manager) exporting through a
 * BatchSpanProcessor (bounded queue, exports in the background: a slow or dead collector drops
 * spans, it never blocks an activity), plus Temporal's OpenTelemetry interceptors
 * (`@temporalio/interceptors-opentelemetry`): client (StartWorkflow), workflow (RunWorkflow,
 * StartActivity; exported through a sink, since workflow code cannot do I/O) and activity
 * (RunActivity). The landing's own spans (fetch, validate, insert) are children of RunActivity.
 */
import { createRequire } from 'node:module';
import { context, propagation, trace } from '@opentelemetry/api';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { Resource } from '@opentelemetry/resources';
import { BatchSpanProcessor, ConsoleSpanExporter, type SpanExporter, type SpanProcessor } from '@opentelemetry/sdk-trace-base';
import { NodeTracerProvider } from '@opentelemetry/sdk-trace-node';
import {
  makeWorkflowExporter,
  OpenTelemetryActivityInboundInterceptor,
  OpenTelemetryActivityOutboundInterceptor,
  OpenTelemetryWorkflowClientInterceptor,
} from '@temporalio/interceptors-opentelemetry';
import type { ActivityInterceptorsFactory, InjectedSinks } from '@temporalio/worker';
import type { PlatformConfig } from '../../schemas/config.js';

const require = createRequire(import.meta.url);

/** Path of the workflow interceptor module to bundle with the workflows when tracing is on. */
export const tracingWorkflowInterceptorModule: string = require.resolve('@temporalio/interceptors-opentelemetry/lib/workflow-interceptors');

/** A tracing setup: pieces to give the worker, the client and the bundler. */
export interface Tracing {
  provider: NodeTracerProvider;
  /** Activity interceptors (RunActivity spans; trace ids in the SDK's activity log attributes). */
  activityInterceptors: ActivityInterceptorsFactory[];
  /** Client interceptor: StartWorkflow / SignalWithStart spans, trace context in headers. */
  clientInterceptor: OpenTelemetryWorkflowClientInterceptor;
  /** Worker sinks: the workflow span exporter. */
  sinks: InjectedSinks<Record<string, never>>;
  /** Flushes and stops the provider (call at shutdown). */
  shutdown(): Promise<void>;
}

/** Whether the OTEL_* variables turn tracing on, and with which exporter. */
export function tracesExporterKind(config: PlatformConfig): 'otlp' | 'console' | null {
  if (config.OTEL_SDK_DISABLED || config.OTEL_TRACES_EXPORTER === 'none') return null;
  if (config.OTEL_TRACES_EXPORTER === 'console') return 'console';
  if (config.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT || config.OTEL_EXPORTER_OTLP_ENDPOINT) return 'otlp';
  return null;
}

/**
 * Sets tracing up around `processor` (tests pass a SimpleSpanProcessor over an in-memory
 * exporter). Registers the provider globally, so `@opentelemetry/api` in the activities finds it.
 */
export function startTracing(processor: SpanProcessor, serviceName: string): Tracing {
  const resource = new Resource({ 'service.name': serviceName });
  const provider = new NodeTracerProvider({ resource, spanProcessors: [processor] });
  provider.register();
  return {
    provider,
    activityInterceptors: [
      (ctx) => ({ inbound: new OpenTelemetryActivityInboundInterceptor(ctx), outbound: new OpenTelemetryActivityOutboundInterceptor(ctx) }),
    ],
    clientInterceptor: new OpenTelemetryWorkflowClientInterceptor(),
    sinks: { exporter: makeWorkflowExporter(processor, resource) } as unknown as InjectedSinks<Record<string, never>>,
    async shutdown() {
      await provider.shutdown();
      trace.disable();
      context.disable();
      propagation.disable();
    },
  };
}

/** Tracing from the OTEL_* configuration, or null when it is off. */
export function tracingFromConfig(config: PlatformConfig): Tracing | null {
  const kind = tracesExporterKind(config);
  if (kind === null) return null;
  let exporter: SpanExporter;
  if (kind === 'console') exporter = new ConsoleSpanExporter();
  else {
    const url = config.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT ?? `${config.OTEL_EXPORTER_OTLP_ENDPOINT!.replace(/\/$/, '')}/v1/traces`;
    exporter = new OTLPTraceExporter({ url, timeoutMillis: 10_000 });
  }
  // Bounded: 2048 spans queued at most, the rest dropped; exports never hold up the caller.
  return startTracing(new BatchSpanProcessor(exporter, { maxQueueSize: 2048, maxExportBatchSize: 512, scheduledDelayMillis: 2000, exportTimeoutMillis: 10_000 }), config.OTEL_SERVICE_NAME);
}
