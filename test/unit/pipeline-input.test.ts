/**
 * Workflow inputs: the shortest CLI input gets working defaults, and bad input is described
 * field by field with what was expected and what was found. Also the migration file splitter.
 */
import { describe, expect, it } from 'vitest';
import { splitStatements } from '../../infra/clickhouse/migrate.js';
import { batchId, describeInputError, partitionConsumerInputSchema, partitionWorkflowId, pipelineInputSchema, pipelineWorkflowId } from '../../schemas/ingest/pipeline.js';

describe('pipeline input', () => {
  it('accepts the CLI example and fills in defaults', () => {
    const input = pipelineInputSchema.parse({ pipelineId: 'demo', topic: 'requests' });
    expect(input).toMatchObject({ pipelineId: 'demo', topic: 'requests', partitions: 3, startFrom: 'earliest', batchMaxEvents: 2000 });
    expect(input.rollup.intervalMs).toBe(10_000);
    expect(input.detector).toMatchObject({ enabled: true, errorRateThreshold: 0.1, minRequests: 50 });
    expect(pipelineWorkflowId('demo')).toBe('pipeline-demo');
    expect(partitionWorkflowId('demo', 'requests', 2)).toBe('pipeline-demo-requests-2');
    expect(batchId('demo', 'requests', 2, 100, 200)).toBe('demo/requests/2/100-200');
  });

  it('names every bad field with the expected form and what it got', () => {
    const bad = { pipelineId: 'Demo Pipeline', topic: 42, batchMaxEvents: 0, detector: { errorRateThreshold: 3 }, extra: true };
    const parsed = pipelineInputSchema.safeParse(bad);
    expect(parsed.success).toBe(false);
    const message = describeInputError('pipeline input', parsed.error!, bad);
    expect(message).toMatch(/^pipeline input: /);
    expect(message).toContain('pipelineId: expected 1-63 chars');
    expect(message).toContain('got "Demo Pipeline"');
    expect(message).toContain('topic: expected a string, got 42');
    expect(message).toContain('batchMaxEvents:');
    expect(message).toContain('got 0');
    expect(message).toContain('detector.errorRateThreshold: expected a fraction between 0 and 1');
    expect(message).toContain('"extra"');
  });

  it('declares the duplicate-id window (24 h by default) and names the field when it is wrong', () => {
    expect(pipelineInputSchema.parse({ pipelineId: 'demo', topic: 'requests' }).duplicateIdWindowMinutes).toBe(1440);
    expect(pipelineInputSchema.parse({ pipelineId: 'demo', topic: 'requests', duplicateIdWindowMinutes: 0 }).duplicateIdWindowMinutes).toBe(0);
    for (const [value, text] of [
      ['1d', 'duplicateIdWindowMinutes: expected a number of minutes (0 turns the check off), e.g. 1440, got "1d"'],
      [-1, 'duplicateIdWindowMinutes: expected minutes >= 0 (0 turns the check off), got -1'],
      [1.5, 'duplicateIdWindowMinutes: expected a whole number of minutes, e.g. 1440, got 1.5'],
      [50_000, 'duplicateIdWindowMinutes: expected at most 43200 minutes (30 days), got 50000'],
    ] as const) {
      const bad = { pipelineId: 'demo', topic: 'requests', duplicateIdWindowMinutes: value };
      const parsed = pipelineInputSchema.safeParse(bad);
      expect(describeInputError('pipeline input', parsed.error!, bad)).toBe(`pipeline input: ${text}`);
    }
  });

  it('partition consumer input needs a partition', () => {
    const parsed = partitionConsumerInputSchema.safeParse({ pipelineId: 'demo', topic: 'requests' });
    expect(parsed.success).toBe(false);
    expect(describeInputError('partitionConsumer input', parsed.error!, {})).toContain('partition: expected a partition number, got nothing');
  });
});

describe('splitStatements', () => {
  it('splits on ; at line ends and drops comment lines', () => {
    const sql = `-- a comment; with a semicolon;\nCREATE TABLE a (x UInt8) ENGINE = Memory;\n\nCREATE TABLE b\n(\n  s String DEFAULT 'a;b'\n) ENGINE = Memory;  \n-- trailing\n`;
    expect(splitStatements(sql)).toEqual(['CREATE TABLE a (x UInt8) ENGINE = Memory', "CREATE TABLE b\n(\n  s String DEFAULT 'a;b'\n) ENGINE = Memory"]);
  });
});
