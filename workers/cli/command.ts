/**
 * A `platform` subcommand: one file per command group under workers/cli/, listed in
 * workers/platform.ts. Each command declares its command line as data ({@link CommandSpec}); the
 * one parser here ({@link parseCommandLine}) is what the commands run with and what the README test
 * checks every documented example against, so usage, README and behaviour cannot drift apart.
 *
 * Conventions (POSIX utility syntax and the GNU long-option habits, as in git or kubectl):
 * `-h`/`--help` anywhere before `--` prints the usage and exits 0; an unknown option or subcommand
 * names itself and suggests the closest known one (Levenshtein distance); `--` ends the options.
 */
import { parseArgs } from 'node:util';
import { distance } from 'fastest-levenshtein';
import { PlatformError } from '../../schemas/errors.js';

/** One option: `--name VALUE` (`string`) or `--name` (`boolean`); `multiple` collects repeats. */
export interface OptionSpec {
  type: 'string' | 'boolean';
  multiple?: boolean;
  /** One-letter alias, e.g. `o` for `-o`. */
  short?: string;
  default?: string | boolean;
}

/** Options by long name (without the dashes). */
export type OptionsSpec = Readonly<Record<string, OptionSpec>>;

/** One subcommand: its own options (added to the command's) and how many positional words it takes. */
export interface SubcommandSpec {
  options?: OptionsSpec;
  /** `[min, max]` positional words after the subcommand. @default [0, 0] */
  positionals?: readonly [number, number];
}

/** A command's command line. */
export interface CommandSpec {
  /** Options every subcommand accepts (all of them, for a command without subcommands). */
  options?: OptionsSpec;
  /** Subcommands by name; the first word after the command picks one. */
  subcommands?: Readonly<Record<string, SubcommandSpec>>;
  /** `[min, max]` positional words, for a command without subcommands. @default [0, 0] */
  positionals?: readonly [number, number];
}

/** What {@link parseCommandLine} returns. */
export interface ParsedCommandLine {
  /** The subcommand, when the command has them. */
  sub: string | undefined;
  values: Record<string, string | boolean | string[] | boolean[] | undefined>;
  positionals: string[];
}

export interface Command {
  /** First word on the command line, e.g. `sql`. */
  name: string;
  /** One line for `platform help`. */
  summary: string;
  /** Full usage text for `platform help NAME` and `platform NAME --help`. */
  usage: string;
  /** The command line it accepts (see {@link parseCommandLine}). */
  spec: CommandSpec;
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

/** True when `-h` or `--help` appears before a `--` terminator. */
export function wantsHelp(args: readonly string[]): boolean {
  for (const arg of args) {
    if (arg === '--') return false;
    if (arg === '-h' || arg === '--help') return true;
  }
  return false;
}

/**
 * The candidate closest to `word` by Levenshtein distance, when it is close enough to be a likely
 * typo (at most 2 edits, or a third of the word's length for long words); otherwise undefined.
 */
export function closestMatch(word: string, candidates: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const candidate of candidates) {
    const d = distance(word, candidate);
    if (d < bestDistance) {
      best = candidate;
      bestDistance = d;
    }
  }
  const limit = Math.max(2, Math.floor(word.length / 3));
  return bestDistance <= limit ? best : undefined;
}

function suggestion(word: string, candidates: readonly string[]): string {
  const near = closestMatch(word, candidates);
  return near === undefined ? '' : `; did you mean ${near}?`;
}

function describeCount([min, max]: readonly [number, number]): string {
  if (max === 0) return 'no arguments';
  if (min === max) return `${min} argument${min === 1 ? '' : 's'}`;
  return max === Infinity ? `at least ${min} argument${min === 1 ? '' : 's'}` : `${min} to ${max} arguments`;
}

/**
 * Parses `args` (the words after the command name) against `spec` with node's `util.parseArgs`
 * (strict). Throws {@link UsageError}: unknown subcommand or option (naming it, with the closest
 * known one), a missing option value, a boolean option given a value, or the wrong number of
 * positional words.
 */
export function parseCommandLine(spec: CommandSpec, args: readonly string[]): ParsedCommandLine {
  let sub: string | undefined;
  let words = [...args];
  let sign = '';
  let positionals = spec.positionals ?? ([0, 0] as const);
  let options: Record<string, OptionSpec> = { ...spec.options };
  if (spec.subcommands) {
    const names = Object.keys(spec.subcommands);
    const first = words[0];
    if (first === undefined || first.startsWith('-')) throw new UsageError(`expected a subcommand first (${names.join(', ')})${first === undefined ? '' : `, got ${JSON.stringify(first)}`}`);
    const chosen = spec.subcommands[first];
    if (!Object.hasOwn(spec.subcommands, first) || !chosen) throw new UsageError(`unknown subcommand "${first}"${suggestion(first, names)} (expected one of ${names.join(', ')})`);
    sub = first;
    sign = `${first}: `;
    words = words.slice(1);
    options = { ...options, ...chosen.options };
    positionals = chosen.positionals ?? [0, 0];
  }
  let parsed;
  try {
    parsed = parseArgs({ args: words, options, allowPositionals: true, strict: true });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const message = (err as Error).message;
    if (code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION') {
      const given = /'([^']+)'/.exec(message)?.[1] ?? message;
      const known = Object.keys(options).map((name) => `--${name}`);
      const bare = given.startsWith('--') ? given.split('=')[0]! : given;
      const near = suggestion(bare, known);
      const listed = known.length > 0 ? ` (options: ${known.join(', ')})` : ' (this takes no options)';
      throw new UsageError(`${sign}unknown option ${bare}${near || listed}`);
    }
    if (code === 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE') {
      const name = /'(--?[^' ]+)/.exec(message)?.[1] ?? '';
      const wantsValue = options[name.replace(/^--?/, '')]?.type === 'string';
      throw new UsageError(`${sign}${name || 'option'}: ${wantsValue ? 'expected a value' : 'takes no value'}`);
    }
    throw new UsageError(`${sign}${message}`);
  }
  const [min, max] = positionals;
  if (parsed.positionals.length < min || parsed.positionals.length > max) {
    const extra = parsed.positionals.length > max ? `, got extra ${JSON.stringify(parsed.positionals.slice(max).join(' '))}` : `, got ${parsed.positionals.length}`;
    throw new UsageError(`${sign}expected ${describeCount(positionals)}${extra}`);
  }
  return { sub, values: parsed.values as ParsedCommandLine['values'], positionals: parsed.positionals };
}

/** A string option's value, if given. */
export function stringOption(values: ParsedCommandLine['values'], name: string): string | undefined {
  const value = values[name];
  return typeof value === 'string' ? value : undefined;
}
