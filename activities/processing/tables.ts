/**
 * Creates and evolves the typed output tables of a processor version: `CREATE TABLE IF NOT EXISTS`
 * from the derived columns, then `DESCRIBE` and `ALTER TABLE ... ADD COLUMN IF NOT EXISTS` for each
 * column the table lacks. A column whose type differs is never altered: the apply stops with an
 * error naming the output field path (the `platform processors check` gate refuses such versions
 * before they reach a worker).
 */
import type { ClickHouseClient } from '@clickhouse/client';
import { addColumnSql, createTableSql, type OutputColumn } from '../../schemas/processing/ddl.js';
import type { ProcessorDefinition } from '../../schemas/processing/define.js';
import { PlatformError } from '../errors.js';

/** Thrown when an existing table holds a column of another type than the version needs. */
export class OutputTableConflictError extends PlatformError {
  constructor(
    readonly table: string,
    readonly path: string,
    message: string,
  ) {
    super('output_table_conflict', message, false);
    this.name = 'OutputTableConflictError';
  }
}

/** What {@link applyOutputTables} did, per table. */
export interface TableApplyResult {
  readonly table: string;
  readonly created: boolean;
  readonly added: readonly string[];
}

/** The columns of a table as `DESCRIBE` reports them: name -> type. */
export async function describeTable(warehouse: ClickHouseClient, table: string): Promise<Map<string, string>> {
  const result = await warehouse.query({ query: 'DESCRIBE TABLE {table:Identifier}', query_params: { table }, format: 'JSONEachRow' });
  // Recent servers print named tuples over several lines; one line reads (and compares) better.
  const oneLine = (type: string) => type.replace(/\(\s+/g, '(').replace(/,\s+/g, ', ').replace(/\s+\)/g, ')');
  return new Map((await result.json<{ name: string; type: string }>()).map((r) => [r.name, oneLine(r.type)]));
}

async function exists(warehouse: ClickHouseClient, table: string): Promise<boolean> {
  const result = await warehouse.query({ query: 'EXISTS TABLE {table:Identifier}', query_params: { table }, format: 'JSONEachRow' });
  const rows = await result.json<{ result: number }>();
  return Number(rows[0]?.result ?? 0) === 1;
}

/** Normalises a ClickHouse type string for comparison (DESCRIBE prints `DateTime64(3, 'UTC')`). */
function normalise(type: string): string {
  return type.replace(/\s+/g, '');
}

/** Creates missing tables and adds missing columns for every output of `processor`. */
export async function applyOutputTables(warehouse: ClickHouseClient, processor: ProcessorDefinition): Promise<TableApplyResult[]> {
  const results: TableApplyResult[] = [];
  for (const output of Object.values(processor.outputs)) {
    const created = !(await exists(warehouse, output.table));
    if (created) await warehouse.command({ query: createTableSql(output.table, output.columns) });
    const have = await describeTable(warehouse, output.table);
    const added: string[] = [];
    for (const column of output.columns as readonly OutputColumn[]) {
      const current = have.get(column.name);
      if (current === undefined) {
        await warehouse.command({ query: addColumnSql(output.table, column) });
        added.push(column.name);
      } else if (normalise(current) !== normalise(column.ch)) {
        throw new OutputTableConflictError(
          output.table,
          column.path,
          `${processor.name} v${processor.version}: ${column.path}: table ${output.table} has column ${column.name} ${current}, the version needs ${column.ch}; columns are never retyped`,
        );
      }
    }
    results.push({ table: output.table, created, added });
  }
  return results;
}
