import type { Server } from 'node:net';
import type { AuditEvent } from '../audit/index.ts';
import type { Config } from '../config/index.ts';
import { missingSecretVariables } from '../config/secret-variables.ts';
import type { RedirectedPort } from '../proxy/transparent/listener.ts';
import { runningProxyFiles } from '../paths.ts';
import { findRunningProxy } from '../running-proxy.ts';
import { type Door, openDoor } from './door-client.ts';
import { UnreachableNotice } from './unreachable-notice.ts';

/** What serves the contained command: a keyway of this run's own, joined to the running one where there is one. */
export interface ContainedServer {
  acceptRedirected(handle: Server, agent: string | undefined, ports: RedirectedPort): void;
  auditContainStart(agent: string | undefined, sockets: readonly string[]): Promise<void>;
  stop(): Promise<void>;
}

export interface ContainedServerOptions {
  /** The config `keyway run --contain` loaded and validated to plan the sandbox: the keyway runs on this one. */
  config: Config;
  configFile: string | undefined;
  /** keyway's own environment (the master key and the config's references). */
  keywayEnv: NodeJS.ProcessEnv;
  /** A line on the run's stderr: a host the command could not be given (contain/unreachable-notice.ts). */
  err(line: string): void;
}

/**
 * A keyway of this run's own serves the command's connections directly (a relay through the
 * running keyway cost 19% of s1's latency). Where a keyway runs for the home, its contain door
 * (contain/door-client.ts) makes this one the same agent as there: the config's env: secrets
 * (and the master key) come from it, so the agent's shell needs none, every rate is taken from its
 * buckets and every refusal counted by its refusal budget (quotas are the store's, shared already).
 * Where none runs, this keyway reads the secrets from this process's environment, as `keyway fetch`
 * does. The proxy's modules load here, not when contain/run.ts does: the namespaces' chain starts
 * first and boots while they load.
 */
export async function containedServer(options: ContainedServerOptions): Promise<ContainedServer> {
  const record = findRunningProxy(runningProxyFiles(options.config.home).runningProxy);
  const door = record?.door === undefined ? undefined : await openDoor(record.door);
  let env = options.keywayEnv;
  let joined: Awaited<ReturnType<Door['join']>> | undefined;
  if (door !== undefined) {
    const missing = [...missingSecretVariables(options.config, env), ...((env['KEYWAY_MASTER_KEY'] ?? '').trim() === '' ? ['KEYWAY_MASTER_KEY'] : [])];
    env = { ...env, ...(await door.secrets(missing)) };
    joined = await door.join();
  }
  const unreachable = new UnreachableNotice(options.err);
  const told = (event: AuditEvent) => {
    joined?.tally(event);
    unreachable.add(event);
  };
  try {
    const [{ startKeyway }, { pino }] = await Promise.all([import('../app/index.ts'), import('pino')]);
    const own = await startKeyway({
      home: options.config.home,
      configFile: options.configFile,
      config: options.config,
      listen: { host: '127.0.0.1', port: 0 },
      adminListen: { host: '127.0.0.1', port: 0 },
      env,
      logger: pino({ level: 'error' }, pino.destination(2)),
      announce: 'contain',
      rates: joined?.counter,
      refusals: joined?.refusals,
      tallies: told,
    });
    return {
      acceptRedirected: (handle, agent, ports) => own.acceptRedirected(handle, agent, ports),
      auditContainStart: (agent, sockets) => (door === undefined ? own.auditContainStart(agent, sockets) : door.auditContainStart(agent, sockets)),
      stop: async () => {
        await own.stop({ drainMs: 2_000 });
        joined?.close();
      },
    };
  } catch (err) {
    joined?.close();
    throw err;
  }
}
