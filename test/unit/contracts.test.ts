import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { checkCompatibility, contractJsonSchema, defaultCompatibilityMode } from '../../schemas/compat/index.js';
import { contracts, latestVersion, lookupContract, subjects } from '../../schemas/contracts/index.js';
import { requestTelemetryV1 } from '../../schemas/contracts/request-telemetry/v1.js';
import { requestTelemetryV2, upcastRequestTelemetryV1 } from '../../schemas/contracts/request-telemetry/v2.js';
import { catalogueFingerprints, lockFile, type VersionLock } from '../../workers/cli/schemas.js';

describe('the working tree catalogue', () => {
  it('published versions are unchanged: every fingerprint matches versions.lock.json', () => {
    const locked = JSON.parse(readFileSync(lockFile, 'utf8')) as VersionLock;
    const current = catalogueFingerprints(subjects);
    for (const [subject, versions] of Object.entries(locked)) {
      for (const [version, fp] of Object.entries(versions)) {
        expect(current[subject]?.[version], `${subject} v${version} was removed from the tree`).toBeDefined();
        expect(current[subject]![version], `${subject} v${version} was edited after it was locked: add a version instead`).toBe(fp);
      }
    }
    for (const [subject, versions] of Object.entries(current)) {
      for (const version of Object.keys(versions)) {
        expect(locked[subject]?.[version], `${subject} v${version} is not locked: run \`npm run platform -- schemas lock\``).toBeDefined();
      }
    }
  });

  it('each version is compatible with all earlier ones under the subject mode', () => {
    for (const s of subjects) {
      const mode = s.compatibility ?? defaultCompatibilityMode;
      const history = s.versions.map((v) => ({ version: v.version, schema: contractJsonSchema(v.schema) }));
      for (const candidate of history.slice(1)) {
        const result = checkCompatibility(candidate, history.filter((h) => h.version < candidate.version), mode);
        expect(result.changes, `${s.subject} v${candidate.version}`).toEqual([]);
      }
    }
  });

  it('the lookup map mirrors the catalogue', () => {
    expect(Object.keys(contracts).sort()).toEqual(['deploy-events', 'request-telemetry']);
    expect(latestVersion('request-telemetry')).toBe(2);
    expect(lookupContract('request-telemetry', 3)).toEqual({ found: false, reason: 'unknown_version', knownVersions: [1, 2] });
    expect(lookupContract('nope', 1)).toMatchObject({ found: false, reason: 'unknown_subject' });
  });

  it('the request-telemetry v1 -> v2 migration yields valid v2 data with and without an error code', () => {
    const base = requestTelemetryV1.parse({
      service: 'api', route: '/x', method: 'POST', status: 200, duration_ms: 1, region: 'us-east-1', tenant_id: 't',
    });
    expect(requestTelemetryV2.parse(upcastRequestTelemetryV1(base))).not.toHaveProperty('error');
    const failed = requestTelemetryV1.parse({ ...base, status: 500, error_code: 'DB_DOWN' });
    expect(requestTelemetryV2.parse(upcastRequestTelemetryV1(failed))).toMatchObject({
      error_code: 'DB_DOWN',
      error: { code: 'DB_DOWN', retryable: false },
      protocol: 'http/1.1',
    });
  });
});
