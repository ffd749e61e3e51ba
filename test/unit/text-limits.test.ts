import { describe, expect, it } from 'vitest';
import { channelLimits, cutMarker, measure, truncate, type LengthUnit } from '../../activities/alerting/text-limits.js';
import { pagerDutyEvent, slackPayload, subjectOf, webhookBody } from '../../activities/alerting/notify.js';
import type { Notification } from '../../schemas/alerting/notification.js';

/** No lone surrogate (String.prototype.isWellFormed, which the project's TS lib predates). */
const wellFormed = (s: string) => !/[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/.test(s);
const graphemes = (s: string) => [...new Intl.Segmenter('en', { granularity: 'grapheme' }).segment(s)].map((g) => g.segment);

// Emoji ZWJ sequences, a flag, skin tones, combining marks (decomposed é, Devanagari, stacked
// diacritics), CJK and Hangul, mixed with ASCII, so every kind of boundary lands at some cut.
const samples = {
  zwj: 'ops 👩‍💻 paged 👨‍👩‍👧‍👦 family 🏳️‍🌈 flag',
  flags: '🇯🇵🇫🇷🇺🇸 regions',
  skin: 'wave 👋🏽 ok 👍🏿',
  combining: 'cafe\u0301 re\u0301sume\u0301 Z\u0351\u0352\u0353algo नमस्ते',
  cjk: '数据管道延迟过高，请立即检查。한국어 텍스트 日本語のテキスト',
  mixed: 'a👩‍💻b\u0301c数🇯🇵d',
};
const units: LengthUnit[] = ['utf16', 'codepoints', 'utf8'];

describe('truncate on grapheme boundaries', () => {
  for (const [name, text] of Object.entries(samples)) {
    for (const unit of units) {
      it(`${name}, counted in ${unit}: every limit from 0 to the full length`, () => {
        const full = measure(text, unit);
        const parts = graphemes(text);
        for (let limit = 0; limit <= full + 1; limit++) {
          const out = truncate(text, limit, unit);
          expect(measure(out, unit)).toBeLessThanOrEqual(limit);
          expect(wellFormed(out)).toBe(true);
          if (limit >= full) {
            expect(out).toBe(text);
            continue;
          }
          if (measure(cutMarker, unit) > limit) {
            expect(out).toBe('');
            continue;
          }
          expect(out.endsWith(cutMarker)).toBe(true);
          const kept = out.slice(0, -cutMarker.length);
          // A prefix of whole graphemes...
          const k = graphemes(kept).length;
          expect(parts.slice(0, k).join('')).toBe(kept);
          // ...and the longest one: one more grapheme would not fit with the marker.
          expect(measure(parts.slice(0, k + 1).join('') + cutMarker, unit)).toBeGreaterThan(limit);
        }
      });
    }
  }

  it('refuses a negative limit', () => {
    expect(() => truncate('abc', -1, 'utf16')).toThrow(RangeError);
  });
});

function notification(summary: string, extra: Partial<Notification['alerts'][number]> = {}, count = 1): Notification {
  const alert = {
    incidentId: 'alert-1/run',
    fingerprint: '0123456789abcdef',
    detector: 'error_rate_high',
    severity: 'critical' as const,
    status: 'firing',
    summary,
    labels: { pipeline: 'orders' },
    level: 0,
    firstSeen: '2026-01-01T00:00:00Z',
    lastSeen: '2026-01-01T00:00:00Z',
    count: 1,
    ...extra,
  };
  return {
    notificationId: 'n1',
    kind: 'trigger',
    receiver: 'oncall',
    target: 'webhook:ops',
    alerts: Array.from({ length: count }, (_, i) => ({ ...alert, incidentId: `alert-${i}/run`, fingerprint: `${i}`.padStart(16, '0') })),
  };
}

describe('every channel stays within its limit (issue: an emoji cut at 1024/150 made a strict receiver answer 400)', () => {
  // Summaries whose length puts every kind of grapheme across each limit.
  const summaries: string[] = [];
  for (const text of Object.values(samples)) {
    for (let pad = 0; pad < 12; pad++) summaries.push('x'.repeat(1024 - 40 + pad) + text.repeat(3), 'y'.repeat(150 - 30 + pad) + text.repeat(2));
  }
  const wholeGraphemePrefix = (out: string, original: string) => {
    const kept = out.endsWith(cutMarker) ? out.slice(0, -cutMarker.length) : out;
    expect(original.startsWith(kept)).toBe(true);
    expect(graphemes(original).slice(0, graphemes(kept).length).join('')).toBe(kept);
  };

  it('PagerDuty payload.summary: at most 1024, whole graphemes, marked', () => {
    for (const summary of summaries) {
      const event = pagerDutyEvent(notification(summary), notification(summary).alerts[0]!, 'key', undefined) as { payload: { summary: string } };
      expect(event.payload.summary.length).toBeLessThanOrEqual(channelLimits.pagerDutySummary.limit);
      expect(wellFormed(event.payload.summary)).toBe(true);
      wholeGraphemePrefix(event.payload.summary, summary);
      if (summary.length > 1024) expect(event.payload.summary.endsWith(cutMarker)).toBe(true);
    }
  });

  it('Slack header 150, section and context 3000, whole graphemes, no half entity', () => {
    for (const summary of [...summaries, '&'.repeat(2000), `${'<'.repeat(700)}👩‍💻`]) {
      const payload = slackPayload(notification(summary, { labels: { note: '&<>'.repeat(400) } }), new Map()) as {
        text: string;
        blocks: { type: string; text?: { text: string }; elements?: { text: string }[] }[];
      };
      const header = payload.blocks.find((b) => b.type === 'header')!.text!.text;
      expect(header.length).toBeLessThanOrEqual(150);
      expect(wellFormed(header)).toBe(true);
      for (const block of payload.blocks.filter((b) => b.type === 'section')) {
        expect(block.text!.text.length).toBeLessThanOrEqual(3000);
        expect(wellFormed(block.text!.text)).toBe(true);
        expect(block.text!.text).not.toMatch(/&[a-z]*…$/);
      }
      expect(wellFormed(payload.text)).toBe(true);
    }
  });

  it('email subject: at most 200 code points, whole graphemes', () => {
    for (const summary of summaries) {
      const subject = subjectOf(notification(summary));
      expect(measure(subject, 'codepoints')).toBeLessThanOrEqual(channelLimits.emailSubject.limit);
      expect(wellFormed(subject)).toBe(true);
      const whole = `[CRITICAL] ${summary}`;
      wholeGraphemePrefix(subject, whole);
      expect(subject.endsWith(cutMarker)).toBe(measure(whole, 'codepoints') > channelLimits.emailSubject.limit);
    }
  });

  it('webhook body: within its byte limit, text cut whole, alerts left off counted', () => {
    const big = notification('👩‍💻'.repeat(3000), { query: `SELECT '${'数'.repeat(5000)}'` }, 200);
    const body = webhookBody(big, new Map(), new Date('2026-01-01T00:00:00Z'));
    expect(measure(body, 'utf8')).toBeLessThanOrEqual(channelLimits.webhookBody.limit);
    const parsed = JSON.parse(body) as { alerts: { summary: string; query: string }[]; truncatedAlerts: number };
    expect(parsed.alerts.length + parsed.truncatedAlerts).toBe(200);
    expect(parsed.truncatedAlerts).toBeGreaterThan(0);
    expect(parsed.alerts[0]!.summary.length).toBeLessThanOrEqual(channelLimits.webhookField.limit);
    wholeGraphemePrefix(parsed.alerts[0]!.summary, '👩‍💻'.repeat(3000));
    const small = JSON.parse(webhookBody(notification('ok'), new Map(), new Date())) as { truncatedAlerts: number; alerts: { summary: string }[] };
    expect(small).toMatchObject({ truncatedAlerts: 0, alerts: [{ summary: 'ok' }] });
  });
});
