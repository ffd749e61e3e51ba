/**
 * Cutting text to a channel's length limit without breaking a character: the cut falls on an
 * extended grapheme cluster boundary (Unicode UAX #29, through `Intl.Segmenter`), so an emoji ZWJ
 * sequence, a flag, a base letter with its combining marks or a surrogate pair is kept whole or
 * dropped whole, and a marker ("…") says that text was cut. The length is measured in the unit the
 * channel counts (see {@link channelLimits}). Pure; no I/O.
 */

/** How a channel counts length: UTF-16 code units (JavaScript `length`), Unicode code points, or UTF-8 bytes. */
export type LengthUnit = 'utf16' | 'codepoints' | 'utf8';

/** The marker appended to cut text: U+2026 HORIZONTAL ELLIPSIS (1 UTF-16 unit, 1 code point, 3 UTF-8 bytes). */
export const cutMarker = '…';

const encoder = new TextEncoder();
const segmenter = new Intl.Segmenter('en', { granularity: 'grapheme' });

/** Length of `text` in `unit`. */
export function measure(text: string, unit: LengthUnit): number {
  switch (unit) {
    case 'utf16':
      return text.length;
    case 'codepoints':
      return Array.from(text).length;
    case 'utf8':
      return encoder.encode(text).length;
  }
}

/**
 * `text` unchanged when it fits `limit` (in `unit`); otherwise the longest prefix of whole grapheme
 * clusters that fits together with `marker`, followed by the marker. When not even the marker fits,
 * the result is the longest whole-grapheme prefix of the marker (possibly empty).
 * @throws {RangeError} when `limit` is negative or not an integer.
 */
export function truncate(text: string, limit: number, unit: LengthUnit, marker: string = cutMarker): string {
  if (!Number.isInteger(limit) || limit < 0) throw new RangeError(`truncate: expected a non-negative integer limit, got ${limit}`);
  if (measure(text, unit) <= limit) return text;
  const markerLength = measure(marker, unit);
  if (markerLength > limit) return truncate(marker, limit, unit, '');
  const budget = limit - markerLength;
  // Only the head can be kept: `budget` units never span more than `budget` UTF-16 units (2x for
  // code points). The head ends on a code point boundary; every boundary inside it is then one of
  // the whole text (UAX #29 rules look at most one character ahead), except its own end, so its
  // last segment is taken only when the head is the whole text.
  let cut = Math.min(text.length, unit === 'codepoints' ? 2 * budget + 2 : budget + 1);
  const before = text.charCodeAt(cut - 1);
  if (cut < text.length && before >= 0xd800 && before <= 0xdbff) cut++;
  const head = text.slice(0, cut);
  let used = 0;
  let end = 0;
  for (const { segment, index } of segmenter.segment(head)) {
    if (index + segment.length === head.length && head.length < text.length) break;
    const size = measure(segment, unit);
    if (used + size > budget) break;
    used += size;
    end = index + segment.length;
  }
  return text.slice(0, end) + marker;
}

/** One channel field's limit. */
export interface FieldLimit {
  /** Maximum length, in `unit`. */
  limit: number;
  unit: LengthUnit;
  /** Where the limit comes from. */
  source: string;
}

/**
 * The limits the notify activity enforces. The vendors' documents say "characters" without naming
 * the unit; we count UTF-16 code units there, which is never less than code points, so the text
 * fits whichever of the two the receiver counts.
 */
export const channelLimits = {
  /** PagerDuty Events API v2 `payload.summary`: "maximum of 1024 characters". */
  pagerDutySummary: { limit: 1024, unit: 'utf16', source: 'PagerDuty Events API v2, payload.summary' },
  /** Slack header block `text` (plain_text): "maximum length 150 characters". */
  slackHeader: { limit: 150, unit: 'utf16', source: 'Slack Block Kit, header block' },
  /** Slack section block `text` (mrkdwn text object): "maximum length 3000 characters". */
  slackSection: { limit: 3000, unit: 'utf16', source: 'Slack Block Kit, section block text' },
  /** Slack context block element text (mrkdwn text object): 3000 characters. */
  slackContext: { limit: 3000, unit: 'utf16', source: 'Slack Block Kit, text object' },
  /** Slack top-level `text` (notification fallback): Slack truncates beyond 40,000 characters. */
  slackText: { limit: 40_000, unit: 'utf16', source: 'Slack chat.postMessage, text' },
  /** Email subject: kept to 200 characters for readability; RFC 5322's 998-octet line limit is met by RFC 2047 folding. */
  emailSubject: { limit: 200, unit: 'codepoints', source: 'RFC 5322 section 2.1.1 (folded), readability' },
  /** Generic webhook body: 256 KiB of UTF-8, below common HTTP servers' default body limits. */
  webhookBody: { limit: 256 * 1024, unit: 'utf8', source: 'streamwarden webhook contract' },
  /** Free text inside a webhook alert (summary, query). */
  webhookField: { limit: 4096, unit: 'utf16', source: 'streamwarden webhook contract' },
} as const satisfies Record<string, FieldLimit>;

/** {@link truncate} with a named channel limit. */
export function fit(text: string, field: FieldLimit, marker: string = cutMarker): string {
  return truncate(text, field.limit, field.unit, marker);
}
