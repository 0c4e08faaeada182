import { hash } from 'node:crypto';
import { compileNameGlob } from './tool-names.ts';

// A rule's `args: {repo: "acme/*", state: open, draft: false}`: each named argument of a tools/call
// must be there and match. A string matches as a glob (`*`: any run of characters, case as
// written); a number or boolean by equality. An argument that is an object or an array never
// matches a glob: a rule that names it cannot be met by a value it did not foresee.

export type ArgMatcher = string | number | boolean;

export interface ArgsCondition {
  readonly label: string;
  /** undefined when every named argument matches, else the first that does not, said plainly. */
  mismatch(args: Readonly<Record<string, unknown>>): string | undefined;
}

export function compileArgs(spec: Readonly<Record<string, ArgMatcher>>): ArgsCondition {
  const checks = Object.entries(spec).map(([name, want]) => {
    const glob = typeof want === 'string' ? compileNameGlob(want) : undefined;
    return (args: Readonly<Record<string, unknown>>): string | undefined => {
      if (!Object.hasOwn(args, name)) return `argument ${name} is missing`;
      const got = args[name];
      if (glob) return typeof got === 'string' && glob.matches(got) ? undefined : `argument ${name} does not match ${JSON.stringify(want)}`;
      return got === want ? undefined : `argument ${name} is not ${JSON.stringify(want)}`;
    };
  });
  return {
    label: `args(${Object.entries(spec)
      .map(([k, v]) => `${k}=${String(v)}`)
      .join(',')})`,
    mismatch: (args) => {
      for (const check of checks) {
        const why = check(args);
        if (why) return why;
      }
      return undefined;
    },
  };
}

/** SHA-256 (hex) of the arguments as canonical JSON (keys sorted at every level): the audit's args_sha256. */
export function argsSha256(args: unknown): string {
  return hash('sha256', canonical(args), 'hex');
}

function canonical(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value) ?? 'null';
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`;
  const keys = Object.keys(value).sort();
  return `{${keys.map((k) => `${JSON.stringify(k)}:${canonical((value as Record<string, unknown>)[k])}`).join(',')}}`;
}
