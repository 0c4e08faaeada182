import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/load.ts';
import { changedKeys, RESTART_KEYS } from '../../src/app/config-changes.ts';

const load = (raw: unknown) => parseConfig(raw, '/home/test');
const grant = { type: 'bearer', domains: ['api.example.test'], secret: 'env:TOKEN' };

// What a reload reports as changed: key paths one level into each section (names, never values),
// so `keyway reload` can say which changes a restart applies.
describe('changedKeys', () => {
  it('is empty for the same config, and ignores where it was read from', () => {
    expect(changedKeys(load({ grants: { a: grant } }), parseConfig({ grants: { a: grant } }, '/home/test', '/elsewhere.yaml'))).toEqual([]);
  });

  it('names grants, agents and providers by id, added, removed or edited', () => {
    const before = load({ grants: { a: grant, b: grant } });
    const after = load({ grants: { a: { ...grant, domains: ['other.example.test'] }, c: grant }, agents: { bot: { key: 'env:K' } } });
    expect(changedKeys(before, after)).toEqual(['agents.bot', 'grants.a', 'grants.b', 'grants.c']);
  });

  it('names proxy keys, and timeouts one by one; a value never appears', () => {
    const before = load({ proxy: { hosts: { 'x.test': '127.0.0.1' } } });
    const after = load({ proxy: { hosts: { 'x.test': '127.0.0.2' }, listen: '127.0.0.1:9999', timeouts: { idle: '5s' } } });
    const changed = changedKeys(before, after);
    expect(changed).toEqual(['proxy.hosts', 'proxy.listen', 'proxy.timeouts.idle']);
    expect(changed.join()).not.toContain('127.0.0.2');
  });

  it('counts timeouts.upstream and its older name proxy.upstream_timeout as one setting that needs a restart', () => {
    const changed = changedKeys(load({}), load({ proxy: { upstream_timeout: '5s' } }));
    expect(changed).toEqual(['proxy.timeouts.upstream', 'proxy.upstream_timeout']);
    for (const key of changed) expect(RESTART_KEYS).toContain(key);
  });
});

describe('approvals.slack on reload', () => {
  it('is named one level down, and a restart applies it', async () => {
    const { needsRestart } = await import('../../src/app/config-changes.ts');
    const slack = { bot_token: 'env:B', signing_secret: 'env:S', channel: 'C0APPROVE', mode: 'http', approvers: { U0ALICE: 'alice' } };
    const changed = changedKeys(load({}), load({ approvals: { slack, max_pending: 5 } }));
    expect(changed).toEqual(['approvals.max_pending', 'approvals.slack']);
    expect(changed.filter(needsRestart)).toEqual(['approvals.slack']);
  });
});

describe('audit.export on reload', () => {
  it('is named one level down, and a restart applies it', async () => {
    const { needsRestart } = await import('../../src/app/config-changes.ts');
    const target = { format: 'syslog', to: 'syslog+tcp://127.0.0.1:601' };
    const changed = changedKeys(load({}), load({ audit: { export: [target] } }));
    expect(changed).toEqual(['audit.export']);
    expect(changed.filter(needsRestart)).toEqual(['audit.export']);
    // A token reference changed on a target: still the one key, still a restart, no value named.
    const https = (secret: string) => ({ format: 'ocsf', to: 'https://siem.example.com/ingest', headers: { Authorization: { secret } } });
    const swapped = changedKeys(load({ audit: { export: [https('env:OLD_TOKEN')] } }), load({ audit: { export: [https('env:NEW_TOKEN')] } }));
    expect(swapped).toEqual(['audit.export']);
    expect(swapped.filter(needsRestart)).toEqual(['audit.export']);
  });
});
