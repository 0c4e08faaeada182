import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/load.ts';

// Issue 60: a misspelt key is said as the misspelling, every problem of a config is said at once,
// and an identities rule naming a near-miss of a config agent is refused.

const messageFor = (raw: unknown): string => {
  try {
    parseConfig(raw, '/nonexistent-home');
  } catch (err) {
    return (err as Error).message;
  }
  throw new Error('expected the config to be refused');
};

const grant = { domains: ['api.example.test'], secret: 'env:X' };

describe('a misspelt key', () => {
  it("is an unknown key with the right one, even where it decides the entry's shape (a grant's type)", () => {
    const message = messageFor({ grants: { gh: { tpye: 'bearer', ...grant } } });
    expect(message).toBe('config: grants.gh.tpye: unknown key; did you mean type?');
    expect(message).not.toContain('expected one of');
  });

  it('keeps the wrong-value message for a type that is there and wrong', () => {
    expect(messageFor({ grants: { gh: { type: 'beare', ...grant } } })).toMatch(/^config: grants\.gh\.type: expected one of .*; did you mean bearer\?$/);
  });

  it('still says a key is required when nothing near it is there', () => {
    expect(messageFor({ grants: { gh: { ...grant } } })).toMatch(/^config: grants\.gh\.type: expected one of /);
  });
});

describe('every problem of a config', () => {
  it('is said in one message, each with its path, not "(and 1 more)"', () => {
    const message = messageFor({ proxy: { listn: '127.0.0.1:8787' }, grants: { gh: { type: 'bearer', domians: ['a.example.test'], secret: 'env:X' } } });
    expect(message).toContain('proxy.listn: unknown key; did you mean listen?');
    expect(message).toContain('grants.gh.domians: unknown key; did you mean domains?');
    // Each on a line of its own under the count.
    expect(message.split('\n')).toEqual([
      'config: 2 problems:',
      '  proxy.listn: unknown key; did you mean listen?',
      '  grants.gh.domians: unknown key; did you mean domains?',
    ]);
    expect(message).not.toMatch(/and \d+ more/);
    // The misspelling explains the missing key: not said twice.
    expect(message).not.toContain('grants.gh.domains');
  });

  it('up to a cap, with a count of the rest', () => {
    const proxy = Object.fromEntries(Array.from({ length: 30 }, (_, i) => [`zz${String(i).padStart(2, '0')}zzzzz`, 1]));
    const message = messageFor({ proxy });
    expect(message.split('\n')[0]).toBe('config: 30 problems:');
    expect(message.split('\n')).toHaveLength(22);
    expect(message).toContain('proxy.zz00zzzzz: unknown key');
    expect(message).toContain('proxy.zz19zzzzz: unknown key');
    expect(message).not.toContain('proxy.zz20zzzzz');
    expect(message).toMatch(/\n {2}\(and 10 more\)$/);
  });
});

describe('an identities rule naming an agent', () => {
  const identity = (agent: string) => ({
    issuer: 'https://issuer.example.test',
    jwks: '/jwks.json',
    audience: 'keyway',
    map: [{ claims: { sub: 'x' }, agent }],
  });

  it('near a config agent that has a key is refused with the guess', () => {
    const message = messageFor({ agents: { ci: { key: 'env:CI_KEY' } }, identities: [identity('cii')] });
    expect(message).toContain('identities.0.map.0.agent: no agent "cii" in the config; did you mean ci?');
  });

  it('of the config, or far from every config agent (an agent of the store), is taken', () => {
    expect(() => parseConfig({ agents: { ci: { key: 'env:CI_KEY' } }, identities: [identity('ci')] }, '/nonexistent-home')).not.toThrow();
    expect(() => parseConfig({ agents: { ci: { key: 'env:CI_KEY' } }, identities: [identity('deploy-bot')] }, '/nonexistent-home')).not.toThrow();
  });
});
