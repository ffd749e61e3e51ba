/** A `platform` subcommand: one file per command group under workers/cli/, listed in workers/platform.ts. */
import { PlatformError } from '../../schemas/errors.js';
export interface Command {
  /** First word on the command line, e.g. `sql`. */
  name: string;
  /** One line for `platform help`. */
  summary: string;
  /** Full usage text for `platform help NAME`. */
  usage: string;
  /** Runs with the words after the name; resolves to the process exit code. */
  run(args: string[]): Promise<number>;
}

/** Thrown for a bad command line; the dispatcher prints the message and the command's usage. */
export class UsageError extends PlatformError {
  constructor(message: string) {
    super('usage', message, false);
    this.name = 'UsageError';
  }
}
