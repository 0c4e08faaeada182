// A profile (profiles/run/schema.ts) admits what it understands and refuses the rest, each with
// one line naming the file and the key. Every refusal is tried here, with the cases nobody listed.
import { describe, expect, it } from 'vitest';
import { BUILTIN_PROFILES, checkProfileName, parseProfile, profileSchema } from '../../src/profiles/run/index.ts';
import { statePathProblem } from '../../src/profiles/run/state-path.ts';
import { KeywayError } from '../../src/errors/index.ts';

const FILE = '/home/u/.keyway/profiles/mine.yaml';

/** The error a profile's YAML gets, or undefined when it parses. */
function problem(yaml: string): string | undefined {
  try {
    parseProfile(yaml, FILE);
    return undefined;
  } catch (err) {
    expect(err).toBeInstanceOf(KeywayError);
    const message = (err as KeywayError).message;
    expect(message.startsWith(`${FILE}`), message).toBe(true);
    expect(message).not.toContain('\n');
    return message;
  }
}

const base = 'command: agent\n';

describe('a profile file', () => {
  it('parses the documented shape, with every list and map optional but command', () => {
    const profile = parseProfile(
      `description: an agent
command: agent
hosts:
  - { host: api.example.com, why: "the model API", role: model }
  - { host: auth.example.com:8443, why: "its login", role: login }
state:
  - { path: ~/.agent, kind: folder }
  - { path: ~/.agent.json, kind: file }
  - { path: ~/.config/agent, kind: folder }
  - { path: ~/.local/share/agent, kind: folder }
keys: [{ env: AGENT_API_KEY, host: api.example.com }]
env: { AGENT_TELEMETRY: "0", AGENT_HOME: ~/.agent }
pass_env: [AGENT_PROFILE, PATH]
ca: [NODE_EXTRA_CA_CERTS, AGENT_CA_FILE]
ports: [8443]
sockets: [~/.agent/agent.sock, /run/agent.sock]
`,
      FILE,
    );
    expect(profile.hosts[1]).toEqual({ host: 'auth.example.com:8443', why: 'its login', role: 'login' });
    expect(parseProfile(base, FILE)).toEqual({
      description: '',
      command: 'agent',
      hosts: [],
      state: [],
      keys: [],
      env: {},
      pass_env: [],
      ca: [],
      ports: [],
      sockets: [],
    });
  });

  it('refuses an unknown key by name, at the top and inside, with the nearest known one', () => {
    expect(problem(`${base}pas_env: [X]`)).toBe(`${FILE}: pas_env: unknown key; did you mean pass_env?`);
    expect(problem(`${base}hosts: [{ host: a.example.com, why: x, rol: model }]`)).toContain('hosts.0.rol: unknown key; did you mean role?');
    expect(problem(`${base}state: [{ path: ~/.a, kind: folder, mode: "0777" }]`)).toContain('state.0.mode: unknown key');
    expect(problem(`${base}keys: [{ env: A_KEY, host: a.example.com, value: sk-1 }]`)).toContain('keys.0.value: unknown key');
  });

  it('needs a command: a program name or an absolute path, nothing a shell would read', () => {
    expect(problem('description: x')).toBe(`${FILE}: command: is required`);
    for (const command of ['rm -rf /', '../bin/agent', 'bin/agent', '$(id)', '-x', '']) {
      expect(problem(`command: ${JSON.stringify(command)}`), command).toContain('command: expected a program name');
    }
    expect(parseProfile('command: /opt/agent/bin/agent', FILE).command).toBe('/opt/agent/bin/agent');
  });

  it('refuses what is not a map of keys, and YAML that does not parse, naming the file and line', () => {
    expect(problem('- command: agent')).toBe(`${FILE}: expected a map of keys (command:, hosts:, …)`);
    expect(problem('agent')).toContain('expected a map of keys');
    expect(problem('command: [agent')).toMatch(new RegExp(`^${FILE} at line \\d+: not valid YAML`));
    expect(problem('command: a\ncommand: b')).toContain('not valid YAML');
  });

  it("never quotes a value in its errors (a profile's env may be pasted with a secret)", () => {
    const message = problem(`${base}env: { HTTPS_PROXY: "http://user:sk-canary-secret@proxy" }`) ?? '';
    expect(message).toContain('env.HTTPS_PROXY');
    expect(message).not.toContain('sk-canary-secret');
  });
});

describe("a profile's state", () => {
  it('admits a hidden name in the home, or a folder of its own in the shared state folders', () => {
    for (const path of ['~/.agent', '~/.agent.json', '~/.agent/sub/x', '~/.config/agent', '~/.cache/agent', '~/.local/share/agent', '~/.local/state/agent']) {
      expect(statePathProblem(path), path).toBeUndefined();
    }
  });

  it('refuses the home itself, anything outside it, and . or .. parts', () => {
    expect(statePathProblem('~')).toContain('the home folder itself');
    expect(statePathProblem('~/')).toContain('the home folder itself');
    for (const path of ['~/../etc', '~/.agent/../.ssh', '~/./.agent', '~/.agent//x', '~/.agent/'])
      expect(statePathProblem(path), path).toContain('plain names');
    for (const path of ['/etc/agent', '.agent', '~root/.agent', '$HOME/.agent', '~agent']) expect(statePathProblem(path), path).toContain('a path in the home');
    expect(statePathProblem('~/.a b')).toContain('plain names');
  });

  it("refuses the user's credential paths, inside and holding them", () => {
    expect(statePathProblem('~/.ssh')).toContain('~/.ssh, a credential path');
    expect(statePathProblem('~/.ssh/x')).toContain('inside ~/.ssh');
    expect(statePathProblem('~/.aws/agent')).toContain('inside ~/.aws');
    expect(statePathProblem('~/.docker')).toContain('holds ~/.docker/config.json');
    expect(statePathProblem('~/.config/gh')).toContain('~/.config/gh');
    expect(statePathProblem('~/.local/share/keyrings/x')).toContain('~/.local/share/keyrings');
    expect(statePathProblem('~/.npmrc')).toContain('~/.npmrc');
  });

  it("refuses a shared folder itself, a name that is not hidden, and ~/.local's other folders", () => {
    for (const path of ['~/.config', '~/.cache', '~/.local', '~/.local/share', '~/.local/state'])
      expect(statePathProblem(path), path).toContain("many programs' state");
    for (const path of ['~/agent', '~/Documents/agent', '~/bin', '~/.local/lib/agent'])
      expect(statePathProblem(path), path).toContain('expected a hidden name');
  });

  it("refuses what a shell or git reads when it starts, what is on PATH, and keyway's home", () => {
    for (const path of ['~/.bashrc', '~/.profile', '~/.zshenv', '~/.gitconfig', '~/.config/git', '~/.config/git/config', '~/.config/fish/config.fish']) {
      expect(statePathProblem(path), path).toContain('would run as you later');
    }
    expect(statePathProblem('~/.local/bin')).toContain('~/.local/bin');
    expect(statePathProblem('~/.local/bin/agent')).toContain('~/.local/bin');
    expect(statePathProblem('~/.keyway')).toBe("keyway's own home");
    expect(statePathProblem('~/.keyway/profiles')).toBe("keyway's own home");
  });

  it('says which entry is refused, and refuses a path named twice', () => {
    expect(problem(`${base}state: [{ path: ~/.a, kind: folder }, { path: ~/.ssh, kind: folder }]`)).toContain('state.1.path:');
    expect(problem(`${base}state: [{ path: ~/.a, kind: folder }, { path: ~/.a, kind: file }]`)).toContain('state.1.path: ~/.a is named twice');
    expect(problem(`${base}state: [{ path: ~/.a, kind: link }]`)).toContain('state.0.kind: expected one of folder, file');
    expect(problem(`${base}state: [{ path: ~/.a }]`)).toContain('state.0.kind: expected one of folder, file');
  });
});

describe("a profile's variables", () => {
  it('env: refuses the proxy, CA and keyway variables, and those that change trust or load code', () => {
    for (const name of ['HTTPS_PROXY', 'https_proxy', 'ALL_PROXY', 'NO_PROXY', 'NODE_USE_ENV_PROXY', 'FTP_PROXY', 'GIT_HTTP_PROXY_AUTHMETHOD']) {
      expect(problem(`${base}env: { ${name}: x }`), name).toContain(`env.${name}: a proxy variable`);
    }
    for (const name of ['NODE_EXTRA_CA_CERTS', 'SSL_CERT_FILE', 'REQUESTS_CA_BUNDLE', 'CURL_CA_BUNDLE', 'GIT_SSL_CAINFO', 'AWS_CA_BUNDLE']) {
      expect(problem(`${base}env: { ${name}: /tmp/evil.pem }`), name).toContain(`env.${name}: a CA variable`);
    }
    expect(problem(`${base}env: { KEYWAY_AGENT_KEY: x }`)).toContain("env.KEYWAY_AGENT_KEY: keyway's own variable");
    for (const name of [
      'NODE_OPTIONS',
      'NODE_TLS_REJECT_UNAUTHORIZED',
      'SSL_CERT_DIR',
      'GIT_SSL_NO_VERIFY',
      'PYTHONHTTPSVERIFY',
      'LD_PRELOAD',
      'LD_AUDIT',
      'LD_LIBRARY_PATH',
      'DYLD_INSERT_LIBRARIES',
      'PATH',
      'HOME',
    ]) {
      expect(problem(`${base}env: { ${name}: x }`), name).toContain('changes what the agent trusts');
    }
    expect(problem(`${base}env: { "1X": x }`)).toContain('not a variable name');
    expect(problem(`${base}env: { "A-B": x }`)).toContain('not a variable name');
    expect(problem(`${base}env: { A: 1 }`)).toContain('env.A: expected a string');
  });

  it("env: refuses fixing a key's variable or a CA variable the profile names", () => {
    expect(problem(`${base}keys: [{ env: AGENT_KEY, host: a.example.com }]\nenv: { AGENT_KEY: sk-real }`)).toContain(
      "env.AGENT_KEY: AGENT_KEY is a key's variable",
    );
    expect(problem(`${base}ca: [AGENT_CA]\nenv: { AGENT_CA: /tmp/evil.pem }`)).toContain('env.AGENT_CA: AGENT_CA is a CA variable');
  });

  it("pass_env: refuses keyway's, the proxy and the CA variables and the trust or code ones; PATH and HOME pass anyway", () => {
    expect(problem(`${base}pass_env: [KEYWAY_ADMIN_TOKEN]`)).toContain("pass_env.0: KEYWAY_ADMIN_TOKEN: keyway's own variable");
    expect(problem(`${base}pass_env: [HTTPS_PROXY]`)).toContain('a proxy variable');
    expect(problem(`${base}pass_env: [SSL_CERT_FILE]`)).toContain('a CA variable');
    expect(problem(`${base}pass_env: [LD_PRELOAD]`)).toContain('changes what the agent trusts');
    expect(problem(`${base}pass_env: [NODE_OPTIONS]`)).toContain('changes what the agent trusts');
    expect(problem(`${base}pass_env: [PATH, HOME, AGENT_PROFILE]`)).toBeUndefined();
  });

  it('keys: a variable keyway may set, and the one host it is for', () => {
    expect(problem(`${base}keys: [{ env: KEYWAY_MASTER_KEY, host: a.example.com }]`)).toContain("keyway's own variable");
    expect(problem(`${base}keys: [{ env: HTTPS_PROXY, host: a.example.com }]`)).toContain('a proxy variable');
    expect(problem(`${base}keys: [{ env: NODE_EXTRA_CA_CERTS, host: a.example.com }]`)).toContain('a CA variable');
    expect(problem(`${base}keys: [{ env: A_KEY, host: "*.example.com" }]`)).toContain('a wildcard');
    expect(problem(`${base}keys: [{ env: A_KEY }]`)).toContain('keys.0.host: is required');
    expect(problem(`${base}keys: [A_KEY]`)).toContain('keys.0: expected a map');
  });

  it("ca: names CA variables (keyway's too), never keyway's own, a proxy or a trust switch", () => {
    expect(problem(`${base}ca: [NODE_EXTRA_CA_CERTS, SSL_CERT_FILE, AGENT_CA_FILE]`)).toBeUndefined();
    expect(problem(`${base}ca: [KEYWAY_CA]`)).toContain("keyway's own variable");
    expect(problem(`${base}ca: [HTTPS_PROXY]`)).toContain('a proxy variable');
    expect(problem(`${base}ca: [NODE_TLS_REJECT_UNAUTHORIZED]`)).toContain('changes what the agent trusts');
  });
});

describe("a profile's hosts, ports, sockets", () => {
  it('hosts: host names (with a port), why, and a known role', () => {
    expect(problem(`${base}hosts: [{ host: "*.example.com", why: x }]`)).toContain('hosts.0.host: "*.example.com" is a wildcard');
    expect(problem(`${base}hosts: [{ host: 10.0.0.1, why: x }]`)).toContain('is an address');
    expect(problem(`${base}hosts: [{ host: "[::1]:443", why: x }]`)).toContain('is an address');
    expect(problem(`${base}hosts: [{ host: "https://a.example.com/", why: x }]`)).toContain('hosts.0.host:');
    expect(problem(`${base}hosts: [{ host: "a.example.com:0", why: x }]`)).toContain('port');
    expect(problem(`${base}hosts: [{ host: a.example.com }]`)).toContain('hosts.0.why: is required');
    expect(problem(`${base}hosts: [{ host: a.example.com, why: "" }]`)).toContain('say why');
    expect(problem(`${base}hosts: [{ host: a.example.com, why: x, role: telemetry }]`)).toContain('expected one of model, login, other');
  });

  it('ports: whole numbers 1-65535', () => {
    for (const port of ['0', '65536', '1.5', '"443"', '-1']) expect(problem(`${base}ports: [${port}]`), port).toContain('ports.0');
  });

  it('sockets: absolute or ~/ paths without . or .. parts', () => {
    expect(problem(`${base}sockets: [agent.sock]`)).toContain('expected an absolute path or ~/PATH');
    expect(problem(`${base}sockets: [~/../run/docker.sock]`)).toContain('without . or ..');
    expect(problem(`${base}sockets: [/run/./docker.sock]`)).toContain('without . or ..');
  });
});

describe('names and built-ins', () => {
  it('a name is a-z, 0-9 and -, starting with a letter or digit', () => {
    for (const name of ['claude-code', 'codex', 'a', '9x']) expect(() => checkProfileName(name)).not.toThrow();
    for (const name of ['', 'Claude', '-x', 'a_b', 'a.b', '../x', 'a/b', 'x'.repeat(64)])
      expect(() => checkProfileName(name), name).toThrow(/a profile's name/);
  });

  it('the built-ins are claude-code, codex and gemini-cli, and each parses by the same schema', () => {
    expect(Object.keys(BUILTIN_PROFILES).sort()).toEqual(['claude-code', 'codex', 'gemini-cli']);
    for (const [name, raw] of Object.entries(BUILTIN_PROFILES)) {
      const parsed = profileSchema.safeParse(raw);
      expect(parsed.success, `${name}: ${JSON.stringify(parsed.error?.issues)}`).toBe(true);
      expect(
        parsed.data?.hosts.some((h) => h.role === 'model'),
        name,
      ).toBe(true);
    }
  });
});
