// A preload (`node --import`) that kills the process it runs in with SIGKILL at one exact file
// operation, for crash tests of the real CLI: KEYWAY_TEST_KILL_AT=OP:WHEN:N:REGEX, OP one of
// fs/promises' rename, link, unlink, writeFile; WHEN `before` (the call never runs) or `after` (it
// has run); N which matching call (1 the first); REGEX matched against the path the call makes or
// removes (rename's and link's destination, else its first argument). The product has no test
// hook: the kill lands where a real `kill -9` at that instant would.
import fsp from 'node:fs/promises';
import { syncBuiltinESMExports } from 'node:module';

const spec = process.env.KEYWAY_TEST_KILL_AT;
if (spec !== undefined && spec !== '') {
  const [op, when, nth, ...rest] = spec.split(':');
  const pattern = new RegExp(rest.join(':'));
  const original = fsp[op];
  if (typeof original !== 'function' || (when !== 'before' && when !== 'after')) throw new Error(`KEYWAY_TEST_KILL_AT: cannot read ${spec}`);
  const target = (args) => String(op === 'rename' || op === 'link' ? args[1] : args[0]);
  let seen = 0;
  fsp[op] = async (...args) => {
    const hit = pattern.test(target(args)) && ++seen === Number(nth);
    if (hit && when === 'before') process.kill(process.pid, 'SIGKILL');
    const result = await original.apply(fsp, args);
    if (hit) process.kill(process.pid, 'SIGKILL');
    return result;
  };
  syncBuiltinESMExports();
}
