// The single executable's entry (scripts/release/sea-bundle.mjs bundles from here). One file is every
// program keyway starts: with no role it is the `keyway` command line (main.ts); a child started by
// process/own-program.ts's ownChildCommand has ROLE_FLAG and its role as its first two arguments,
// which are removed here so that the role's module reads its own arguments where it does under dist/.
// Anything else after ROLE_FLAG is refused: the flag names one of keyway's modules, never a path.
import { OWN_ROLES, type OwnRole, ROLE_FLAG } from '../process/own-program.ts';

const asked = process.argv[2] === ROLE_FLAG ? process.argv[3] : undefined;
if (asked !== undefined || process.argv[2] === ROLE_FLAG) {
  if (!OWN_ROLES.includes(asked as OwnRole)) {
    process.stderr.write(`keyway: ${ROLE_FLAG} names one of keyway's own child programs (${OWN_ROLES.join(', ')}), not ${JSON.stringify(asked ?? '')}\n`);
    process.exit(2);
  }
  process.argv.splice(2, 2);
}
const role = asked as OwnRole | undefined;
// Each import is its own case (not a computed path): the bundler must see every module it includes.
if (role === 'contain/inside') await import('../contain/inside.ts');
else if (role === 'config/load-child') await import('../config/load-child.ts');
else if (role === 'tls/bundle-child') await import('../tls/bundle-child.ts');
else if (role === 'app/workers/worker-main') await import('../app/workers/worker-main.ts');
else await import('./main.ts');
