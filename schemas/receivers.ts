/**
 * Notification receivers: named groups of delivery targets (webhook, Slack, PagerDuty, email, log),
 * in the manner of Alertmanager's `receivers:`. The routing config chooses a receiver by name; the
 * alert workflow fans out one notification per target id ({@link targetIds}). Secrets never appear
 * here: the config names the environment variables that hold them. Pure; importable from workflows.
 */
import { z } from 'zod';

const envVarName = z
  .string()
  .regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'expected the NAME of an environment variable (the secret itself never goes in the config)');

const httpUrl = z.url({ protocol: /^https?$/, message: 'expected an http(s) URL' });

const timeoutMs = z.number().int().min(100).max(120_000);

/** Optional stable name of a target inside its receiver; used in the target id instead of the index. */
const targetName = z
  .string()
  .regex(/^[A-Za-z0-9_-]{1,64}$/, 'expected a short name of letters, digits, "_" or "-"')
  .optional();

/** An email address, optionally with a display name: `ops@example.com` or `Ops <ops@example.com>`. */
export const mailboxSchema = z
  .string()
  .trim()
  .regex(/^(?:[^<>\r\n]*<[^\s<>@]+@[^\s<>@]+>|[^\s<>@]+@[^\s<>@]+)$/, 'expected name@domain or "Name <name@domain>"');

/** Generic JSON webhook, signed with HMAC-SHA256 (`X-Streamwarden-Signature`). */
export const webhookTargetSchema = z.object({
  type: z.literal('webhook'),
  name: targetName,
  url: httpUrl,
  /** Extra request headers (not secret). */
  headers: z.record(z.string().regex(/^[A-Za-z0-9-]+$/, 'expected an HTTP header name'), z.string()).optional(),
  /** Secret headers: header name -> environment variable holding its value (e.g. `Authorization`). */
  headersFromEnv: z.record(z.string().regex(/^[A-Za-z0-9-]+$/, 'expected an HTTP header name'), envVarName).optional(),
  /** Environment variable with this receiver's own HMAC key. @default ALERT_SIGNING_SECRET */
  secretEnv: envVarName.optional(),
  /** @default 10000 */
  timeoutMs: timeoutMs.default(10_000),
});

/** Slack-compatible incoming webhook (`{ text, blocks }`); its URL is a secret, so prefer `urlEnv`. */
export const slackTargetSchema = z
  .object({
    type: z.literal('slack'),
    name: targetName,
    url: httpUrl.optional(),
    /** Environment variable holding the incoming-webhook URL. */
    urlEnv: envVarName.optional(),
    /** @default 10000 */
    timeoutMs: timeoutMs.default(10_000),
  })
  .refine((t) => (t.url === undefined) !== (t.urlEnv === undefined), { message: 'expected exactly one of url or urlEnv' });

/** PagerDuty Events API v2 (dedup_key = alert fingerprint). */
export const pagerdutyTargetSchema = z.object({
  type: z.literal('pagerduty'),
  name: targetName,
  /** @default "https://events.pagerduty.com/v2/enqueue" */
  url: httpUrl.default('https://events.pagerduty.com/v2/enqueue'),
  /** Environment variable holding the integration's routing key. */
  routingKeyEnv: envVarName,
  /** @default 10000 */
  timeoutMs: timeoutMs.default(10_000),
});

/** Email over SMTP. */
export const emailTargetSchema = z
  .object({
    type: z.literal('email'),
    name: targetName,
    host: z.string().min(1),
    /** @default 587 */
    port: z.number().int().min(1).max(65535).default(587),
    /** Implicit TLS from the first byte (usually port 465). @default false */
    secure: z.boolean().default(false),
    /** STARTTLS on a plain connection: `auto` upgrades when offered, `required` refuses without it. @default "auto" */
    startTls: z.enum(['auto', 'required', 'off']).default('auto'),
    /** Verify the server's TLS certificate. @default true */
    tlsRejectUnauthorized: z.boolean().default(true),
    /** Allow AUTH over an unencrypted connection (local relays only). @default false */
    allowInsecureAuth: z.boolean().default(false),
    from: mailboxSchema,
    to: z.array(mailboxSchema).min(1),
    /** Environment variables with the SMTP credentials (both or neither). */
    userEnv: envVarName.optional(),
    passwordEnv: envVarName.optional(),
    /** Name sent in EHLO. @default "localhost" */
    heloName: z.string().regex(/^[A-Za-z0-9.-]+$/, 'expected a host name').default('localhost'),
    /** Per SMTP command. @default 15000 */
    timeoutMs: timeoutMs.default(15_000),
  })
  .refine((t) => (t.userEnv === undefined) === (t.passwordEnv === undefined), {
    message: 'expected both userEnv and passwordEnv, or neither',
  });

/** Structured log line through the worker's logger. */
export const logTargetSchema = z.object({ type: z.literal('log'), name: targetName });

/** One delivery target. */
export const targetSchema = z.discriminatedUnion('type', [
  webhookTargetSchema,
  slackTargetSchema,
  pagerdutyTargetSchema,
  emailTargetSchema,
  logTargetSchema,
]);
export type Target = z.infer<typeof targetSchema>;
/** The kinds of target. */
export type TargetType = Target['type'];

/** A named receiver and its targets. */
export const receiverSchema = z
  .object({
    name: z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/, 'expected a receiver name of letters, digits, "_", "." or "-"'),
    targets: z.array(targetSchema).min(1),
  })
  .refine(
    (r) => {
      const names = r.targets.flatMap((t) => (t.name === undefined ? [] : [t.name]));
      return new Set(names).size === names.length;
    },
    { message: 'expected target names to be unique within a receiver' },
  );
export type Receiver = z.infer<typeof receiverSchema>;

/** All receivers; names are unique. */
export const receiversSchema = z.array(receiverSchema).refine((rs) => new Set(rs.map((r) => r.name)).size === rs.length, {
  message: 'expected receiver names to be unique',
});
export type Receivers = z.infer<typeof receiversSchema>;

/**
 * Id of one target: `<receiver>/<type>:<name or index>`, e.g. `ops/webhook:0`, `ops/email:oncall`.
 * The type is part of the id so that a reordered config cannot silently send to another channel.
 */
export function targetId(receiver: Receiver, index: number): string {
  const target = receiver.targets[index];
  if (!target) throw new RangeError(`receiver ${receiver.name} has no target #${index}`);
  return `${receiver.name}/${target.type}:${target.name ?? String(index)}`;
}

/** Ids of all targets of a receiver, in config order: what the alert workflow fans out to. */
export function targetIds(receiver: Receiver): string[] {
  return receiver.targets.map((_, i) => targetId(receiver, i));
}

/** Finds the target with this id in a receiver, or undefined. */
export function findTarget(receiver: Receiver, id: string): Target | undefined {
  const index = receiver.targets.findIndex((_, i) => targetId(receiver, i) === id);
  return index < 0 ? undefined : receiver.targets[index];
}

/**
 * Failure types of the notify activity that retrying cannot fix; the alert workflow lists them in
 * its retry policy's `nonRetryableErrorTypes` (the activity also marks them non-retryable).
 */
export const notifyNonRetryableErrorTypes = ['channel_rejected', 'channel_config', 'notification_invalid'] as const;

/** Failure types of the notify activity that are retried with backoff. */
export const notifyRetryableErrorTypes = ['channel_unavailable', 'channel_timeout'] as const;
