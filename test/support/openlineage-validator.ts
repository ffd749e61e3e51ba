/**
 * Strict validation of OpenLineage run events against the pinned spec files in
 * schemas/openlineage/ (ajv, JSON Schema draft 2020-12, strict mode, format assertions on through
 * ajv-formats: `uuid`, `date-time`, `uri`). The event is checked against the core RunEvent
 * schema, and every facet that names a `_schemaURL` against that facet's own schema; a facet whose
 * schema is not pinned here is an error, so nothing passes unchecked.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Ajv2020 } from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';

const dir = fileURLToPath(new URL('../../schemas/openlineage/', import.meta.url));

function load(ajv: Ajv2020, folder: string): void {
  for (const f of readdirSync(folder, { withFileTypes: true })) {
    if (f.isDirectory()) load(ajv, `${folder}${f.name}/`);
    else if (f.name.endsWith('.json')) ajv.addSchema(JSON.parse(readFileSync(`${folder}${f.name}`, 'utf8')) as object);
  }
}

/** A validator over every pinned schema. */
export function openLineageValidator(): (event: unknown) => string[] {
  const ajv = new Ajv2020({ strict: true, strictRequired: false, strictTypes: false, allErrors: true, validateFormats: true });
  addFormats.default(ajv);
  ajv.addKeyword('example');
  load(ajv, dir);
  const runEvent = ajv.getSchema('https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent');
  if (!runEvent) throw new Error('RunEvent schema not found');
  return (event) => {
    const problems: string[] = [];
    if (!runEvent(event)) problems.push(...(runEvent.errors ?? []).map((e) => `RunEvent${e.instancePath}: ${e.message}`));
    const visit = (value: unknown, path: string): void => {
      if (value === null || typeof value !== 'object') return;
      if (Array.isArray(value)) return value.forEach((v, i) => visit(v, `${path}/${i}`));
      const obj = value as Record<string, unknown>;
      if (typeof obj._schemaURL === 'string') {
        const facet = ajv.getSchema(obj._schemaURL);
        if (!facet) problems.push(`${path}: no pinned schema for ${obj._schemaURL}`);
        else if (!facet(obj)) problems.push(...(facet.errors ?? []).map((e) => `${path}${e.instancePath}: ${e.message} (${obj._schemaURL})`));
      }
      for (const [k, v] of Object.entries(obj)) visit(v, `${path}/${k}`);
    };
    visit(event, '');
    return problems;
  };
}
