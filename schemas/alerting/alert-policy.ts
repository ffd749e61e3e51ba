/**
 * Alerting configuration: receivers, escalation policies per severity, an Alertmanager-style
 * routing tree, inhibition rules, and the silence model. Pure (zod + plain functions), so the
 * workflow can run the routing decision deterministically and the worker validates the repo's
 * infra/alerting/policy.json with the same schema at start.
 */
import { z } from 'zod';
import { severitySchema, type AlertFiring } from './alert.js';
import { targetIdSchema } from './receivers.js';
import { matchesAll, parseMatcher, parseMatchers, type Matcher } from './matchers.js';

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

/**
 * One label matcher in Alertmanager's grammar (see {@link parseMatcher}): `name=value`,
 * `name != "a b"`, `name=~"regex"` (anchored), `"utf-8 name"!~".+"`. Refused with the column and
 * the expected form when Alertmanager would refuse it.
 */
export const matcherSchema = z.string().transform((text, ctx): Matcher => {
  try {
    return parseMatcher(text);
  } catch (err) {
    ctx.addIssue({ code: 'custom', message: err instanceof Error ? err.message : String(err) });
    return z.NEVER;
  }
});

/**
 * A list of matcher lines as in Alertmanager's YAML (`matchers:`): each line holds one or more
 * comma-separated matchers, optionally in braces (`{a="1", b=~"x|y"}`); the result is flat.
 */
export const matcherListSchema = z.array(z.string()).transform((lines, ctx): Matcher[] => {
  const out: Matcher[] = [];
  lines.forEach((line, i) => {
    try {
      out.push(...parseMatchers(line));
    } catch (err) {
      ctx.addIssue({ code: 'custom', path: [i], message: err instanceof Error ? err.message : String(err) });
    }
  });
  return out;
});

export { matchesAll, type Matcher };

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
    matchers: matcherListSchema.default([]),
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
  sourceMatchers: matcherListSchema.refine((ms) => ms.length > 0, 'expected at least one matcher'),
  targetMatchers: matcherListSchema.refine((ms) => ms.length > 0, 'expected at least one matcher'),
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

/**
 * True when an open `source` alert inhibits the `target` alert under the rule (the caller excludes
 * the target's own incident). Follows Alertmanager's `inhibit.go` (`Inhibitor.Mutes` and
 * `InhibitRule.hasEqual`): the target must match `targetMatchers`, the source `sourceMatchers`,
 * and every `equal` label must have the same value on both (a missing label equals a missing
 * label). When the target also matches `sourceMatchers` (it could inhibit as well), a source that
 * also matches `targetMatchers` does not inhibit it (`excludeTwoSidedMatch`): two alerts that each
 * match both sides of a rule never mute each other.
 */
export function inhibits(rule: InhibitRule, source: Readonly<Record<string, string>>, target: Readonly<Record<string, string>>): boolean {
  if (!matchesAll(rule.targetMatchers, target) || !matchesAll(rule.sourceMatchers, source)) return false;
  const value = (labels: Readonly<Record<string, string>>, k: string) => (Object.hasOwn(labels, k) ? labels[k]! : '');
  if (!rule.equal.every((k) => value(source, k) === value(target, k))) return false;
  const excludeTwoSidedMatch = matchesAll(rule.sourceMatchers, target);
  return !(excludeTwoSidedMatch && matchesAll(rule.targetMatchers, source));
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
