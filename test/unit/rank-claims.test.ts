/**
 * The rank rule of the claims check (issue 7, point 6): among the claims of an id within the
 * window, the lowest block wins, ties within one block go to the lowest (topic, partition,
 * offset); a position's own earlier claims (retry, re-plan, replay) are its own; claims outside the
 * window do not compete; a step whose own claim is not read back is told so.
 */
import { describe, expect, it } from 'vitest';
import { rankClaims, type EventRow, type IdClaim } from '../../activities/ingest/ingest.js';

const idA = '3b241101-e2bb-4255-8caf-4136c566a962';
const idB = '9f0e4a52-1c3d-4e5f-8a7b-0c1d2e3f4a5b';
const hour = 3_600_000;
const row = (id: string, partition: number, offset: number, eventTime = '2026-03-01 09:00:00.000'): EventRow => ({
  pipeline: 'p',
  batch_id: `p/t/${partition}/${offset}-${offset + 1}`,
  topic: 't',
  partition,
  offset,
  event_id: id,
  subject: 'request-telemetry',
  contract_version: 1,
  event_key: 'k',
  event_time: eventTime,
  data: '{}',
  kafka_timestamp: eventTime,
  processor_version: '1',
});
const claim = (id: string, partition: number, offset: number, block: number, over: Partial<IdClaim> = {}): IdClaim => ({
  id,
  topic: 't',
  partition,
  offset: String(offset),
  block,
  batchId: `p/t/${partition}/${offset}-${offset + 1}`,
  eventTime: '2026-03-01 09:00:00.000',
  ...over,
});

describe('rankClaims', () => {
  it('the lowest block owns the id: the step keeps it when that is its own claim, else points at the winner', () => {
    const events = [row(idA, 1, 7), row(idB, 1, 8)];
    const claims = [claim(idA, 0, 3, 5), claim(idA, 1, 7, 6), claim(idB, 1, 8, 6), claim(idB, 0, 4, 9)];
    expect(rankClaims(events, claims, 24 * hour)).toEqual({
      winners: [{ id: idA, topic: 't', partition: 0, offset: '3', batchId: 'p/t/0/3-4', eventTime: '2026-03-01 09:00:00.000' }],
      missing: [],
    });
  });

  it('breaks a tie within one block by topic, then partition, then offset (numerically)', () => {
    const tie = [claim(idA, 1, 2, 4), claim(idA, 0, 10, 4), claim(idA, 0, 9, 4, { topic: 'u' })];
    expect(rankClaims([row(idA, 1, 2)], tie, hour).winners.map((w) => `${w.topic}/${w.partition}/${w.offset}`)).toEqual(['t/0/10']);
    expect(rankClaims([row(idA, 0, 10)], tie, hour).winners).toEqual([]);
    // Offsets compare as numbers, not as text ('10' < '9').
    expect(rankClaims([row(idA, 0, 10)], [claim(idA, 0, 10, 4), claim(idA, 0, 9, 4)], hour).winners.map((w) => w.offset)).toEqual(['9']);
  });

  it("a position's earlier claims are its own: a replay or re-plan of the same offset keeps the id", () => {
    // The read-back groups by position with min(_block_number): the replay's new claim (block 30)
    // shows as the position's first claim (block 2), ahead of the other partition's (block 3).
    const claims = [claim(idA, 0, 3, 2, { batchId: 'p/t/0/0-5' }), claim(idA, 1, 7, 3)];
    expect(rankClaims([row(idA, 0, 3)], claims, hour)).toEqual({ winners: [], missing: [] });
    expect(rankClaims([row(idA, 1, 7)], claims, hour).winners).toEqual([{ id: idA, topic: 't', partition: 0, offset: '3', batchId: 'p/t/0/0-5', eventTime: '2026-03-01 09:00:00.000' }]);
  });

  it('claims farther than the window from the event time do not compete; ids compare case-insensitively', () => {
    const far = claim(idA, 0, 3, 1, { eventTime: '2026-03-03 09:00:00.001' });
    const upper = row(idA.toUpperCase(), 1, 7);
    expect(rankClaims([upper], [far, claim(idA, 1, 7, 2)], 48 * hour).winners).toEqual([]);
    expect(rankClaims([upper], [{ ...far, eventTime: '2026-03-03 09:00:00.000' }, claim(idA, 1, 7, 2)], 48 * hour).winners.map((w) => w.offset)).toEqual(['3']);
  });

  it("lists the ids whose own claim was not read back", () => {
    expect(rankClaims([row(idA, 1, 7), row(idB, 1, 8)], [claim(idA, 0, 3, 1), claim(idB, 1, 8, 2)], hour)).toEqual({
      winners: [],
      missing: [idA],
    });
  });
});
