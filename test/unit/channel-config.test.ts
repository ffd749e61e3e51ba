import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadAlertingConfigFile } from '../../activities/alerting/alert-routing.js';
import { loadChannelTargetsFile } from '../../activities/alerting/notify.js';
import { channelTargetsSchema, undefinedTargetProblems } from '../../schemas/alerting/receivers.js';

describe('channel targets config', () => {
  it('the shipped channels.json is valid and defines every target the shipped policy uses', async () => {
    const targets = await loadChannelTargetsFile();
    const alerting = await loadAlertingConfigFile();
    expect(undefinedTargetProblems(alerting.receivers, targets)).toEqual([]);
    // Secret URLs are referenced by variable name only.
    for (const target of Object.values(targets)) {
      if (target.type === 'slack') expect(target.url).toBeUndefined();
    }
  });

  it('a bad file is refused with the file name and every bad field', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'channels-'));
    try {
      const path = join(dir, 'channels.json');
      await writeFile(path, JSON.stringify({ 'slack:x': { type: 'slack' }, 'pagerduty:y': { type: 'pagerduty', routingKeyEnv: 'has-dash' }, 'sms:z': { type: 'log' } }));
      const error = await loadChannelTargetsFile(path).catch((e: unknown) => e as Error);
      expect(error).toMatchObject({ code: 'channel_config', retriable: false });
      const message = (error as Error).message;
      expect(message).toContain(path);
      expect(message).toContain('slack:x: expected exactly one of url or urlEnv');
      expect(message).toContain('pagerduty:y.routingKeyEnv: expected the NAME of an environment variable');
      expect(message).toContain('sms:z');
      await writeFile(path, '{ not json');
      await expect(loadChannelTargetsFile(path)).rejects.toThrow(/expected a readable JSON file/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('applies defaults and checks the id prefix against the type', () => {
    const parsed = channelTargetsSchema.parse({ 'pagerduty:p': { type: 'pagerduty', routingKeyEnv: 'PD_KEY' }, 'email:e': { type: 'email', host: 'smtp.example.com', from: 'a@example.com', to: ['b@example.com'] } });
    expect(parsed['pagerduty:p']).toMatchObject({ url: 'https://events.pagerduty.com/v2/enqueue', timeoutMs: 10_000 });
    expect(parsed['email:e']).toMatchObject({ port: 587, secure: false, startTls: 'auto', tlsRejectUnauthorized: true });
    expect(channelTargetsSchema.safeParse({ 'email:e': { type: 'email', host: 'h', hostEnv: 'H', from: 'a@example.com', to: ['b@example.com'] } }).success).toBe(false);
    expect(channelTargetsSchema.safeParse({ 'webhook:w': { type: 'webhook', url: 'file:///etc/passwd' } }).success).toBe(false);
  });
});
