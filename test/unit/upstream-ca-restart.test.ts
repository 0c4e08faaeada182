// proxy.upstream_ca needs a restart (issue 48): after a reload that changed it, a 502 for an
// untrusted upstream certificate says "restart keyway", not "add that CA", which is already there.
import { describe, expect, it } from 'vitest';
import { upstreamCaPendingRestart, upstreamError } from '../../src/egress/upstream-errors.ts';

const untrusted = Object.assign(new Error('unable to verify the first certificate'), { code: 'UNABLE_TO_VERIFY_LEAF_SIGNATURE' });

describe('the 502 hint for an upstream certificate keyway does not trust', () => {
  it('says to add the CA while proxy.upstream_ca is what keyway started with', () => {
    expect(upstreamCaPendingRestart(['/home/k/ca.pem'], ['ca.pem'], '/home/k')).toBe(false);
    expect(upstreamError(untrusted, 'api.local.test:19443').hint).toMatch(/add that CA's PEM file to proxy\.upstream_ca/);
  });

  it('says to restart once proxy.upstream_ca changed since start', () => {
    expect(upstreamCaPendingRestart([], ['ca.pem'], '/home/k')).toBe(true);
    expect(upstreamCaPendingRestart(['/home/k/old.pem'], ['new.pem'], '/home/k')).toBe(true);
    expect(upstreamError(untrusted, 'api.local.test:19443', 'api', false, true).hint).toBe(
      'proxy.upstream_ca changed since keyway started: restart keyway to apply proxy.upstream_ca',
    );
  });
});
