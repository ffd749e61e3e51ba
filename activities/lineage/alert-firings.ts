/**
 * The firings an alert workflow received, read back from its Temporal history: the start input and
 * every `fire` signal of every run of `alert-<fingerprint>` (continue-as-new starts a new run).
 * Detectors over declared aggregations record their firing's context there (the judged window,
 * the method, the parameterised query that reproduces the series, its parameter values), so
 * `platform lineage trace --alert` can walk back from the alert without a table of its own.
 */
import type { Client } from '@temporalio/client';
import { defaultPayloadConverter } from '@temporalio/common';
import { alertFiringSchema, fireSignalName, type AlertFiring } from '../../schemas/alerting/alert.js';

/** Payloads of a history event's input, decoded with the default converter (undecodable ones skipped). */
function decode(payloads: readonly unknown[] | null | undefined): unknown[] {
  const out: unknown[] = [];
  for (const p of payloads ?? []) {
    try {
      out.push(defaultPayloadConverter.fromPayload(p as Parameters<typeof defaultPayloadConverter.fromPayload>[0]));
    } catch {
      // Encrypted or foreign payloads are not ours to read.
    }
  }
  return out;
}

/**
 * Every distinct firing of the alert workflow `workflowId`, oldest first (the start input and the
 * signal sent with it are the same firing and count once).
 *
 * @throws Error when `workflowId` is not a plain workflow id (letters, digits, `-`, `_`, `.`): it
 *   goes into a visibility query.
 */
export async function alertFiringsFromHistory(client: Client, workflowId: string): Promise<AlertFiring[]> {
  if (!/^[A-Za-z0-9_.-]+$/.test(workflowId)) throw new Error(`alert id: expected alert-<fingerprint>, got ${JSON.stringify(workflowId)}`);
  const runs: string[] = [];
  for await (const w of client.workflow.list({ query: `WorkflowId = '${workflowId}'` })) runs.push(w.runId);
  const seen = new Set<string>();
  const firings: AlertFiring[] = [];
  for (const runId of runs.reverse()) {
    const history = await client.workflow.getHandle(workflowId, runId).fetchHistory();
    for (const event of history.events ?? []) {
      const candidates: unknown[] = [];
      const started = event.workflowExecutionStartedEventAttributes;
      if (started) {
        const [input] = decode(started.input?.payloads);
        if (input && typeof input === 'object' && 'firing' in input) candidates.push((input as { firing: unknown }).firing);
      }
      const signalled = event.workflowExecutionSignaledEventAttributes;
      if (signalled?.signalName === fireSignalName) candidates.push(...decode(signalled.input?.payloads).slice(0, 1));
      for (const c of candidates) {
        const parsed = alertFiringSchema.safeParse(c);
        if (!parsed.success) continue;
        const key = JSON.stringify([parsed.data.firedAt, parsed.data.windowStart, parsed.data.value]);
        if (seen.has(key)) continue;
        seen.add(key);
        firings.push(parsed.data);
      }
    }
  }
  return firings.sort((a, b) => a.firedAt.localeCompare(b.firedAt));
}
