/**
 * Authentication (https://clickhouse.com/docs/interfaces/http, "user and password"): credentials
 * by Basic auth, X-ClickHouse-User/Key headers or URL parameters. A refusal is 403 with 516
 * AUTHENTICATION_FAILED naming the user that was sent. A user configured without a password
 * (`no_password`, the server's default `default`) accepts any password: the server's own rule
 * ("even if the password is not empty", src/Access/Authentication.cpp).
 */
import { describe, expect, it } from 'vitest';
import { ch, exceptionText, target, type Call } from './client.js';

describe('authentication', () => {
  it('refuses an unknown user by the name that was sent', async () => {
    const calls: Call[] = [
      { headers: { 'X-ClickHouse-User': 'alice_conformance', 'X-ClickHouse-Key': 'x' } },
      { headers: { Authorization: `Basic ${Buffer.from('bob_conformance:x').toString('base64')}` } },
      { anonymous: true, params: { user: 'carol_conformance', password: 'x' } },
    ];
    for (const call of calls) {
      const answer = await ch('SELECT 1', call);
      expect(answer.status).toBe(403);
      expect(answer.code).toBe('516');
      expect(answer.text).toMatch(exceptionText(516, 'AUTHENTICATION_FAILED'));
      expect(answer.text).toMatch(/DB::Exception: (alice|bob|carol)_conformance: Authentication failed/);
    }
  });

  it('accepts the configured user, by header and by URL parameters', async () => {
    const { user, password } = target();
    expect((await ch('SELECT 1', { headers: { 'X-ClickHouse-User': user, 'X-ClickHouse-Key': password } })).text).toBe('1\n');
    expect((await ch('SELECT 1', { anonymous: true, params: { user, password } })).text).toBe('1\n');
  });

  it.runIf(target().password === '')('accepts any password for a user without one, as a server does', async () => {
    const answer = await ch('SELECT 1', { headers: { Authorization: `Basic ${Buffer.from(`${target().user}:anything`).toString('base64')}` } });
    expect(answer.status).toBe(200);
  });

  it.runIf(target().password !== '')('refuses a wrong password', async () => {
    const answer = await ch('SELECT 1', { headers: { Authorization: `Basic ${Buffer.from(`${target().user}:wrong-${target().password}`).toString('base64')}` } });
    expect(answer.status).toBe(403);
    expect(answer.code).toBe('516');
  });
});
