import { describe, expect, it } from 'vitest';
import { findProfile, modelGrantCover, noModelGrantWarning } from '../../src/profiles/run/index.ts';

// Whether a grant covers a profile's model host: doctor --profile's check and run --profile's warning.

const NO_HOME = '/nonexistent/keyway-home';
const gemini = findProfile(NO_HOME, 'gemini-cli');

describe('modelGrantCover', () => {
  it('a grant on one model host covers the profile', () => {
    const cover = modelGrantCover(gemini, [{ id: 'g', type: 'api_key', domains: ['generativelanguage.googleapis.com'] }], undefined);
    expect(cover).toMatchObject({ kind: 'covered', by: [{ host: 'generativelanguage.googleapis.com' }] });
  });

  it('a wildcard grant covers it; a grant on its login host alone does not', () => {
    expect(modelGrantCover(gemini, [{ id: 'w', type: 'bearer', domains: ['*.googleapis.com'] }], undefined).kind).toBe('covered');
    const login = [{ id: 'l', type: 'login_capture', domains: ['www.googleapis.com'], captureHosts: ['oauth2.googleapis.com'] }];
    expect(modelGrantCover(gemini, login, undefined).kind).toBe('uncovered');
  });

  it('none: the fix is keyway connect NAME, with --agent ID when one was named', () => {
    expect(modelGrantCover(gemini, [], undefined)).toEqual({
      kind: 'uncovered',
      hosts: ['generativelanguage.googleapis.com', 'cloudcode-pa.googleapis.com'],
      fix: 'keyway connect gemini-cli',
    });
    expect(noModelGrantWarning(gemini, [], 'dev')).toBe(
      'warning: no grant agent "dev" may use covers generativelanguage.googleapis.com or cloudcode-pa.googleapis.com, so gemini-cli\'s model calls would go without a key (it may ask you to log in inside): keyway connect gemini-cli --agent dev',
    );
    expect(noModelGrantWarning(gemini, [{ id: 'g', type: 'api_key', domains: ['cloudcode-pa.googleapis.com'] }], 'dev')).toBeUndefined();
  });
});
