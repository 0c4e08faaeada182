// The start banner's first command follows what is configured (issue 36, item 10): it used to
// suggest `keyway run -- curl https://api.github.com/user` whatever the grants and agents, which
// with agents configured (and no --agent) gets 407, and with no github grant reaches nothing keyway guards.
import { describe, expect, it } from 'vitest';
import { parseDomainPattern, type DomainPattern } from '../../src/config/domain-pattern.ts';
import { nextSteps } from '../../src/cli/start-banner.ts';

const grant = (id: string, ...domains: string[]) => ({ id, domains: domains.map((d) => parseDomainPattern(d) as DomainPattern) });

describe("the start banner's next steps", () => {
  it('no agents: a host the first grant names, with no --agent', () => {
    expect(nextSteps({ grants: [grant('wild', '*.example.test'), grant('stripe', 'api.stripe.com')], agents: [] })).toEqual({
      run: 'keyway run -- curl https://api.stripe.com/',
      env: 'eval "$(keyway env)"',
    });
  });

  it('agents: one that may use a grant, with --agent, and its port when not 443; a store agent takes its key from the environment', () => {
    const grants = [grant('github', 'api.github.com'), grant('local', 'api.local.test:8443')];
    const agents = [
      { id: 'reader', source: 'config', grants: new Set(['nothing']) },
      { id: 'bot', source: 'store', grants: new Set(['local']) },
    ];
    expect(nextSteps({ grants, agents })).toEqual({
      run: 'KEYWAY_AGENT_KEY=… keyway run --agent bot -- curl https://api.local.test:8443/',
      env: 'eval "$(KEYWAY_AGENT_KEY=… keyway env --agent bot)"',
    });
    expect(nextSteps({ grants, agents: [{ id: 'ci', source: 'config', grants: undefined }] }).run).toBe(
      'keyway run --agent ci -- curl https://api.github.com/',
    );
  });

  it('no agent may use a grant with a host: a placeholder command and what to do', () => {
    const steps = nextSteps({ grants: [grant('github', 'api.github.com')], agents: [{ id: 'ci', source: 'config', grants: new Set<string>() }] });
    expect(steps.run).toBe('keyway run --agent ci -- CMD');
    expect(steps.note).toContain('keyway agents add ID --grants GRANT');
  });
});
