import { randomBytes } from 'node:crypto';
import { childProxyUrl, type DoorAccess, DoorRefused, mintThroughDoor, revokeThroughDoor } from './door-client.ts';
import type { CommandIO } from './io.ts';

// `keyway run --delegate`: the command runs as a fresh child of the agent run would use, minted
// through keyway's door with that agent's own key (door-client.ts) and revoked when the command
// exits. The command's proxy variables carry the child's key, never the parent's.

/** The child a delegated run minted: enough to revoke it, and to say until when it would live. */
export interface RunChild {
  readonly access: DoorAccess;
  readonly id: string;
  readonly expiresAt: string;
}

const URL_VARIABLES = ['HTTPS_PROXY', 'https_proxy', 'HTTP_PROXY', 'http_proxy'] as const;

/**
 * Mints the run's child and puts its proxy URL in `proxy` (the variables run sets) in place of the
 * parent's. undefined: refused, said on stderr, and the command is not to run.
 */
export async function mintRunChild(
  proxy: Record<string, string>,
  wanted: { grants: string[] | undefined; ttl: string | undefined },
  io: CommandIO,
): Promise<RunChild | undefined> {
  const access: DoorAccess = { proxyUrl: proxy['HTTPS_PROXY']!, caFile: proxy['NODE_EXTRA_CA_CERTS']! };
  try {
    const child = await mintThroughDoor(access, { name: `run-${randomBytes(4).toString('hex')}`, grants: wanted.grants, ttl: wanted.ttl });
    const url = childProxyUrl(access, child);
    for (const name of URL_VARIABLES) proxy[name] = url;
    return { access, id: child.id, expiresAt: child.expires_at };
  } catch (err) {
    if (!(err instanceof DoorRefused)) throw err;
    io.err(`keyway run: --delegate: ${err.message}; the command was not run`);
    return undefined;
  }
}

/** Revokes the run's child; a failure is said (the child lives until its TTL), never thrown over the command's status. */
export async function revokeRunChild(child: RunChild, io: CommandIO): Promise<void> {
  try {
    await revokeThroughDoor(child.access, child.id);
  } catch (err) {
    io.err(`keyway run: warning: the delegated agent ${child.id} could not be revoked (${(err as Error).message}): its key works until ${child.expiresAt}`);
  }
}
