/** The `request-telemetry` subject: every version of its contract. Pure. */
import { defineSubject } from '../define.js';
import { requestTelemetrySubject, requestTelemetryV1 } from './v1.js';
import { requestTelemetryV2, upcastRequestTelemetryV1 } from './v2.js';

/** One served HTTP request (edge proxy / service mesh sidecar). */
export const requestTelemetry = defineSubject({
  subject: requestTelemetrySubject,
  description: 'One served HTTP request, as emitted by an edge proxy or a service mesh sidecar.',
  compatibility: 'BACKWARD',
  versions: [
    { version: 1, schema: requestTelemetryV1 },
    {
      version: 2,
      schema: requestTelemetryV2,
      upcast: upcastRequestTelemetryV1,
      notes: 'error {code, retryable} supersedes error_code; protocol (default http/1.1); upstream_ms',
    },
  ],
});
