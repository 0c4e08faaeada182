// One folder per test run for the runnable copy of keyway (helpers/runnable-copy.ts): made here,
// filled by the first test that needs it, removed when the run ends.
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import type { TestProject } from 'vitest/node';

declare module 'vitest' {
  export interface ProvidedContext {
    runnableKeywayParent: string;
  }
}

export default function setup(project: TestProject): () => void {
  // In /var/lib, not /tmp: a folder every user may write cannot hold code another uid runs.
  const parent = mkdtempSync('/var/lib/keyway-runnable-');
  chmodSync(parent, 0o755);
  project.provide('runnableKeywayParent', parent);
  return () => rmSync(parent, { recursive: true, force: true });
}
