/**
 * `platform generate`: synthetic request telemetry into a Kafka topic, for demos and load. See
 * workers/generator.ts for what the data looks like.
 */
import { loadConfig } from '../../schemas/config.js';
import { createKafka } from '../connections.js';
import { resolveEndpoints } from '../endpoints.js';
import { produceEvents } from '../generator.js';
import { demoShapes } from '../demo-stream.js';
import { parseShape } from './shapes.js';
import { parseCommandLine, UsageError, type Command, type CommandSpec } from './command.js';
import { parseDurationSeconds } from './duration.js';

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
    shape: { type: 'string', multiple: true },
    'demo-incidents': { type: 'boolean', default: false },
  },
};

export { parseDurationSeconds } from './duration.js';

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
    '  --shape KIND:key=val,...  an incident shape for the detectors (repeatable):',
    '                              step|drift|spike:service=S,at=DUR,for=DUR,factor=X   latency',
    '                              seasonality:service=S,period=DUR,amplitude=0..1      traffic cycle',
    '                              silence:service=S,at=DUR[,for=DUR]                   no data',
    '                              drop:service=S,at=DUR,for=DUR,keep=0..1              traffic drop',
    '                              errors:service=S,at=DUR,for=DUR,rate=0..1[,every=DUR] error burst',
    '                              late:fraction=0..1,mean=DUR|max=DUR                  late events',
    '  --demo-incidents          the npm start timeline: the --incident-* burst on checkout at 45 s',
    '                            for 2 min (unless given), a search spike at 4 min, recommendations',
    '                            silent from 5 min for 90 s; add --shape for more',
    '',
    '  -h, --help                this text',
    '',
    'Example: platform generate --topic requests --rate 2000 --count 50000 --invalid 0.02 \\',
    '           --malformed 0.01 --incident-at 20s --incident-service checkout',
    'Example: platform generate --topic requests --rate 400 --count 240000 \\',
    '           --shape step:service=search,at=3m,for=2m,factor=4 --shape silence:service=auth,at=6m,for=90s \\',
    '           --shape late:fraction=0.02,mean=8s',
  ].join('\n'),
  spec: generateSpec,

  async run(args) {
    // Defaults come from the spec, so every string option below is set except topic and incident-at.
    const values = parseCommandLine(generateSpec, args).values as Record<string, string | undefined> & { 'no-pace'?: boolean; 'demo-incidents'?: boolean; shape?: string[] };
    if (!values.topic) throw new UsageError('--topic: required, e.g. --topic requests');
    const invalid = number('--invalid', values.invalid, { min: 0, max: 1 })!;
    const malformed = number('--malformed', values.malformed, { min: 0, max: 1 })!;
    if (invalid + malformed > 1) throw new UsageError(`--invalid + --malformed: expected at most 1, got ${invalid + malformed}`);
    const count = number('--count', values.count, { min: 1, max: 1e9, integer: true })!;
    const rate = number('--rate', values.rate, { min: 0.001, max: 1e7 })!;
    const shapes = [...(values['demo-incidents'] ? demoShapes : []), ...(values.shape ?? []).map(parseShape)];
    const incidentAt = values['incident-at'] ?? (values['demo-incidents'] ? '45s' : undefined);
    const incidentDuration = values['demo-incidents'] && !args.some((a) => a.startsWith('--incident-duration')) ? '2m' : (values['incident-duration'] ?? '60s');
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
      ...(incidentAt ? { incidentAt: parseDurationSeconds('--incident-at', incidentAt) } : {}),
      incidentService: values['incident-service'] ?? 'checkout',
      incidentDuration: parseDurationSeconds('--incident-duration', incidentDuration),
      ...(shapes.length > 0 ? { shapes } : {}),
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
