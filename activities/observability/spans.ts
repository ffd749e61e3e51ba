/**
 * Spans inside activities (fetch, validate, insert of a landing), through the OpenTelemetry API
 * only. With no tracer provider registered (tracing off, the default) the API hands out
 * non-recording spans and this costs a few allocations per call. The spans become children of
 * the `RunActivity:<name>` span that `@temporalio/interceptors-opentelemetry` makes active, so
 * one batch is one connected trace from the workflow down to the ClickHouse insert.
 */
import { SpanStatusCode, trace, type Attributes } from '@opentelemetry/api';

/** Instrumentation scope name of the platform's own spans. */
export const tracerName = 'streamwarden';

/**
 * Runs `fn` inside a child span named `name` of the active span; records an exception and the
 * ERROR status when `fn` throws (and rethrows). Attributes follow OpenTelemetry semantic
 * conventions where one exists (`messaging.*`, `db.*`).
 */
export async function inSpan<T>(name: string, attributes: Attributes, fn: () => Promise<T>): Promise<T> {
  return trace.getTracer(tracerName).startActiveSpan(name, { attributes }, async (span) => {
    try {
      return await fn();
    } catch (err) {
      span.recordException(err instanceof Error ? err : String(err));
      span.setStatus({ code: SpanStatusCode.ERROR, message: err instanceof Error ? err.message : String(err) });
      throw err;
    } finally {
      span.end();
    }
  });
}

/** The synchronous form of {@link inSpan}, for CPU-bound steps such as validation. */
export function inSpanSync<T>(name: string, attributes: Attributes, fn: () => T): T {
  return trace.getTracer(tracerName).startActiveSpan(name, { attributes }, (span) => {
    try {
      return fn();
    } catch (err) {
      span.recordException(err instanceof Error ? err : String(err));
      span.setStatus({ code: SpanStatusCode.ERROR, message: err instanceof Error ? err.message : String(err) });
      throw err;
    } finally {
      span.end();
    }
  });
}
