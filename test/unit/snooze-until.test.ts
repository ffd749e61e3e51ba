/** `platform alerts snooze --until`: ISO times pass through; +30m / +2h / +1d count from now. */
import { describe, expect, it } from 'vitest';
import { snoozeUntil } from '../../workers/cli/alerts.js';

describe('snooze --until', () => {
  const now = Date.parse('2026-11-30T12:00:00.000Z');
  it('adds minutes, hours and days to now', () => {
    expect(snoozeUntil('+30m', now)).toBe('2026-11-30T12:30:00.000Z');
    expect(snoozeUntil('+2h', now)).toBe('2026-11-30T14:00:00.000Z');
    expect(snoozeUntil('+1d', now)).toBe('2026-12-01T12:00:00.000Z');
  });
  it('leaves an ISO time and anything else for the update to validate', () => {
    expect(snoozeUntil('2027-01-31T12:00:00Z', now)).toBe('2027-01-31T12:00:00Z');
    expect(snoozeUntil('+2w', now)).toBe('+2w');
  });
});
