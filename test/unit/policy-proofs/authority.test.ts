// policy diff's "authority added", read from two policies: what widens is named, what only narrows
// says nothing, and what the reading cannot settle is "cannot tell", never silence. Each case is a
// pair of real configs (the schema's own parse) and real Cedar texts (Cedar's own parse).
import { describe, expect, it } from 'vitest';
import type { Config } from '../../../src/config/index.ts';
import { parseConfig } from '../../../src/config/load.ts';
import { authorityAdded, type PolicySide } from '../../../src/proofs/authority.ts';
import { authoritySummary } from '../../../src/proofs/report.ts';
import { scopesOf } from '../../../src/proofs/scope.ts';

const HOME = '/nonexistent/keyway-home';

function config(agents: Record<string, unknown>, grants: Record<string, string[]> = { api: ['api.example.test'], other: ['other.example.test'] }): Config {
  return parseConfig(
    {
      grants: Object.fromEntries(Object.entries(grants).map(([id, domains]) => [id, { type: 'bearer', domains, secret: 'env:X' }])),
      agents: Object.fromEntries(Object.entries(agents).map(([id, a]) => [id, { key: 'env:K', ...(a as object) }])),
    },
    HOME,
  );
}

async function side(c: Config, cedar: Record<string, string> = {}): Promise<PolicySide> {
  const policies = Object.entries(cedar).map(([id, text]) => ({ id, origin: `x.cedar:${id}`, text }));
  return { config: c, scopes: await scopesOf(policies) };
}

const whats = (items: ReturnType<typeof authorityAdded>) => items.map((i) => `${i.kind}: ${i.what}`);

describe('authority added', () => {
  it('names a grant an agent may now use, a new host, a removed deny rule and a removed approval', async () => {
    const before = config({
      bot: {
        grants: ['api'],
        rules: [
          { grant: 'api', deny: true, paths: ['/admin/**'] },
          { grant: 'api', methods: ['POST'], approve: 'human' },
        ],
      },
    });
    const after = config(
      { bot: { grants: ['api', 'other'], rules: [{ grant: 'api', methods: ['POST'] }] } },
      { api: ['api.example.test', 'uploads.example.test'], other: ['other.example.test'] },
    );
    const items = authorityAdded(await side(before), await side(after));
    expect(whats(items)).toEqual([
      'added: agent bot may now use grant other',
      'added: grant api now covers uploads.example.test',
      'added: deny rule yaml:agents.bot.rules[0] (grant api) removed or changed',
      "added: yaml:agents.bot.rules[1] (grant api) no longer as it was: requests it held for a person's yes may go without one",
      // The same change seen from the new side: an allow rule beside the grant's others.
      'added: allow rule yaml:agents.bot.rules[0] added for grant api',
    ]);
    expect(authoritySummary(items)).toBe('authority added');
  });

  it('says nothing of a change that only narrows: a grant dropped, a deny rule added, an allow rule on an open grant', async () => {
    const before = config({ bot: { grants: ['api', 'other'] } });
    const after = config({
      bot: {
        grants: ['api'],
        rules: [
          { grant: 'api', methods: ['GET'] },
          { grant: 'api', deny: true, paths: ['/admin/**'] },
        ],
      },
    });
    const items = authorityAdded(await side(before), await side(after));
    expect(items).toEqual([]);
    expect(authoritySummary(items)).toBe('no authority added');
  });

  it('Cedar: a new permit and a removed forbid are added; the same policy under another @id is not; a changed condition cannot be told', async () => {
    const c = config({ bot: { grants: ['api'] } });
    const before = await side(c, {
      old: 'permit (principal == Agent::"bot", action, resource == Grant::"api") when { context.method == "GET" };',
      gone: 'forbid (principal, action, resource) when { context.path like "/admin*" };',
      same: '@id("a") forbid (principal, action, resource) when { context.method == "DELETE" };',
    });
    const after = await side(c, {
      old: 'permit (principal == Agent::"bot", action, resource == Grant::"api") when { context.method == "HEAD" };',
      fresh: 'permit (principal == Agent::"ops", action, resource == Grant::"api");',
      same: '@id("b") forbid (principal, action, resource) when { context.method == "DELETE" };',
    });
    const items = authorityAdded({ config: c, scopes: before.scopes }, { config: c, scopes: after.scopes });
    expect(whats(items)).toEqual([
      'unknown: permit old (Agent::"bot" × Grant::"api" × any action) differs from a permit before with a head as wide: cannot tell whether its conditions admit more',
      'added: new permit fresh: Agent::"ops" × Grant::"api" × any action',
      'added: forbid gone removed: any agent × any grant × any action',
    ]);
    // Only "cannot tell": the summary says so rather than "no authority added".
    expect(authoritySummary(items.filter((i) => i.kind === 'unknown'))).toBe('cannot tell');
  });

  it('reads a head with `in` as any principal: wider, so a forbid scoped that way still counts when it goes', async () => {
    const c = config({ bot: { grants: ['api'] } });
    const before = await side(c, { kids: 'forbid (principal in Agent::"bot", action, resource);' });
    const items = authorityAdded(before, await side(c));
    expect(whats(items)).toEqual(['added: forbid kids removed: any agent × any grant × any action']);
  });
});
