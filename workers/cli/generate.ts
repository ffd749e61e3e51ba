/**
 * `platform generate`: synthetic request telemetry into a Kafka topic, for demos and load. See
 * workers/generator.ts for what the data looks like.
 */
import { loadConfig } from '../../schemas/config.js';
import { createKafka } from '../connections.js';
import { resolveEndpoints } from '../endpoints.js';
import { produceEvents } from '../generator.js';
import { parseCommandLine, UsageError, type Command, type CommandSpec } from './command.js';

/** The command line of `platform generate`. */
export const generateSpec: CommandSpec = {
  options: {
    topic: { type: 'string' },
    count: { type: 'string', default: '10000' },
    rate: { type: 'string', default: '1000' },
    invalid: { type: 'string', default: '0.02' },
    malformed: { type: 'string', default: '0.01' },
    'incident-at': { type: 'string' },
    'incident-service': { type: 'string', default: 'checkout' },
    'incident-duration': { type: 'string', default: '60s' },
    seed: { type: 'string', default: '1' },
    partitions: { type: 'string', default: '3' },
    'no-pace': { type: 'boolean', default: false },
  },
};

/** Parses `20s`, `2m`, `500ms`, `1h` or a plain number of seconds into seconds. */
export function parseDurationSeconds(flag: string, value: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(value.trim());
  if (!m) throw new UsageError(`${flag}: expected a duration like 20s, 2m or 500ms, got ${JSON.stringify(value)}`);
  const n = Number(m[1]);
  const unit = m[2] ?? 's';
  return unit === 'ms' ? n / 1000 : unit === 'm' ? n * 60 : unit === 'h' ? n * 3600 : n;
}

function number(flag: string, value: string | undefined, { min, max, integer }: { min: number; max: number; integer?: boolean }): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isFinite(n) || n < min || n > max || (integer && !Number.isInteger(n))) {
    throw new UsageError(`${flag}: expected ${integer ? 'an integer' : 'a number'} from ${min} to ${max}, got ${JSON.stringify(value)}`);
  }
  return n;
}

const command: Command = {
  name: 'generate',
  summary: 'produce synthetic request telemetry (with bad records and an incident) to Kafka',
  usage: [
    'Usage: platform generate --topic NAME [options]',
    '',
    'Produces request-telemetry v1 events: a few services dominate, tenants are skewed (the Kafka',
    'key), some records are malformed JSON or break the contract, and an optional incident makes',
    'one service fail so the error-rate detector fires. The same --seed gives the same events.',
    '',
    '  --topic NAME              topic (created with --partitions when missing)      required',
    '  --count N                 number of records                                   default 10000',
    '  --rate N                  events per second (event time, and sending pace)    default 1000',
    '  --invalid F               fraction of contract violations                      default 0.02',
    '  --malformed F             fraction of malformed JSON                           default 0.01',
    '  --incident-at DURATION    incident start after the first event, e.g. 20s      default none',
    '  --incident-service NAME   service that fails                                  default checkout',
    '  --incident-duration DUR   incident length                                      default 60s',
    '  --seed N                  PRNG seed                                            default 1',
    '  --partitions N            partitions when creating the topic                   default 3',
    '  --no-pace                 send as fast as possible (event times still follow --rate)',
    '',
    '  -h, --help                this text',
    '',
    'Example: platform generate --topic requests --rate 2000 --count 50000 --invalid 0.02 \\',
    '           --malformed 0.01 --incident-at 20s --incident-service checkout',
  ].join('\n'),
  spec: generateSpec,

  async run(args) {
    // Defaults come from the spec, so every string option below is set except topic and incident-at.
    const values = parseCommandLine(generateSpec, args).values as Record<string, string | undefined> & { 'no-pace'?: boolean };
    if (!values.topic) throw new UsageError('--topic: required, e.g. --topic requests');
    const invalid = number('--invalid', values.invalid, { min: 0, max: 1 })!;
    const malformed = number('--malformed', values.malformed, { min: 0, max: 1 })!;
    if (invalid + malformed > 1) throw new UsageError(`--invalid + --malformed: expected at most 1, got ${invalid + malformed}`);
    const count = number('--count', values.count, { min: 1, max: 1e9, integer: true })!;
    const rate = number('--rate', values.rate, { min: 0.001, max: 1e7 })!;
    const config = loadConfig();
    const kafka = createKafka(config, resolveEndpoints(config), '-generator');
    const started = Date.now();
    let lastReport = 0;
    const summary = await produceEvents(kafka, {
      topic: values.topic,
      count,
      rate,
      invalid,
      malformed,
      ...(values['incident-at'] ? { incidentAt: parseDurationSeconds('--incident-at', values['incident-at']) } : {}),
      incidentService: values['incident-service'] ?? 'checkout',
      incidentDuration: parseDurationSeconds('--incident-duration', values['incident-duration'] ?? '60s'),
      seed: number('--seed', values.seed, { min: 0, max: 2 ** 32 - 1, integer: true })!,
      partitions: number('--partitions', values.partitions, { min: 1, max: 1000, integer: true })!,
      pace: !values['no-pace'],
      onProgress: (sent) => {
        if (Date.now() - lastReport >= 2000) {
          lastReport = Date.now();
          console.log(`sent ${sent}/${count}`);
        }
      },
    });
    const seconds = (Date.now() - started) / 1000;
    console.log(
      `sent ${summary.total} records to ${values.topic} in ${seconds.toFixed(1)} s (${Math.round(summary.total / seconds)}/s): ` +
        `${summary.valid} valid, ${summary.rejected} to be rejected ${JSON.stringify(summary.byReason)}, ${summary.incidentErrors} incident errors`,
    );
    return 0;
  },
};

export default command;
