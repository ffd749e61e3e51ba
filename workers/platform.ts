/**
 * The `platform` command-line tool for people: `platform help` lists the subcommands.
 * Each command group lives in its own file under workers/cli/ and is registered here.
 * `-h`/`--help` on any command or subcommand prints its usage and exits 0; a bad command line
 * exits 2 with one line naming the problem (and the closest known word), then the usage.
 */
import { pathToFileURL } from 'node:url';
import { ConfigError } from '../schemas/config.js';
import { closestMatch, UsageError, wantsHelp, type Command } from './cli/command.js';

const loaders: Record<string, () => Promise<Command>> = {
  // Registered lazily so that `platform sql` does not load kafkajs, and so on.
};

/** Names of the registered command groups, in the order `platform help` lists them. */
export function commandNames(): string[] {
  return Object.keys(loaders);
}

/** Loads a registered command group (for tests: the README examples are parsed with its spec). */
export async function loadCommand(name: string): Promise<Command | undefined> {
  const load = loaders[name];
  return load ? load() : undefined;
}

/** Registers a command group (used by the list below). */
function register(name: string, load: () => Promise<{ default: Command }>): void {
  loaders[name] = async () => (await load()).default;
}

register('generate', () => import('./cli/generate.js'));
register('sql', () => import('./cli/sql.js'));
register('status', () => import('./cli/status.js'));
register('pipeline', () => import('./cli/pipeline.js'));
register('schemas', () => import('./cli/schemas.js'));
register('alerts', () => import('./cli/alerts.js'));
register('processors', () => import('./cli/processors.js'));
register('detectors', () => import('./cli/detectors.js'));
register('lineage', () => import('./cli/lineage.js'));
register('rollouts', () => import('./cli/rollouts.js'));
register('replay', () => import('./cli/replay.js'));

async function help(topic?: string): Promise<number> {
  if (topic && loaders[topic]) {
    const cmd = await loaders[topic]();
    console.log(cmd.usage);
    return 0;
  }
  if (topic && !topic.startsWith('-')) {
    console.error(`platform help: unknown command "${topic}"${suggest(topic)}`);
    return 2;
  }
  console.log('Usage: platform <command> [args]\n\nCommands:');
  for (const [name, load] of Object.entries(loaders)) {
    try {
      const cmd = await load();
      console.log(`  ${name.padEnd(10)} ${cmd.summary}`);
    } catch {
      // A command group whose file is not there yet is simply not listed.
    }
  }
  console.log('\nRun `platform help <command>` for details.');
  return 0;
}

function suggest(word: string): string {
  const near = closestMatch(word, commandNames());
  return near === undefined ? '' : `; did you mean ${near}?`;
}

/** Runs the tool with `argv` (the words after `platform`); resolves to the exit code. */
export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === 'help' || name === '--help' || name === '-h') return help(rest[0]);
  const load = loaders[name];
  if (!load) {
    console.error(`platform: unknown ${name.startsWith('-') ? 'option' : 'command'} "${name}"${suggest(name)}. Run \`platform help\`.`);
    return 2;
  }
  const cmd = await load();
  if (wantsHelp(rest)) {
    console.log(cmd.usage);
    return 0;
  }
  try {
    return await cmd.run(rest);
  } catch (err) {
    if (err instanceof UsageError) {
      // The error, the usage line and where the rest is: the whole usage (50 lines for generate)
      // would push the one line that matters off the screen.
      console.error(`platform ${name}: ${err.message}\n${cmd.usage.split('\n')[0]}\nRun "npm run -s platform -- ${name} --help" for every option.`);
      return 2;
    }
    if (err instanceof ConfigError) {
      console.error(err.message);
      return 2;
    }
    throw err;
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (err: unknown) => {
      console.error(err instanceof Error ? err.message : err);
      process.exit(1);
    },
  );
}
