/**
 * The platform tool follows CLI conventions: `-h`/`--help` on every command and subcommand exits 0
 * with the usage; unknown options and subcommands are named with the closest known word; every
 * `platform` example in the README parses with the tool's real parser, and every option and
 * subcommand the parser accepts appears in the command's usage text.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { userInfo } from 'node:os';
import { fileURLToPath } from 'node:url';
import { parse as shellParse } from 'shell-quote';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { callerName } from '../../workers/cli/alerts.js';
import { closestMatch, parseCommandLine, UsageError, wantsHelp, type Command } from '../../workers/cli/command.js';
import { commandNames, loadCommand, main } from '../../workers/platform.js';

const root = fileURLToPath(new URL('../..', import.meta.url));

let out: string[] = [];
let err: string[] = [];
beforeEach(() => {
  out = [];
  err = [];
  vi.spyOn(console, 'log').mockImplementation((...a: unknown[]) => void out.push(a.join(' ')));
  vi.spyOn(console, 'error').mockImplementation((...a: unknown[]) => void err.push(a.join(' ')));
});
afterEach(() => vi.restoreAllMocks());

async function commands(): Promise<Command[]> {
  return Promise.all(commandNames().map(async (name) => (await loadCommand(name))!));
}

/** Every `platform ...` example in the README, as argv after `platform`, with where it was found. */
function readmeExamples(): { line: number; text: string; argv: string[] }[] {
  const lines = readFileSync(`${root}/README.md`, 'utf8').split('\n');
  const found: { line: number; text: string; argv: string[] }[] = [];
  let inCode = false;
  lines.forEach((raw, index) => {
    if (raw.trimStart().startsWith('```')) {
      inCode = !inCode;
      return;
    }
    // In code blocks the whole line is the command; in prose only `inline code` is.
    const candidates = inCode ? [raw] : [...raw.matchAll(/`([^`]+)`/g)].map((m) => m[1]!);
    for (const text of candidates) {
      const m = /(?:^|\s)(?:npm run(?: -s)? platform --|npx platform|platform)\s+(.*)$/.exec(text.trim());
      if (!m || (!inCode && !/^\s*(?:npm run|npx platform|platform)/.test(text))) continue;
      const argv: string[] = [];
      for (const entry of shellParse(m[1]!)) {
        if (typeof entry !== 'string') break; // a comment, pipe or `||`: the example ends there
        argv.push(entry);
      }
      if (argv.length > 0) found.push({ line: index + 1, text: text.trim(), argv });
    }
  });
  return found;
}

describe('platform CLI conventions', () => {
  it('--help and -h on every command and every subcommand print its usage and exit 0', async () => {
    for (const command of await commands()) {
      const subs = Object.keys(command.spec.subcommands ?? {});
      for (const argv of [[command.name, '--help'], [command.name, '-h'], ...subs.flatMap((s) => [[command.name, s, '--help'], [command.name, s, 'ID', '-h']])]) {
        out = [];
        expect(await main(argv), argv.join(' ')).toBe(0);
        expect(out.join('\n'), argv.join(' ')).toBe(command.usage);
      }
      out = [];
      expect(await main(['help', command.name])).toBe(0);
      expect(out.join('\n')).toBe(command.usage);
    }
    expect(await main(['--help'])).toBe(0);
    expect(out.join('\n')).toContain('Commands:');
  });

  it('the real binary: `platform alerts --help` and `platform generate --help` exit 0 and print only the usage', () => {
    for (const argv of [['alerts', '--help'], ['generate', '--help']]) {
      const result = spawnSync('npm', ['run', '-s', 'platform', '--', ...argv], { cwd: root, encoding: 'utf8', timeout: 60_000 });
      expect(result.status, argv.join(' ')).toBe(0);
      expect(result.stdout).toMatch(/^Usage: platform /);
      expect(result.stderr).toBe('');
    }
  });

  it('an unknown option names itself and the closest known one, and exits 2 with the usage line and where to find the rest', async () => {
    const cases: [string[], string][] = [
      [['alerts', 'ack', 'alert-1', '--not', 'hi'], 'platform alerts: ack: unknown option --not; did you mean --note?'],
      [['generate', '--topc', 'requests'], 'platform generate: unknown option --topc; did you mean --topic?'],
      [['alerts', 'list', '--severty=page'], 'platform alerts: list: unknown option --severty; did you mean --severity?'],
      [['status', '--pipelin', 'demo'], 'platform status: unknown option --pipeline'.replace('--pipeline', '--pipelin; did you mean --pipeline?')],
      [['pipeline', 'start', '--partitons', '3'], 'platform pipeline: start: unknown option --partitons; did you mean --partitions?'],
      [['schemas', 'check', '--jsno'], 'platform schemas: check: unknown option --jsno; did you mean --json?'],
      [['sql', '--formt', 'json', 'SELECT 1'], 'platform sql: unknown option --formt; did you mean --format?'],
    ];
    for (const [argv, message] of cases) {
      err = [];
      expect(await main(argv), argv.join(' ')).toBe(2);
      const lines = err.join('\n').split('\n');
      expect(lines[0], argv.join(' ')).toBe(message);
      // Not the whole usage: the error stays on screen.
      expect(lines[1], argv.join(' ')).toMatch(new RegExp(`^Usage: platform ${argv[0]}`));
      expect(lines.slice(2), argv.join(' ')).toEqual([`Run "npm run -s platform -- ${argv[0]} --help" for every option.`]);
    }
    err = [];
    expect(await main(['alerts', 'ack', 'alert-1', '--zzzzzzzz'])).toBe(2);
    expect(err.join('\n')).toContain('ack: unknown option --zzzzzzzz (options: --by, --note)');
  });

  it('an unknown command or subcommand suggests the closest one', async () => {
    expect(await main(['alerts', 'ak', 'alert-1'])).toBe(2);
    expect(err.join('\n')).toContain('unknown subcommand "ak"; did you mean ack?');
    err = [];
    expect(await main(['statsu'])).toBe(2);
    expect(err.join('\n')).toContain('platform: unknown command "statsu"; did you mean status?');
    err = [];
    expect(await main(['pipeline', 'strat'])).toBe(2);
    expect(err.join('\n')).toContain('unknown subcommand "strat"; did you mean start?');
    expect(closestMatch('xyzzy', ['ack', 'list'])).toBeUndefined();
  });

  it('refuses missing values, values on flags and extra arguments, naming them', () => {
    const spec = { subcommands: { ack: { options: { note: { type: 'string' as const }, json: { type: 'boolean' as const } }, positionals: [1, 1] as const } } };
    expect(() => parseCommandLine(spec, ['ack', 'X', '--note'])).toThrow(new UsageError('ack: --note: expected a value'));
    expect(() => parseCommandLine(spec, ['ack', 'X', '--json=yes'])).toThrow(new UsageError('ack: --json: takes no value'));
    expect(() => parseCommandLine(spec, ['ack', 'X', 'Y'])).toThrow(new UsageError('ack: expected 1 argument, got extra "Y"'));
    expect(() => parseCommandLine(spec, ['ack'])).toThrow(new UsageError('ack: expected 1 argument, got 0'));
    expect(parseCommandLine(spec, ['ack', '--', '--not-an-option'])).toMatchObject({ sub: 'ack', positionals: ['--not-an-option'] });
  });

  it('every platform example in the README parses with the real parser', async () => {
    const examples = readmeExamples();
    // The README shows the tool in several sections; losing them silently would make this vacuous.
    expect(examples.length).toBeGreaterThanOrEqual(25);
    const seen = new Set<string>();
    for (const { line, text, argv } of examples) {
      const [name, ...rest] = argv;
      if (name === 'help') {
        expect(rest.length <= 1 && (rest[0] === undefined || commandNames().includes(rest[0])), `README.md:${line} ${text}`).toBe(true);
        continue;
      }
      const command = await loadCommand(name!);
      expect(command, `README.md:${line}: unknown command in ${text}`).toBeDefined();
      // The dispatcher answers -h/--help before parsing, as for `main` above.
      if (wantsHelp(rest)) continue;
      try {
        const parsed = parseCommandLine(command!.spec, rest);
        seen.add(`${name} ${parsed.sub ?? ''}`.trim());
      } catch (error) {
        throw new Error(`README.md:${line}: ${text}\n  ${(error as Error).message}`);
      }
    }
    // Each command group appears with at least one example.
    for (const name of commandNames()) expect([...seen].some((s) => s.split(' ')[0] === name), name).toBe(true);
    // Every alerts subcommand has an example.
    for (const sub of Object.keys((await loadCommand('alerts'))!.spec.subcommands!)) expect(seen.has(`alerts ${sub}`), `alerts ${sub}`).toBe(true);
  });

  it('every subcommand and option the parser accepts appears in its usage text', async () => {
    for (const command of await commands()) {
      const { spec, usage } = command;
      for (const sub of Object.keys(spec.subcommands ?? {})) expect(usage, `${command.name} ${sub}`).toMatch(new RegExp(`(^|\\s|<|\\|)${sub}(\\s|\\||>|$)`, 'm'));
      const options = [...Object.keys(spec.options ?? {}), ...Object.values(spec.subcommands ?? {}).flatMap((s) => Object.keys(s.options ?? {}))];
      for (const option of options) expect(usage, `${command.name} --${option}`).toContain(`--${option}`);
      expect(usage, command.name).toMatch(/-h, --help|--help/);
    }
  });

  it('CLI actions record the caller: --by defaults to the OS user name even when $USER is empty', () => {
    const saved = process.env.USER;
    process.env.USER = '';
    try {
      expect(callerName(undefined)).toBe(userInfo().username);
      expect(callerName('ann')).toBe('ann');
      expect(() => callerName('  ')).toThrow(UsageError);
    } finally {
      process.env.USER = saved;
    }
  });
});
