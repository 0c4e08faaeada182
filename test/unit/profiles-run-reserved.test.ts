// The variables a profile may not set are the ones `keyway run` sets itself: profiles/run/reserved.ts
// keeps its own lists (agents sits below cli), and this keeps them in step with cli/client-env.ts.
import { describe, expect, it } from 'vitest';
import { KEYWAY_CA_VARIABLES, PROXY_VARIABLES, reservedReason } from '../../src/profiles/run/reserved.ts';
import { awsCaVariables, CA_VARIABLES, clientEnvironment } from '../../src/cli/client-env.ts';
import { parseConfig } from '../../src/config/load.ts';

describe('reserved variables', () => {
  it('every variable keyway run sets, for an agent and with an aws_sigv4 grant, is refused in env', () => {
    const config = parseConfig({}, '/tmp/keyway-home');
    const set = {
      ...clientEnvironment(config, { id: 'a', key: 'k' }),
      ...awsCaVariables(config, [{ id: 'aws', type: 'aws_sigv4', domains: ['*.amazonaws.com'] }]),
    };
    for (const name of Object.keys(set)) expect(reservedReason(name, 'env'), name).toBeDefined();
    for (const name of CA_VARIABLES) expect(KEYWAY_CA_VARIABLES as readonly string[]).toContain(name);
    for (const name of Object.keys(set)) expect([...PROXY_VARIABLES, ...KEYWAY_CA_VARIABLES] as readonly string[]).toContain(name);
  });
});
