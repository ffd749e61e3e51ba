/**
 * Alerting configuration: receivers, escalation policies per severity, an Alertmanager-style
 * routing tree, inhibition rules, and the silence model. Pure (zod + plain functions), so the
 * workflow can run the routing decision deterministically and the worker validates the repo's
 * infra/alerting/policy.json with the same schema at start.
 */
import { z } from 'zod';
import { severitySchema, type AlertFiring } from './alert.js';
import { targetIdSchema } from './receivers.js';

const durationPattern = /^(\d+(?:ms|s|m|h|d))+$/;
const unitMs: Record<string, number> = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/**
 * Parses a duration such as `30s`, `5m`, `1h30m` (units ms, s, m, h, d) into milliseconds.
 * Throws on anything else; the schema below reports the field.
 */
export function parseDuration(text: string): number {
  if (!durationPattern.test(text)) throw new Error(`expected a duration like 30s, 5m or 1h30m, got "${text}"`);
  let total = 0;
  for (const m of text.matchAll(/(\d+)(ms|s|m|h|d)/g)) total += Number(m[1]) * (unitMs[m[2]!] ?? 0);
  return total;
}

/** A duration written as text (`5m`), parsed to milliseconds. */
export const durationSchema = z
  .string()
  .regex(durationPattern, 'expected a duration like 30s, 5m or 1h30m')
  .transform((v) => parseDuration(v));

/** A label matcher, Alertmanager style: `name=value`, `name!=value`, `name=~regex`, `name!~regex`. */
export const matcherSchema = z
  .string()
  .regex(/^[A-Za-z_][A-Za-z0-9_]*(=~|!~|!=|=).*$/, 'expected a matcher like team=payments, env!=dev or service=~"api|web"')
  .transform((text, ctx) => {
    const m = /^([A-Za-z_][A-Za-z0-9_]*)(=~|!~|!=|=)(.*)$/.exec(text)!;
    const value = m[3]!.replace(/^"(.*)"$/, '$1');
    const op = m[2] as '=' | '!=' | '=~' | '!~';
    if (op === '=~' || op === '!~') {
      try {
        new RegExp(`^(?:${value})$`);
      } catch {
        ctx.addIssue({ code: 'custom', message: `invalid regular expression in matcher "${text}"` });
        return z.NEVER;
      }
    }
    return { label: m[1]!, op, value, text };
  });
export type Matcher = z.infer<typeof matcherSchema>;

/** True when every matcher accepts the labels (a missing label reads as the empty string, as in Alertmanager). */
export function matchesAll(matchers: readonly Matcher[], labels: Readonly<Record<string, string>>): boolean {
  return matchers.every((m) => {
    const v = labels[m.label] ?? '';
    switch (m.op) {
      case '=':
        return v === m.value;
      case '!=':
        return v !== m.value;
      case '=~':
        return new RegExp(`^(?:${m.value})$`).test(v);
      case '!~':
        return !new RegExp(`^(?:${m.value})$`).test(v);
    }
  });
}

/** The labels routing, silences and inhibition look at: the alert's labels plus `alertname` and `severity`. */
export function routingLabels(firing: Pick<AlertFiring, 'detector' | 'labels' | 'severity'>): Record<string, string> {
  return { ...firing.labels, alertname: firing.detector, severity: firing.severity };
}

/** A receiver: a named list of channel targets (`webhook:ops`, `email:oncall@example.com`); the channel config lives with the notify activity. */
export const receiverSchema = z.object({
  targets: z.array(targetIdSchema).min(1),
});

/** One escalation level: who gets notified, and how long after the previous level (if nobody acknowledged). */
export const escalationLevelSchema = z.object({
  /** Receiver names (keys of `receivers`). Level 0 also notifies the route's receiver. */
  receivers: z.array(z.string().min(1)),
  /** Delay after the previous level fired (level 0: must be 0s; group_wait applies instead). @default "0s" */
  delay: durationSchema.default(0),
});

/** An escalation policy: ordered levels, repeated at the last level until acknowledged. */
export const escalationPolicySchema = z.object({
  description: z.string().optional(),
  levels: z
    .array(escalationLevelSchema)
    .min(1)
    .refine((levels) => levels[0]!.delay === 0, { message: 'levels[0].delay: expected 0s (the first level fires at once, after group_wait)' }),
  /** Interval of re-notification at the last level; defaults to the route's repeatInterval. */
  repeatInterval: durationSchema.optional(),
});
export type EscalationPolicy = z.infer<typeof escalationPolicySchema>;

interface RouteInput {
  matchers?: string[];
  receiver?: string;
  policy?: string;
  groupBy?: string[];
  groupWait?: string;
  groupInterval?: string;
  repeatInterval?: string;
  routes?: RouteInput[];
}

/** A node of the routing tree; unset fields are inherited from the parent (root sets them all). */
export interface Route {
  matchers: Matcher[];
  receiver?: string;
  policy?: string;
  groupBy?: string[];
  groupWait?: number;
  groupInterval?: number;
  repeatInterval?: number;
  routes: Route[];
}

/** Routing tree node (recursive). The first child whose matchers accept the labels wins, depth first. */
export const routeSchema: z.ZodType<Route, RouteInput> = z.lazy(() =>
  z.object({
    matchers: z.array(matcherSchema).default([]),
    receiver: z.string().min(1).optional(),
    policy: z.string().min(1).optional(),
    groupBy: z.array(z.string().min(1)).optional(),
    groupWait: durationSchema.optional(),
    groupInterval: durationSchema.optional(),
    repeatInterval: durationSchema.optional(),
    routes: z.array(routeSchema).default([]),
  }),
);

/** Inhibition: while an open alert matches `sourceMatchers`, alerts matching `targetMatchers` with equal values of `equal` labels are muted. */
export const inhibitRuleSchema = z.object({
  sourceMatchers: z.array(matcherSchema).min(1),
  targetMatchers: z.array(matcherSchema).min(1),
  equal: z.array(z.string().min(1)).default([]),
});
export type InhibitRule = z.infer<typeof inhibitRuleSchema>;

/** The whole alerting configuration (infra/alerting/policy.json). */
export const alertingConfigSchema = z
  .object({
    /** Bumped on every change; recorded with each incident so the audit says which config routed it. */
    version: z.number().int().min(1),
    receivers: z.record(z.string().min(1), receiverSchema),
    policies: z.record(z.string().min(1), escalationPolicySchema),
    route: routeSchema,
    inhibitRules: z.array(inhibitRuleSchema).default([]),
  })
  .superRefine((cfg, ctx) => {
    const root = cfg.route;
    for (const [field, value] of [
      ['receiver', root.receiver],
      ['policy', root.policy],
      ['groupWait', root.groupWait],
      ['groupInterval', root.groupInterval],
      ['repeatInterval', root.repeatInterval],
    ] as const) {
      if (value === undefined) ctx.addIssue({ code: 'custom', path: ['route', field], message: `route.${field}: the root route must set it (children inherit)` });
    }
    const visit = (route: Route, path: (string | number)[]): void => {
      if (route.receiver !== undefined && !(route.receiver in cfg.receivers))
        ctx.addIssue({ code: 'custom', path: [...path, 'receiver'], message: `unknown receiver "${route.receiver}"; known: ${Object.keys(cfg.receivers).join(', ')}` });
      if (route.policy !== undefined && !(route.policy in cfg.policies))
        ctx.addIssue({ code: 'custom', path: [...path, 'policy'], message: `unknown policy "${route.policy}"; known: ${Object.keys(cfg.policies).join(', ')}` });
      route.routes.forEach((child, i) => visit(child, [...path, 'routes', i]));
    };
    visit(root, ['route']);
    for (const [name, policy] of Object.entries(cfg.policies)) {
      policy.levels.forEach((level, i) => {
        for (const r of level.receivers) {
          if (!(r in cfg.receivers)) ctx.addIssue({ code: 'custom', path: ['policies', name, 'levels', i, 'receivers'], message: `unknown receiver "${r}"` });
        }
      });
    }
  });
/** Validated alerting configuration. */
export type AlertingConfig = z.infer<typeof alertingConfigSchema>;
/** Alerting configuration as written in JSON (durations as text). */
export type AlertingConfigInput = z.input<typeof alertingConfigSchema>;

/** One escalation level with its receivers' targets resolved. */
export interface PlannedLevel {
  level: number;
  delayMs: number;
  receivers: { receiver: string; targets: string[] }[];
}

/** Everything an incident needs from the config, fixed when the incident opens (config edits affect new incidents only). */
export const alertPlanSchema = z.object({
  configVersion: z.number().int(),
  /** Path of matched route nodes, e.g. `root/1/0`, for the audit trail. */
  routePath: z.string(),
  receiver: z.string(),
  policy: z.string(),
  groupBy: z.array(z.string()),
  /** Canonical `k=v,...` of the groupBy labels; empty when groupBy is empty (one group per receiver). */
  groupKey: z.string(),
  groupWaitMs: z.number().int().min(0),
  groupIntervalMs: z.number().int().min(0),
  repeatIntervalMs: z.number().int().min(1),
  levels: z
    .array(
      z.object({
        level: z.number().int().min(0),
        delayMs: z.number().int().min(0),
        receivers: z.array(z.object({ receiver: z.string(), targets: z.array(z.string()) })),
      }),
    )
    .min(1),
  /** The config's inhibition rules (matcher texts), evaluated by the suppression check. */
  inhibitRules: z.array(z.object({ sourceMatchers: z.array(z.string()), targetMatchers: z.array(z.string()), equal: z.array(z.string()) })),
});
/** The routing decision for one incident. */
export type AlertPlan = z.infer<typeof alertPlanSchema>;

/**
 * Walks the routing tree for the labels (Alertmanager semantics without `continue`: the deepest
 * first-matching node wins, unset fields inherited) and expands the policy into planned levels.
 */
export function planAlert(config: AlertingConfig, labels: Readonly<Record<string, string>>): AlertPlan {
  let node = config.route;
  let eff = {
    receiver: node.receiver!,
    policy: node.policy!,
    groupBy: node.groupBy ?? [],
    groupWait: node.groupWait!,
    groupInterval: node.groupInterval!,
    repeatInterval: node.repeatInterval!,
  };
  const path = ['root'];
  for (;;) {
    const index = node.routes.findIndex((child) => matchesAll(child.matchers, labels));
    if (index < 0) break;
    node = node.routes[index]!;
    path.push(String(index));
    eff = {
      receiver: node.receiver ?? eff.receiver,
      policy: node.policy ?? eff.policy,
      groupBy: node.groupBy ?? eff.groupBy,
      groupWait: node.groupWait ?? eff.groupWait,
      groupInterval: node.groupInterval ?? eff.groupInterval,
      repeatInterval: node.repeatInterval ?? eff.repeatInterval,
    };
  }
  const policy = config.policies[eff.policy]!;
  const targetsOf = (receiver: string) => ({ receiver, targets: config.receivers[receiver]!.targets });
  const levels = policy.levels.map((level, i) => {
    const names = i === 0 ? [eff.receiver, ...level.receivers.filter((r) => r !== eff.receiver)] : level.receivers;
    return { level: i, delayMs: level.delay, receivers: names.map(targetsOf) };
  });
  return {
    configVersion: config.version,
    routePath: path.join('/'),
    receiver: eff.receiver,
    policy: eff.policy,
    groupBy: eff.groupBy,
    groupKey: groupKey(eff.groupBy, labels),
    groupWaitMs: eff.groupWait,
    groupIntervalMs: eff.groupInterval,
    repeatIntervalMs: policy.repeatInterval ?? eff.repeatInterval,
    levels,
    inhibitRules: config.inhibitRules.map((r) => ({
      sourceMatchers: r.sourceMatchers.map((m) => m.text),
      targetMatchers: r.targetMatchers.map((m) => m.text),
      equal: r.equal,
    })),
  };
}

/** Canonical group key: `k=v` pairs of the groupBy labels in groupBy order. */
export function groupKey(groupBy: readonly string[], labels: Readonly<Record<string, string>>): string {
  return groupBy.map((k) => `${k}=${labels[k] ?? ''}`).join(',');
}

/** True when an open `source` alert inhibits the `target` alert under the rule (the caller excludes the target's own incident). */
export function inhibits(rule: InhibitRule, source: Readonly<Record<string, string>>, target: Readonly<Record<string, string>>): boolean {
  return (
    matchesAll(rule.sourceMatchers, source) &&
    matchesAll(rule.targetMatchers, target) &&
    rule.equal.every((k) => (source[k] ?? '') === (target[k] ?? ''))
  );
}

/** A silence: while `startsAt <= t < endsAt`, alerts matching all matchers are not notified (still open, visible, recorded). */
export const silenceSchema = z.object({
  id: z.string().min(1),
  matchers: z.array(matcherSchema).min(1, 'expected at least one matcher, e.g. team=payments'),
  startsAt: z.iso.datetime({ offset: true, message: 'expected an ISO-8601 time such as 2026-01-31T12:00:00Z' }),
  endsAt: z.iso.datetime({ offset: true, message: 'expected an ISO-8601 time such as 2026-01-31T12:00:00Z' }),
  createdBy: z.string().min(1),
  comment: z.string().default(''),
});
/** A silence as stored and evaluated. */
export type Silence = z.infer<typeof silenceSchema>;

/** True when the silence is in force at `atMs` and matches the labels. */
export function silenceApplies(silence: Silence, labels: Readonly<Record<string, string>>, atMs: number): boolean {
  return Date.parse(silence.startsAt) <= atMs && atMs < Date.parse(silence.endsAt) && matchesAll(silence.matchers, labels);
}

/** Re-exported so config readers need one import. */
export { severitySchema };
