import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { chownTree, squidBinary, stopChild, waitForPort } from '../../bench/squid-child.ts';
import { freePort } from './ports.ts';

// squid (Debian's squid-openssl, which .ci/run installs: scripts/system-deps.mjs) as a company's egress proxy: a plain
// forward proxy that takes CONNECT to any port, resolves names from its own hosts file (test names
// to 127.0.0.1 only), optionally asks for Basic credentials checked by squid's own NCSA helper, and
// logs each request, so a test can see that keyway's traffic went through it.

export interface CorporateProxy {
  url: string;
  port: number;
  /** squid's access log lines so far (method, URL as CONNECT host:port, status). */
  log(): string[];
  stop(): Promise<void>;
}

export async function startCorporateProxy(options: { hosts: readonly string[]; credentials?: { user: string; password: string } }): Promise<CorporateProxy> {
  const dir = mkdtempSync(join(tmpdir(), 'keyway-corp-proxy-'));
  const port = await freePort();
  const at = (name: string) => join(dir, name);
  writeFileSync(at('hosts'), `${options.hosts.map((h) => `127.0.0.1 ${h}`).join('\n')}\n`);
  const auth: string[] = [];
  if (options.credentials) {
    const hash = execFileSync('openssl', ['passwd', '-1', options.credentials.password], { encoding: 'utf8' }).trim();
    writeFileSync(at('passwd'), `${options.credentials.user}:${hash}\n`);
    auth.push(
      `auth_param basic program /usr/lib/squid/basic_ncsa_auth ${at('passwd')}`,
      'auth_param basic realm corp',
      'acl staff proxy_auth REQUIRED',
      'http_access deny !staff',
    );
  }
  writeFileSync(
    at('squid.conf'),
    [
      `http_port 127.0.0.1:${port}`,
      ...auth,
      'http_access allow localhost',
      'http_access deny all',
      'cache deny all',
      'cache_mem 0 MB',
      `hosts_file ${at('hosts')}`,
      'dns_nameservers 127.0.0.1',
      'dns_timeout 2 seconds',
      'pinger_enable off',
      'logformat corp %rm %ru %>Hs %un',
      `access_log stdio:${at('access.log')} corp`,
      'cache_store_log none',
      `cache_log ${at('cache.log')}`,
      `pid_filename ${at('squid.pid')}`,
      `coredump_dir ${dir}`,
      'netdb_filename none',
      'shutdown_lifetime 0 seconds',
      '',
    ].join('\n'),
  );
  if (userInfo().uid === 0) chownTree(dir, 'proxy');
  const child = spawn(squidBinary(), ['-N', '-f', at('squid.conf')], { stdio: ['ignore', 'pipe', 'pipe'], env: { PATH: '/usr/sbin:/usr/bin:/bin' } });
  const output: string[] = [];
  child.stdout?.on('data', (c: Buffer) => output.push(c.toString()));
  child.stderr?.on('data', (c: Buffer) => output.push(c.toString()));
  await waitForPort(child, port, () => `${output.join('')}\n${readOr(at('cache.log'))}`);
  let stopped = false;
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    log: () => readOr(at('access.log')).split('\n').filter(Boolean),
    stop: async () => {
      if (stopped) return;
      stopped = true;
      await stopChild(child);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

function readOr(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return '';
  }
}
