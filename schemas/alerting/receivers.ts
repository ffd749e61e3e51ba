/**
 * Channel targets: how to reach each delivery target (webhook, Slack, PagerDuty, email, log), keyed
 * by target id `<type>:<name>`. The alerting policy's receivers list target ids; the alert workflow
 * sends one notification per (receiver, target id) and the notify activity looks the id up here.
 * Secrets never appear in this config: it names the environment variables that hold them. Pure;
 * importable from workflows.
 */
import { z } from 'zod';

const envVarName = z
  .string()
  .regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'expected the NAME of an environment variable (the secret itself never goes in the config)');

const httpUrl = z.url({ protocol: /^https?$/, message: 'expected an http(s) URL' });

const timeoutMs = z.number().int().min(100).max(120_000);

/** An email address, optionally with a display name: `ops@example.com` or `Ops <ops@example.com>`. */
export const mailboxSchema = z
  .string()
  .trim()
  .regex(/^(?:[^<>\r\n]*<[^\s<>@]+@[^\s<>@]+>|[^\s<>@]+@[^\s<>@]+)$/, 'expected name@domain or "Name <name@domain>"');

/** Generic JSON webhook, signed with HMAC-SHA256 (`X-Streamwarden-Signature`). */
export const webhookTargetSchema = z.object({
  type: z.literal('webhook'),
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
    /** SMTP server host name. */
    host: z.string().min(1).optional(),
    /** Environment variable holding the SMTP host instead (differs per environment). */
    hostEnv: envVarName.optional(),
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
  .refine((t) => (t.host === undefined) !== (t.hostEnv === undefined), { message: 'expected exactly one of host or hostEnv' })
  .refine((t) => (t.userEnv === undefined) === (t.passwordEnv === undefined), {
    message: 'expected both userEnv and passwordEnv, or neither',
  });

/** Structured log line through the worker's logger. */
export const logTargetSchema = z.object({ type: z.literal('log') });

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

/** The target types, in the order the README lists them. */
export const targetTypes = ['webhook', 'slack', 'pagerduty', 'email', 'log'] as const satisfies readonly TargetType[];

/**
 * Id of a target: `<type>:<name>`, e.g. `webhook:ops`, `email:oncall@example.com`. Receivers in the
 * alerting policy list these ids; the type prefix keeps a renamed or retyped target from silently
 * sending to another channel.
 */
export const targetIdSchema = z
  .string()
  .regex(/^(webhook|slack|pagerduty|email|log):[A-Za-z0-9_.@+-]{1,100}$/, 'expected <type>:<name> with type webhook, slack, pagerduty, email or log, e.g. webhook:ops');

/**
 * The channel targets, by id: how to reach each one. Receivers (routing/policy config) refer to
 * these ids; a target may serve several receivers. Secrets are environment variable names.
 */
export const channelTargetsSchema = z.record(targetIdSchema, targetSchema).superRefine((targets, ctx) => {
  for (const [id, target] of Object.entries(targets)) {
    const type = id.slice(0, id.indexOf(':'));
    if (type !== target.type) {
      ctx.addIssue({ code: 'custom', path: [id, 'type'], message: `expected type "${type}" to match the id ${id}, got "${target.type}"` });
    }
  }
});
/** Validated channel targets by id. */
export type ChannelTargets = z.infer<typeof channelTargetsSchema>;
/** Channel targets as written in the config file (defaults not yet applied). */
export type ChannelTargetsInput = z.input<typeof channelTargetsSchema>;

/**
 * Target ids that receivers refer to but the channel config does not define, as messages naming
 * the receiver; the worker refuses to start when the list is not empty.
 */
export function undefinedTargetProblems(receivers: Readonly<Record<string, { readonly targets: readonly string[] }>>, targets: ChannelTargets): string[] {
  const defined = Object.keys(targets);
  const problems: string[] = [];
  for (const [name, receiver] of Object.entries(receivers)) {
    for (const id of receiver.targets) {
      if (!(id in targets)) problems.push(`receivers.${name}.targets: "${id}" is not a configured channel target; configured: ${defined.join(', ') || '(none)'}`);
    }
  }
  return problems;
}

/**
 * Failure types of the notify activity that retrying cannot fix; the alert workflow lists them in
 * its retry policy's `nonRetryableErrorTypes` (the activity also marks them non-retryable).
 */
export const notifyNonRetryableErrorTypes = ['channel_rejected', 'channel_config', 'notification_invalid'] as const;

/** Failure types of the notify activity that are retried with backoff. */
export const notifyRetryableErrorTypes = ['channel_unavailable', 'channel_timeout'] as const;
