// A grant's model_api (issue 63) from the command line, as a store grant: `grants add --model-api`,
// `grants set --model-api`, shown by `grants show`, refused when it is no wire format keyway meters,
// and compiled onto the grant the proxy uses, beside a config grant's.
import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { buildGrants } from '../../src/credentials/grant-table.ts';
import { openServices } from '../../src/open-home.ts';
import { makeHome, runCli } from '../helpers/keyway.ts';

describe('grants add|set --model-api', () => {
  const home = makeHome();
  const env = { KEYWAY_HOME: home, KEYWAY_MASTER_KEY: randomBytes(32).toString('base64') };
  mkdirSync(join(home, 'config'), { recursive: true });
  writeFileSync(
    join(home, 'config', 'keyway.yaml'),
    stringify({
      grants: { 'azure-openai': { type: 'api_key', domains: ['acme.openai.azure.com'], secret: 'env:AZ', inject: { header: 'api-key' }, model_api: 'openai' } },
    }),
  );
  const show = async (id: string) => JSON.parse((await runCli(['grants', 'show', id, '--json'], env)).stdout) as { model_api: string | null };

  it('keeps the hint on the stored grant, shows it, changes it, and compiles it onto the grant', async () => {
    const add = await runCli(['grants', 'add', 'gateway', '--type', 'bearer', '--domains', 'llm.example.test', '--model-api', 'anthropic'], env);
    expect(add.code, add.stderr).toBe(0);
    expect((await show('gateway')).model_api).toBe('anthropic');
    expect((await runCli(['grants', 'show', 'gateway'], env)).stdout).toMatch(/Model API \(spend\):\s+metered as anthropic/);

    const plain = await runCli(['grants', 'add', 'plain', '--type', 'bearer', '--domains', 'plain.example.test'], env);
    expect(plain.code, plain.stderr).toBe(0);
    expect((await show('plain')).model_api).toBeNull();
    expect((await show('azure-openai')).model_api).toBe('openai');

    const set = await runCli(['grants', 'set', 'gateway', '--model-api', 'none'], env);
    expect(set.code, set.stderr).toBe(0);
    expect((await show('gateway')).model_api).toBe('none');
    // Another change leaves it as it was.
    expect((await runCli(['grants', 'set', 'gateway', '--domains', 'llm2.example.test'], env)).code).toBe(0);
    expect((await show('gateway')).model_api).toBe('none');

    const services = await openServices({ home, env });
    try {
      const grants = buildGrants(services.config, services.store, { AZ: 'az-secret' });
      expect(grants.get('gateway')?.modelApi).toBe('none');
      expect(grants.get('plain')?.modelApi).toBeUndefined();
      expect(grants.get('azure-openai')?.modelApi).toBe('openai');
    } finally {
      services.store.close();
    }
  });

  it('refuses a value that is no wire format, with the one it was near, and changes nothing', async () => {
    const refused = await runCli(['grants', 'add', 'typo', '--type', 'bearer', '--domains', 'typo.example.test', '--model-api', 'opnai'], env);
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toContain('--model-api: expected one of anthropic, openai, gemini, none; did you mean openai?');
    expect((await runCli(['grants', 'show', 'typo', '--json'], env)).code).not.toBe(0);
    const unset = await runCli(['grants', 'set', 'plain', '--model-api', 'azure'], env);
    expect(unset.code).not.toBe(0);
    expect(unset.stderr).toContain('--model-api: expected one of');
    expect((await show('plain')).model_api).toBeNull();
  });
});
