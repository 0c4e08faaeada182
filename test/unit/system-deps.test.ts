// The README's test command sets up the machine it runs on: what is missing becomes an apt-get
// install (as root on Debian) or one line saying which to run. The decision is tested with the
// machine's answers given; that CI and `npm test` share it is tested by reading the files.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
// @ts-expect-error: a plain .mjs script (it runs before the pinned Node is installed), no type declarations
import { planSystemDeps, REQUIREMENTS } from '../../scripts/system-deps.mjs';
import { REPO } from '../helpers/deploy-files.ts';

interface Requirement {
  name: string;
  packages: string[];
}
interface Plan {
  action: 'none' | 'install' | 'tell';
  missing: string[];
  packages: string[];
  line?: string;
}
const plan = planSystemDeps as (present: Record<string, boolean>, who: { root: boolean; apt: boolean }) => Plan;
const requirements = REQUIREMENTS as Requirement[];

const allPresent = () => Object.fromEntries(requirements.map((r) => [r.name, true]));
const without = (...names: string[]) => ({ ...allPresent(), ...Object.fromEntries(names.map((n) => [n, false])) });

describe('what npm test does about missing system programs', () => {
  it('asks for the same packages .ci/run used to install, each under the check that needs it', () => {
    expect(requirements.flatMap((r) => r.packages).sort()).toEqual(
      [
        'awscli',
        'bubblewrap',
        'chromium',
        'curl',
        'dbus',
        'git',
        'gnome-keyring',
        'golang-go',
        'iproute2',
        'libsecret-tools',
        // The release's arm64 executable, started under qemu-user by .ci/run (issue 91).
        'libatomic1-arm64-cross',
        'libc6-arm64-cross',
        'libstdc++6-arm64-cross',
        'nftables',
        'openssl',
        'postgresql',
        'python3-boto3',
        'python3-h2',
        'python3-httpx',
        'python3-requests',
        'python3-requests-oauthlib',
        'qemu-user-static',
        'skopeo',
        'squid-openssl',
        'systemd',
        'umoci',
        'util-linux',
      ].sort(),
    );
  });

  it('does nothing when everything is there, whoever runs it', () => {
    for (const who of [
      { root: true, apt: true },
      { root: false, apt: false },
    ])
      expect(plan(allPresent(), who)).toEqual({ action: 'none', missing: [], packages: [] });
  });

  it('installs exactly what is missing as root with apt-get', () => {
    expect(plan(without('chromium', 'Python httpx with h2'), { root: true, apt: true })).toEqual({
      action: 'install',
      missing: ['chromium', 'Python httpx with h2'],
      packages: ['chromium', 'python3-httpx', 'python3-h2'],
    });
  });

  it('counts a check the probes did not answer as missing', () => {
    expect(plan({}, { root: true, apt: true }).packages).toHaveLength(requirements.flatMap((r) => r.packages).length);
  });

  it('tells anyone else, in one line, the apt-get install to run', () => {
    const told = plan(without('PostgreSQL (initdb)', 'squid with ssl-bump'), { root: false, apt: true });
    expect(told.action).toBe('tell');
    expect(told.line).toContain('`sudo apt-get install -y postgresql squid-openssl`');
    expect(told.line).toContain('PostgreSQL (initdb), squid with ssl-bump');
    expect(told.line).not.toContain('\n');
  });

  it('without apt-get, names the Debian command and says to use the local package manager', () => {
    const told = plan(without('curl'), { root: true, apt: false });
    expect(told.action).toBe('tell');
    expect(told.line).toContain('`apt-get install -y curl`');
    expect(told.line).toMatch(/elsewhere the same from your package manager/);
  });
});

describe('one set-up for CI and the README', () => {
  const pkg = JSON.parse(readFileSync(`${REPO}package.json`, 'utf8')) as { scripts: Record<string, string> };
  const ci = readFileSync(`${REPO}.ci/run`, 'utf8');
  const commands = ci.split('\n').filter((l) => l.trim() !== '' && !l.trim().startsWith('#'));

  it('runs the set-up before the tests in `npm test` (pretest)', () => {
    expect(pkg.scripts['pretest']).toMatch(/(^|&& )node scripts\/system-deps\.mjs &&/);
    expect(pkg.scripts['pretest']!.indexOf('system-deps')).toBeLessThan(pkg.scripts['pretest']!.indexOf('scripts/build.mjs'));
  });

  it("has .ci/run reach it through the README's own test command, with no package list of its own", () => {
    expect(commands).toContain('npm test');
    expect(commands.join('\n')).not.toMatch(/apt-get|need_apt|policy-rc\.d|createcluster/);
  });
});
