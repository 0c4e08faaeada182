// The node a user's own programs run (PATH without npm's node_modules/.bin): the client check above
// runs keyway's own Node, which honours the proxy; an older node on PATH would not.

import { findUserNode, FIRST_PROXY_NODE, nodeBypassWarning } from '../../user-node.ts';
import type { CheckResult, Context } from './context.ts';

export const USER_NODE_CHECK = 'node on your PATH';

export async function checkUserNode(ctx: Context): Promise<CheckResult> {
  const node = await findUserNode(ctx.io.env);
  if (node === undefined) return { check: USER_NODE_CHECK, status: 'skip', detail: 'no node on PATH (outside node_modules/.bin)' };
  const warning = nodeBypassWarning(node);
  if (warning === undefined) {
    return { check: USER_NODE_CHECK, status: 'ok', detail: `${node.path} is Node ${node.version}: it honours HTTPS_PROXY (with NODE_USE_ENV_PROXY=1)` };
  }
  const [detail, fix] = warning.split(' Fix: ');
  return { check: USER_NODE_CHECK, status: 'warn', detail: detail ?? warning, fix: fix ?? `use Node ${FIRST_PROXY_NODE} or later` };
}
