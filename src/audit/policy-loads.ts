import type { AuditLine } from './event.ts';

// `keyway audit verify`'s check of the policy hash (issue 88): every line's `policy` hash must be one
// that a `policy.load` line earlier in the log loaded. Lines before the first `policy.load` line
// pass: an older keyway wrote no hash there, a keyway with YAML rules only writes no load, or
// rotation pruned the load that preceded them.

export class PolicyLoads {
  readonly #loaded = new Set<string>();

  /** Reads one line; returns why its hash is wrong, or undefined. */
  check(line: AuditLine): string | undefined {
    const hash = line.policy;
    // Not a hash: an older keyway's `policy: "warn"` (now policy_mode), whatever comes after it.
    if (typeof hash !== 'string' || !hash.startsWith('sha256:')) return undefined;
    if (line.decision === 'admin' && line.action === 'policy.load') {
      this.#loaded.add(hash);
      return undefined;
    }
    if (this.#loaded.size === 0 || this.#loaded.has(hash)) return undefined;
    return `policy ${hash} was never loaded: no earlier policy.load line names it`;
  }
}
