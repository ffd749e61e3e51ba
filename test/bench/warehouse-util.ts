/** ClickHouse helpers for the bench: fresh databases, landed counts, and dropping what it created. */
import type { ClickHouseClient } from '@clickhouse/client';
import type { LandedCounts } from './report.js';

/** Runs one query with parameters and returns its rows as objects. */
export async function rows<T>(ch: ClickHouseClient, query: string, params: Record<string, unknown> = {}): Promise<T[]> {
  const result = await ch.query({ query, query_params: params, format: 'JSONEachRow' });
  return result.json<T>();
}

/**
 * Counts of the events and dead-letter tables. No FINAL on purpose: a duplicate that
 * ReplacingMergeTree has not merged away yet must show up as count() > uniqExact().
 */
export async function landedCounts(ch: ClickHouseClient): Promise<LandedCounts> {
  const [events] = await rows<{ n: string; u: string }>(ch, 'SELECT count() AS n, uniqExact(topic, partition, offset) AS u FROM events');
  const [dead] = await rows<{ n: string }>(ch, 'SELECT count() AS n FROM dead_letters');
  return { landed: Number(events?.n ?? 0), uniqueOffsets: Number(events?.u ?? 0), deadLetters: Number(dead?.n ?? 0) };
}

/** Creates a database (the client is connected to `default` for this). */
export async function createDatabase(admin: ClickHouseClient, name: string): Promise<void> {
  await admin.command({ query: 'CREATE DATABASE IF NOT EXISTS {name:Identifier}', query_params: { name } });
}

/** Drops a database and everything in it. */
export async function dropDatabase(admin: ClickHouseClient, name: string): Promise<void> {
  await admin.command({ query: 'DROP DATABASE IF EXISTS {name:Identifier}', query_params: { name } });
}
