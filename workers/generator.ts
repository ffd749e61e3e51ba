/**
 * Synthetic request telemetry for demos, tests and benchmarks. Deterministic for a seed: the same
 * options always give the same events in the same order (ids, times, keys, payloads), so a test
 * can know exactly how many events are valid and why the others are not.
 *
 * Shape: a few services dominate the traffic (skew), tenants follow a Zipf-like law (the Kafka
 * key, so partitions are uneven as in real life), latencies are log-normal per route. A fraction
 * of records is malformed JSON, another fraction violates the contract in assorted ways, and an
 * optional incident makes one service fail for a while so the error-rate detector fires.
 */
import { Partitioners, type Kafka, type Message } from 'kafkajs';
import type { DeadLetterCode } from '../schemas/contracts/validate.js';
import { requestTelemetrySubject, type RequestTelemetryV1 } from '../schemas/contracts/request-telemetry/v1.js';

/** Options of {@link generateEvents} and {@link produceEvents}. */
export interface GeneratorOptions {
  /** Number of records. */
  count: number;
  /** Events per second of event time (and of sending when `pace` is on). @default 1000 */
  rate?: number;
  /** Fraction of contract violations (valid JSON, rejected by validation). @default 0 */
  invalid?: number;
  /** Fraction of malformed JSON records. @default 0 */
  malformed?: number;
  /** Seconds after the first event at which the incident starts; unset: no incident. */
  incidentAt?: number;
  /** Service that fails during the incident. @default "checkout" */
  incidentService?: string;
  /** Length of the incident, seconds. @default 60 */
  incidentDuration?: number;
  /** Share of the incident service's requests that fail with 5xx during the incident. @default 0.6 */
  incidentErrorRate?: number;
  /** PRNG seed. @default 1 */
  seed?: number;
  /** Event time of the first event, epoch ms. @default now */
  startTime?: number;
  /** Incident shapes for the detectors (see {@link IncidentShape}); their randomness has its own seed, so the base stream is unchanged. */
  shapes?: IncidentShape[];
}

/**
 * Synthetic incidents that exercise each detector kind. Times are seconds after the first event.
 * - `step`: a service's latency is multiplied by `factor` from `at` for `duration` (level shift: EWMA);
 * - `drift`: a service's latency grows linearly to `factor` over `duration` (slow drift: median/MAD);
 * - `spike`: a short latency burst × `factor` (rate of change);
 * - `seasonality`: a service's traffic follows a compressed daily cycle of `period` seconds, dropping
 *   to `1 - amplitude` of its share at the trough (seasonal baseline; its requests go to api-gateway);
 * - `silence`: a service sends nothing from `at` on, or only the fraction `keep` for `duration`
 *   seconds (a drop: seasonal baseline; its requests go to api-gateway) (absence);
 * - `late`: a fraction of events carries an event time earlier than its send time, the delay drawn
 *   from the declared distribution (exponential with `meanMs`, or uniform up to `maxMs`):
 *   out-of-order within the watermark's bound, late beyond it;
 * - `errors`: a share `rate` (0..1) of a service's requests fail with 5xx from `at` for `duration`
 *   seconds (an error burst: threshold detectors); with `every`, the burst repeats every `every`
 *   seconds (a flapping series, one fire and one resolve per period).
 */
export type IncidentShape =
  | { kind: 'step'; service: string; at: number; duration: number; factor: number }
  | { kind: 'drift'; service: string; at: number; duration: number; factor: number }
  | { kind: 'spike'; service: string; at: number; duration: number; factor: number }
  | { kind: 'seasonality'; service: string; period: number; amplitude: number }
  | { kind: 'silence'; service: string; at: number; duration?: number; keep?: number }
  | { kind: 'late'; fraction: number; distribution: { type: 'exponential'; meanMs: number } | { type: 'uniform'; maxMs: number } }
  | { kind: 'errors'; service: string; at: number; duration: number; rate: number; every?: number };

/**
 * Share of a service's requests forced to fail at `elapsed` seconds by `errors` shapes (0 when none
 * applies; the largest share when several overlap).
 */
export function errorShare(shapes: readonly IncidentShape[], service: string, elapsed: number): number {
  let share = 0;
  for (const s of shapes) {
    if (s.kind !== 'errors' || s.service !== service || elapsed < s.at) continue;
    const since = s.every === undefined ? elapsed - s.at : (elapsed - s.at) % s.every;
    if (since < s.duration) share = Math.max(share, s.rate);
  }
  return share;
}

/** Latency factor of a service at `elapsed` seconds under the shapes (1 when none applies). */
export function latencyFactor(shapes: readonly IncidentShape[], service: string, elapsed: number): number {
  let f = 1;
  for (const s of shapes) {
    if ((s.kind === 'step' || s.kind === 'spike') && s.service === service && elapsed >= s.at && elapsed < s.at + s.duration) f *= s.factor;
    if (s.kind === 'drift' && s.service === service && elapsed >= s.at) f *= 1 + (s.factor - 1) * Math.min(1, (elapsed - s.at) / s.duration);
  }
  return f;
}

/** Probability that a request of `service` at `elapsed` seconds is kept (silence, seasonality). */
export function keepProbability(shapes: readonly IncidentShape[], service: string, elapsed: number): number {
  let p = 1;
  for (const s of shapes) {
    if (s.kind === 'silence' && s.service === service && elapsed >= s.at && elapsed < s.at + (s.duration ?? Number.POSITIVE_INFINITY)) p *= s.keep ?? 0;
    if (s.kind === 'seasonality' && s.service === service) p *= 1 - s.amplitude * (0.5 + 0.5 * Math.sin((2 * Math.PI * elapsed) / s.period));
  }
  return p;
}

/** One generated record and what validation should make of it. */
export interface GeneratedRecord {
  key: string;
  value: string;
  /** Event time, epoch ms (also used as the Kafka timestamp). */
  time: number;
  /** null when the record is valid; else the dead-letter code it must get. */
  expectedReason: DeadLetterCode | null;
  /** The parsed payload of a valid record (for tests and the bench). */
  data?: RequestTelemetryV1;
  /** A valid record that fails because of the injected incident. */
  incidentError: boolean;
}

/** What was generated, by outcome. */
export interface GeneratorSummary {
  total: number;
  valid: number;
  rejected: number;
  /** Expected dead-letter codes with their counts. */
  byReason: Partial<Record<DeadLetterCode, number>>;
  /** Valid records that fail because of the injected incident. */
  incidentErrors: number;
  firstTime: number;
  lastTime: number;
}

/** Mulberry32: small, fast, good enough for synthetic data, and the same in every runtime. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface ServiceProfile {
  name: string;
  weight: number;
  routes: { route: string; method: RequestTelemetryV1['method']; p50: number; bytesOut: number }[];
}

/** Services with traffic shares (a few dominate) and their routes. */
export const services: readonly ServiceProfile[] = [
  { name: 'api-gateway', weight: 0.34, routes: [{ route: '/v1/*', method: 'GET', p50: 12, bytesOut: 2_000 }, { route: '/v1/*', method: 'POST', p50: 18, bytesOut: 800 }] },
  { name: 'checkout', weight: 0.2, routes: [{ route: '/cart', method: 'GET', p50: 25, bytesOut: 3_500 }, { route: '/cart/items', method: 'POST', p50: 40, bytesOut: 600 }, { route: '/orders', method: 'POST', p50: 120, bytesOut: 900 }] },
  { name: 'search', weight: 0.16, routes: [{ route: '/search', method: 'GET', p50: 60, bytesOut: 12_000 }, { route: '/suggest', method: 'GET', p50: 15, bytesOut: 1_200 }] },
  { name: 'catalog', weight: 0.1, routes: [{ route: '/products/:id', method: 'GET', p50: 20, bytesOut: 5_000 }, { route: '/categories', method: 'GET', p50: 10, bytesOut: 3_000 }] },
  { name: 'auth', weight: 0.08, routes: [{ route: '/login', method: 'POST', p50: 80, bytesOut: 400 }, { route: '/token/refresh', method: 'POST', p50: 15, bytesOut: 300 }] },
  { name: 'payments', weight: 0.06, routes: [{ route: '/payments', method: 'POST', p50: 250, bytesOut: 700 }, { route: '/payments/:id', method: 'GET', p50: 30, bytesOut: 900 }] },
  { name: 'recommendations', weight: 0.04, routes: [{ route: '/recommendations', method: 'GET', p50: 90, bytesOut: 6_000 }] },
  { name: 'inventory', weight: 0.02, routes: [{ route: '/stock/:sku', method: 'GET', p50: 8, bytesOut: 200 }, { route: '/stock/:sku', method: 'PUT', p50: 35, bytesOut: 200 }] },
];

const regions = ['eu-west-1', 'eu-central-1', 'us-east-1', 'us-west-2', 'ap-south-1'] as const;
const errorCodes = ['UPSTREAM_TIMEOUT', 'DB_UNAVAILABLE', 'PAYMENT_PROVIDER_ERROR', 'INTERNAL'] as const;
const clientErrors = [400, 401, 403, 404, 409, 422, 429] as const;

function pick<T>(items: readonly T[], r: number): T {
  return items[Math.min(items.length - 1, Math.floor(r * items.length))]!;
}

function uuid(rand: () => number): string {
  const hex: string[] = [];
  for (let i = 0; i < 32; i++) hex.push(Math.floor(rand() * 16).toString(16));
  hex[12] = '4';
  hex[16] = ((parseInt(hex[16]!, 16) & 0x3) | 0x8).toString(16);
  const h = hex.join('');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

function normal(rand: () => number): number {
  const u = Math.max(rand(), 1e-12);
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * rand());
}

/** Zipf-like tenant index in [0, n): tenant 0 is the busiest. */
function tenant(rand: () => number, n = 200): string {
  const idx = Math.min(n - 1, Math.floor(Math.pow(rand(), 3) * n));
  return `tenant-${String(idx).padStart(3, '0')}`;
}

/** The ways a record can break the contract, with the code validation must give it. */
const violations: readonly { reason: DeadLetterCode; weight: number; make: (valid: Record<string, unknown>, rand: () => number) => unknown }[] = [
  { reason: 'contract_violation', weight: 0.3, make: (e) => ({ ...e, data: { ...(e.data as object), status: 700 } }) },
  { reason: 'contract_violation', weight: 0.2, make: (e) => { const data = { ...(e.data as Record<string, unknown>) }; delete data.service; return { ...e, data }; } },
  { reason: 'contract_violation', weight: 0.15, make: (e) => ({ ...e, data: { ...(e.data as object), duration_ms: -5 } }) },
  { reason: 'contract_violation', weight: 0.1, make: (e) => ({ ...e, id: 'not-a-uuid' }) },
  { reason: 'unknown_version', weight: 0.1, make: (e) => ({ ...e, version: 99 }) },
  { reason: 'unknown_subject', weight: 0.1, make: (e) => ({ ...e, subject: 'page-view' }) },
  { reason: 'not_an_object', weight: 0.05, make: (e) => [e] },
];

const malformations: readonly ((json: string, rand: () => number) => string)[] = [
  (json, rand) => json.slice(0, Math.max(1, Math.floor(json.length * rand()))),
  (json) => json.replace(/"/g, "'"),
  () => 'GET /cart 200 12ms',
  (json) => `${json}}`,
];

/**
 * Generates `count` records lazily (bounded memory for big runs). Pure: no I/O, no clock unless
 * `startTime` is unset.
 */
export function* generateEvents(options: GeneratorOptions): Generator<GeneratedRecord> {
  const rand = prng(options.seed ?? 1);
  const rate = options.rate ?? 1000;
  const start = options.startTime ?? Date.now();
  const invalid = options.invalid ?? 0;
  const malformed = options.malformed ?? 0;
  const incidentService = options.incidentService ?? 'checkout';
  const incidentFrom = options.incidentAt === undefined ? Infinity : start + options.incidentAt * 1000;
  const incidentTo = incidentFrom + (options.incidentDuration ?? 60) * 1000;
  const incidentErrorRate = options.incidentErrorRate ?? 0.6;
  const totalWeight = services.reduce((s, x) => s + x.weight, 0);
  const shapes = options.shapes ?? [];
  // Shapes draw from their own stream so the base sequence (and every test built on it) is unchanged.
  const shapeRand = prng((options.seed ?? 1) + 7919);
  const late = shapes.find((s): s is Extract<IncidentShape, { kind: 'late' }> => s.kind === 'late');
  for (let i = 0; i < options.count; i++) {
    const sendTime = start + Math.floor((i * 1000) / rate);
    let r = rand() * totalWeight;
    let service = services[0]!;
    for (const s of services) {
      r -= s.weight;
      if (r <= 0) {
        service = s;
        break;
      }
    }
    const elapsed = (sendTime - start) / 1000;
    if (shapes.length > 0 && shapeRand() >= keepProbability(shapes, service.name, elapsed)) service = services[0]!;
    let time = sendTime;
    if (late && shapeRand() < late.fraction) {
      const u = Math.max(shapeRand(), 1e-12);
      time -= Math.round(late.distribution.type === 'exponential' ? -Math.log(u) * late.distribution.meanMs : u * late.distribution.maxMs);
    }
    const route = pick(service.routes, rand());
    const tenantId = tenant(rand);
    const inIncident = service.name === incidentService && time >= incidentFrom && time < incidentTo;
    const roll = rand();
    let status = 200;
    let errorCode: string | undefined;
    let incidentError = inIncident && roll < incidentErrorRate;
    if (incidentError || (!inIncident && roll < 0.004)) {
      status = rand() < 0.8 ? 503 : 500;
      errorCode = inIncident ? 'UPSTREAM_TIMEOUT' : pick(errorCodes, rand());
    } else if (roll > 0.97) {
      status = pick(clientErrors, rand());
    } else if (route.method === 'POST' && rand() < 0.5) {
      status = 201;
    }
    // Error bursts draw from the shapes' stream, so the base sequence stays the same.
    const forced = shapes.length > 0 ? errorShare(shapes, service.name, elapsed) : 0;
    if (forced > 0 && status < 500 && shapeRand() < forced) {
      status = shapeRand() < 0.8 ? 503 : 500;
      errorCode = 'UPSTREAM_TIMEOUT';
      incidentError = true;
    }
    const slow = (inIncident ? 8 : 1) * (shapes.length > 0 ? latencyFactor(shapes, service.name, elapsed) : 1);
    const data: RequestTelemetryV1 = {
      service: service.name,
      route: route.route,
      method: route.method,
      status,
      duration_ms: Math.round(route.p50 * slow * Math.exp(0.6 * normal(rand)) * 100) / 100,
      region: pick(regions, rand()),
      tenant_id: tenantId,
      ...(errorCode ? { error_code: errorCode } : {}),
      bytes_in: route.method === 'GET' ? 0 : Math.floor(200 + rand() * 2000),
      bytes_out: Math.floor(route.bytesOut * (0.5 + rand())),
      trace_id: Array.from({ length: 32 }, () => Math.floor(rand() * 16).toString(16)).join(''),
    };
    const envelope = { id: uuid(rand), subject: requestTelemetrySubject, version: 1, time: new Date(time).toISOString(), key: tenantId, data };
    const kind = rand();
    if (kind < malformed) {
      yield { key: tenantId, value: pick(malformations, rand())(JSON.stringify(envelope), rand), time, expectedReason: 'malformed_json', incidentError: false };
    } else if (kind < malformed + invalid) {
      let w = rand() * violations.reduce((s, v) => s + v.weight, 0);
      let violation = violations[0]!;
      for (const v of violations) {
        w -= v.weight;
        if (w <= 0) {
          violation = v;
          break;
        }
      }
      yield { key: tenantId, value: JSON.stringify(violation.make(envelope, rand)), time, expectedReason: violation.reason, incidentError: false };
    } else {
      yield { key: tenantId, value: JSON.stringify(envelope), time, expectedReason: null, data, incidentError };
    }
  }
}

/** Counts what {@link generateEvents} yields for `options` (walks the sequence; no I/O). */
export function summarize(options: GeneratorOptions): GeneratorSummary {
  const summary: GeneratorSummary = { total: 0, valid: 0, rejected: 0, byReason: {}, incidentErrors: 0, firstTime: 0, lastTime: 0 };
  for (const record of generateEvents(options)) {
    if (summary.total === 0) summary.firstTime = record.time;
    summary.lastTime = record.time;
    summary.total += 1;
    if (record.expectedReason === null) {
      summary.valid += 1;
      if (record.incidentError) summary.incidentErrors += 1;
    } else {
      summary.rejected += 1;
      summary.byReason[record.expectedReason] = (summary.byReason[record.expectedReason] ?? 0) + 1;
    }
  }
  return summary;
}

/** Options of {@link produceEvents}. */
export interface ProduceOptions extends GeneratorOptions {
  topic: string;
  /** Partitions when the topic has to be created. @default 3 */
  partitions?: number;
  /** Send at `rate` in wall-clock time (demo) instead of as fast as possible. @default false */
  pace?: boolean;
  /** Records per producer request. @default 500 */
  batchSize?: number;
  /** Progress callback after each producer request. */
  onProgress?: (sent: number) => void;
  /** Stops early. */
  signal?: AbortSignal;
}

/**
 * Generates and produces to Kafka (creating the topic if missing); returns what was sent. When
 * pacing, event times follow the wall clock from the start.
 */
export async function produceEvents(kafka: Kafka, options: ProduceOptions): Promise<GeneratorSummary> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    if (!(await admin.listTopics()).includes(options.topic)) {
      await admin.createTopics({ topics: [{ topic: options.topic, numPartitions: options.partitions ?? 3 }], waitForLeaders: true });
    }
  } finally {
    await admin.disconnect();
  }
  // The default (murmur2, Java-compatible) partitioner, named explicitly: keys land where Java producers would put them.
  const producer = kafka.producer({ allowAutoTopicCreation: false, idempotent: false, createPartitioner: Partitioners.DefaultPartitioner });
  await producer.connect();
  const summary: GeneratorSummary = { total: 0, valid: 0, rejected: 0, byReason: {}, incidentErrors: 0, firstTime: 0, lastTime: 0 };
  const batchSize = options.batchSize ?? 500;
  const rate = options.rate ?? 1000;
  const wallStart = Date.now();
  // Paced sends go in small requests so the stream is smooth rather than bursty.
  const requestSize = options.pace ? Math.max(1, Math.min(batchSize, Math.floor(rate / 20))) : batchSize;
  let pending: Message[] = [];
  const flush = async (): Promise<void> => {
    if (pending.length === 0) return;
    await producer.send({ topic: options.topic, messages: pending });
    pending = [];
    options.onProgress?.(summary.total);
  };
  try {
    for (const record of generateEvents({ ...options, startTime: options.startTime ?? wallStart })) {
      if (options.signal?.aborted) break;
      if (summary.total === 0) summary.firstTime = record.time;
      summary.lastTime = record.time;
      summary.total += 1;
      if (record.expectedReason === null) {
        summary.valid += 1;
        if (record.incidentError) summary.incidentErrors += 1;
      } else {
        summary.rejected += 1;
        summary.byReason[record.expectedReason] = (summary.byReason[record.expectedReason] ?? 0) + 1;
      }
      pending.push({ key: record.key, value: record.value, timestamp: String(record.time) });
      if (pending.length >= requestSize) {
        await flush();
        if (options.pace) {
          const due = wallStart + (summary.total * 1000) / rate;
          const wait = due - Date.now();
          if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
        }
      }
    }
    await flush();
  } finally {
    await producer.disconnect();
  }
  return summary;
}
