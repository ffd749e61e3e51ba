/**
 * The commands `npm start` prints under "Try:". They must work when pasted into a new shell (any
 * directory, none of this process's environment, possibly as root where `$USER` is empty), so each
 * one carries what it needs: the repository path (`npm --prefix`), the platform variables this
 * process was started with (non-default ports, addresses, state folder), the Temporal CLI's full
 * path and address, and literal values instead of shell variables.
 */
import { userInfo } from 'node:os';
import { envSchema, secretVariables, type PlatformConfig } from '../schemas/config.js';
import type { StackEndpoints } from '../infra/local/endpoints.js';

/** What the commands are built from. */
export interface TryCommandsInput {
  /** Absolute path of the repository (where `npm run platform` works). */
  repoDir: string;
  /** The environment `npm start` runs with; platform variables set here are carried into the commands. */
  env: Readonly<Record<string, string | undefined>>;
  config: PlatformConfig;
  endpoints: StackEndpoints;
  /** Temporal CLI to print: the installed binary's absolute path, or `temporal`. */
  temporalCli: string;
  /** The pipeline's workflow id (for the `progress` query). */
  pipelineWorkflowId: string;
  pipelineId: string;
  /** The demo alert's workflow id. */
  alertWorkflowId: string;
  /** Name recorded by the Temporal CLI example. @default the OS user name */
  user?: string;
}

/** The printed commands, one per line of the "Try:" block. */
export interface TryCommands {
  /** Temporal CLI: the pipeline's `progress` query. */
  progress: string;
  /** curl: dead letters by reason on the ClickHouse endpoint. */
  deadLetters: string;
  /** Platform CLI: acknowledge the demo alert (`--by` defaults to the OS user). */
  ack: string;
  /** Temporal CLI: the same acknowledgement as an update. */
  ackWithTemporal: string;
  /** curl: the demo processor's typed output, by team and tier. */
  enriched: string;
  /** Platform CLI: switch the demo pipeline to processor version 2 at the next batch boundary. */
  switchProcessor: string;
  /** Secret variables the environment sets that were NOT copied into the commands (export them first). */
  secretsToExport: string[];
}

const safeWord = /^[A-Za-z0-9_./:=@%+,-]+$/;

/** Quotes a word for POSIX shells (single quotes; nothing inside is expanded). */
export function shellQuote(word: string): string {
  return safeWord.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`;
}

/**
 * `NAME=value ...` for every platform variable (from the config schema) set in `env`, secrets
 * excepted, in schema order; empty when none is set.
 */
export function platformEnvPrefix(env: TryCommandsInput['env']): { prefix: string; secrets: string[] } {
  const words: string[] = [];
  const secrets: string[] = [];
  for (const name of Object.keys(envSchema.shape)) {
    const value = env[name];
    if (value === undefined || value === '') continue;
    if (secretVariables.has(name)) secrets.push(name);
    else words.push(`${name}=${shellQuote(value)}`);
  }
  return { prefix: words.length > 0 ? `${words.join(' ')} ` : '', secrets };
}

/** Builds the "Try:" commands (see the module comment). */
export function tryCommands(input: TryCommandsInput): TryCommands {
  const { config, endpoints } = input;
  const { prefix, secrets } = platformEnvPrefix(input.env);
  const temporal = `${shellQuote(input.temporalCli)} --address ${shellQuote(endpoints.temporalAddress)}${config.TEMPORAL_NAMESPACE === 'default' ? '' : ` --namespace ${shellQuote(config.TEMPORAL_NAMESPACE)}`}`;
  const chUrl = endpoints.clickhouseUrl.replace(/\/$/, '');
  const query = `${chUrl}/?database=${encodeURIComponent(config.CLICKHOUSE_DATABASE)}&param_pipeline=${encodeURIComponent(input.pipelineId)}`;
  const sql = 'SELECT reason_code, count() AS n FROM dead_letters WHERE pipeline = {pipeline:String} GROUP BY reason_code ORDER BY n DESC FORMAT PrettyCompact';
  const user = input.user ?? userInfo().username;
  const enrichedSql = 'SELECT team, tier, count() AS requests, countIf(status >= 500) AS errors FROM request_enriched_requests GROUP BY team, tier ORDER BY requests DESC FORMAT PrettyCompact';
  return {
    progress: `${temporal} workflow query --workflow-id ${shellQuote(input.pipelineWorkflowId)} --name progress`,
    deadLetters: `curl -sS ${shellQuote(query)} --data-binary ${shellQuote(sql)}`,
    ack: `${prefix}npm --prefix ${shellQuote(input.repoDir)} run -s platform -- alerts ack ${shellQuote(input.alertWorkflowId)}`,
    ackWithTemporal: `${temporal} workflow update execute --workflow-id ${shellQuote(input.alertWorkflowId)} --name acknowledge --input ${shellQuote(JSON.stringify({ by: user }))}`,
    enriched: `curl -sS ${shellQuote(`${chUrl}/?database=${encodeURIComponent(config.CLICKHOUSE_DATABASE)}`)} --data-binary ${shellQuote(enrichedSql)}`,
    switchProcessor: `${prefix}npm --prefix ${shellQuote(input.repoDir)} run -s platform -- pipeline set-processor --id ${shellQuote(input.pipelineId)} --processor request-enriched@2 --reason ${shellQuote('add protocol and upstream_ms')}`,
    secretsToExport: secrets,
  };
}
