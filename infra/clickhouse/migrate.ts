/**
 * Applies the numbered ClickHouse migrations (infra/clickhouse/migrations/NNN_name.sql) in order
 * and records each in `schema_migrations`. Every file in the folder is picked up, whoever wrote
 * it. Safe to run at every start and from several processes at once: statements are idempotent
 * DDL (IF NOT EXISTS), the record table de-duplicates by version, and a file that two processes
 * apply concurrently is simply applied twice to the same effect.
 */
import { createHash } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import type { ClickHouseClient } from '@clickhouse/client';
import { PlatformError } from '../../schemas/errors.js';

/** The folder the migrations are read from. */
export const migrationsDir = fileURLToPath(new URL('./migrations/', import.meta.url));

/** One migration file. */
export interface Migration {
  /** Number from the file name, e.g. 1 for 001_events.sql. */
  version: number;
  /** File name. */
  name: string;
  /** SHA-256 of the file, to spot files edited after they were applied. */
  checksum: string;
  /** The statements of the file, in order. */
  statements: string[];
}

/** Options of {@link migrate}. */
export interface MigrateOptions {
  /**
   * A client bound to a database that already exists (e.g. `default`), used to create `database`
   * when it is missing: a ClickHouse server refuses requests bound to an unknown database.
   * @default the client itself (works when the database exists)
   */
  admin?: ClickHouseClient;
  /** @default infra/clickhouse/migrations */
  dir?: string;
  /** Progress lines. @default silent */
  log?: (line: string) => void;
}

/** What {@link migrate} did. */
export interface MigrateResult {
  applied: string[];
  alreadyApplied: string[];
  /** Files applied earlier whose content changed since (not re-applied). */
  changed: string[];
}

/** Thrown when a migration file is malformed or a statement fails. */
export class MigrationError extends PlatformError {
  constructor(
    message: string,
    readonly file?: string,
    options?: ErrorOptions,
  ) {
    super('migration_failed', message, false, options);
    this.name = 'MigrationError';
  }
}

const identifier = /^[A-Za-z_][A-Za-z0-9_]*$/;

/**
 * Splits a SQL file into statements: `;` at the end of a line ends a statement, `--` comment lines
 * are dropped. Migration files keep to that form (no `;` at a line end inside a string literal).
 */
export function splitStatements(sql: string): string[] {
  return sql
    .split(/;[ \t]*(?:\r?\n|$)/)
    .map((chunk) =>
      chunk
        .split(/\r?\n/)
        .filter((line) => !/^\s*--/.test(line))
        .join('\n')
        .trim(),
    )
    .filter((statement) => statement.length > 0);
}

/** Reads the migration files of `dir`, ordered by number. */
export async function loadMigrations(dir: string = migrationsDir): Promise<Migration[]> {
  const files = (await readdir(dir)).filter((f) => f.endsWith('.sql')).sort();
  const migrations: Migration[] = [];
  const seen = new Map<number, string>();
  for (const name of files) {
    const match = /^(\d{3,})_[A-Za-z0-9_-]+\.sql$/.exec(name);
    if (!match) throw new MigrationError(`${name}: expected a name like 001_events.sql`, name);
    const version = Number(match[1]);
    const other = seen.get(version);
    if (other) throw new MigrationError(`${name}: number ${match[1]} is already used by ${other}`, name);
    seen.set(version, name);
    const text = await readFile(`${dir}/${name}`, 'utf8');
    migrations.push({
      version,
      name,
      checksum: createHash('sha256').update(text).digest('hex'),
      statements: splitStatements(text),
    });
  }
  return migrations.sort((a, b) => a.version - b.version);
}

/** Creates `database` if it does not exist, using a client bound to an existing database. */
export async function ensureDatabase(admin: ClickHouseClient, database: string): Promise<void> {
  if (!identifier.test(database)) throw new MigrationError(`database: expected an identifier like streamwarden, got ${JSON.stringify(database)}`);
  await admin.command({ query: 'CREATE DATABASE IF NOT EXISTS {db:Identifier}', query_params: { db: database } });
}

/**
 * Brings `database` up to date. `client` must be bound to `database` (createWarehouse(config,
 * endpoints, database)); pass `options.admin` when the database may not exist yet.
 */
export async function migrate(client: ClickHouseClient, database: string, options: MigrateOptions = {}): Promise<MigrateResult> {
  const log = options.log ?? (() => undefined);
  await ensureDatabase(options.admin ?? client, database);
  await client.command({
    query: `CREATE TABLE IF NOT EXISTS {db:Identifier}.schema_migrations
      (version UInt32, name String, checksum String, applied_at DateTime64(3, 'UTC') DEFAULT now64(3))
      ENGINE = ReplacingMergeTree ORDER BY version`,
    query_params: { db: database },
  });
  const rows = await (
    await client.query({
      query: 'SELECT version, any(name) AS name, any(checksum) AS checksum FROM {db:Identifier}.schema_migrations GROUP BY version',
      query_params: { db: database },
      format: 'JSONEachRow',
    })
  ).json<{ version: number; name: string; checksum: string }>();
  const done = new Map(rows.map((r) => [Number(r.version), r]));
  const result: MigrateResult = { applied: [], alreadyApplied: [], changed: [] };
  for (const migration of await loadMigrations(options.dir)) {
    const previous = done.get(migration.version);
    if (previous) {
      result.alreadyApplied.push(migration.name);
      if (previous.checksum !== migration.checksum) result.changed.push(migration.name);
      continue;
    }
    for (const [index, statement] of migration.statements.entries()) {
      try {
        await client.command({ query: statement });
      } catch (err) {
        const detail = err instanceof Error ? err.message : String(err);
        throw new MigrationError(`${migration.name}, statement ${index + 1}: ${detail}`, migration.name, { cause: err });
      }
    }
    await client.insert({
      table: `${database}.schema_migrations`,
      values: [{ version: migration.version, name: migration.name, checksum: migration.checksum }],
      format: 'JSONEachRow',
    });
    log(`applied ${migration.name}`);
    result.applied.push(migration.name);
  }
  if (result.changed.length > 0) log(`changed after being applied (not re-applied): ${result.changed.join(', ')}`);
  return result;
}
