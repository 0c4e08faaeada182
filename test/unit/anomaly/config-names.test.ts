// anomaly.agents overrides name agents: one a typo away from a config agent is refused at load
// (config_invalid, the key's path and a one-line reason); any other name is taken, since the store
// may hold it (`keyway agents add`, a delegated child), which the config cannot see.
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../../src/config/load.ts';
import { KeywayError } from '../../../src/errors/index.ts';

const load = (overrides: Record<string, unknown>) =>
  parseConfig(
    {
      grants: { gh: { type: 'bearer', domains: ['api.example.test'], secret: 'env:X' } },
      agents: { 'ci-bot': { key: 'env:K' }, lead: { key: 'env:L' } },
      anomaly: { mode: 'hold', agents: overrides },
    },
    '/home/test',
  );

function refusal(fn: () => unknown): KeywayError {
  try {
    fn();
  } catch (err) {
    return err as KeywayError;
  }
  throw new Error('loaded');
}

describe('anomaly.agents: the agents an override names', () => {
  it('takes a config agent, and a name the config lacks that no config agent is a typo of (a store agent, a child)', () => {
    const config = load({ 'ci-bot': { mode: 'alert' }, 'nightly-etl': { mode: 'off' }, 'lead-worker': { mode: 'alert' } });
    expect(Object.keys(config.anomaly.agents).sort()).toEqual(['ci-bot', 'lead-worker', 'nightly-etl']);
  });

  it('refuses a typo of a config agent with config_invalid, its path and the agent meant, on one line', () => {
    const err = refusal(() => load({ 'ci-bto': { mode: 'off' } }));
    expect(err).toBeInstanceOf(KeywayError);
    expect(err.code).toBe('config_invalid');
    expect(err.message).toContain('anomaly.agents.ci-bto');
    expect(err.message).toContain('did you mean ci-bot?');
    expect(err.message.split('\n').filter((l) => l.includes('ci-bto'))).toHaveLength(1);
    expect(refusal(() => load({ laed: { signals: { off_hours: false } } })).message).toContain('did you mean lead?');
  });
});
