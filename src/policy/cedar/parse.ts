import type { CedarEngine } from './engine.ts';

// One Cedar file split into its policies, each with its id, where it starts, and its JSON form
// (what the hash and the slices read). A file that does not parse is refused as a whole with
// FILE:LINE:COLUMN of the first error.

export interface ParsedPolicy {
  /** The `@id("…")` annotation, else FILE:LINE. */
  readonly id: string;
  /** Whether the id is the policy's own `@id` (not where it sits). */
  readonly named: boolean;
  /** FILE:LINE:COLUMN where the policy starts. */
  readonly origin: string;
  readonly text: string;
  readonly effect: 'permit' | 'forbid';
  /** The engine's JSON form: scope, conditions, annotations. */
  readonly json: PolicyJsonShape;
}

/** The parts of Cedar's policy JSON keyway reads (scope constraints); the rest is kept as is. */
export interface PolicyJsonShape {
  readonly effect: 'permit' | 'forbid';
  readonly principal: ScopeConstraint;
  readonly resource: ScopeConstraint;
  readonly annotations?: Record<string, string | null>;
}

export type ScopeConstraint =
  | { op: 'All' }
  | { op: '=='; entity?: { type: string; id: string } }
  | { op: 'in'; entity?: { type: string; id: string } }
  | { op: 'is'; entity_type: string; in?: { entity?: { type: string; id: string } } };

export class PolicyParseError extends Error {}

/** The longest `@id` keyway takes. */
const MAX_ID = 128;

export function parsePolicyFile(engine: CedarEngine, file: string, text: string): ParsedPolicy[] {
  const parts = engine.policySetTextToParts(text);
  if (parts.type === 'failure') throw new PolicyParseError(describe(file, text, parts.errors));
  if (parts.policy_templates.length > 0) {
    const at = position(text, text.indexOf(parts.policy_templates[0]!));
    throw new PolicyParseError(`${file}:${at}: a template (?principal, ?resource) is not a policy keyway can load: write the entity`);
  }
  let cursor = 0;
  return parts.policies.map((policyText) => {
    // The parts are the file's own text, in order: where each starts gives its line.
    const offset = text.indexOf(policyText, cursor);
    if (offset >= 0) cursor = offset + policyText.length;
    const at = offset >= 0 ? position(text, offset) : '1:1';
    const json = engine.policyToJson(policyText);
    if (json.type === 'failure') throw new PolicyParseError(describe(`${file}`, text, json.errors));
    const shape = json.json as unknown as PolicyJsonShape;
    const annotated = shape.annotations?.['id'];
    const line = at.split(':')[0];
    const named = typeof annotated === 'string' && annotated !== '';
    // An id is written on audit lines and in refusals: printable, and short enough to read there.
    if (named && (annotated.length > MAX_ID || /\p{Cc}/u.test(annotated))) {
      throw new PolicyParseError(`${file}:${at}: @id must be 1 to ${MAX_ID} printable characters`);
    }
    return {
      id: named ? annotated : `${file}:${line}`,
      named,
      origin: `${file}:${at}`,
      text: policyText,
      effect: shape.effect,
      json: shape,
    };
  });
}

/** The engine's first error as one line: FILE:LINE:COLUMN: message (what was expected). */
function describe(
  file: string,
  text: string,
  errors: ReadonlyArray<{ message: string; help: string | null; sourceLocations?: Array<{ start: number; label: string | null }> }>,
): string {
  const first = errors[0];
  if (!first) return `${file}: the file could not be parsed`;
  const location = first.sourceLocations?.[0];
  const at = location === undefined ? '1:1' : positionOfByte(text, location.start);
  const detail = [location?.label, first.help].filter(Boolean).join('; ');
  return `${file}:${at}: ${first.message}${detail ? ` (${detail})` : ''}`;
}

/** LINE:COLUMN (1-based, columns in characters) of a character offset. */
function position(text: string, offset: number): string {
  const before = text.slice(0, Math.max(0, offset));
  const line = before.split('\n').length;
  const column = [...before.slice(before.lastIndexOf('\n') + 1)].length + 1;
  return `${line}:${column}`;
}

/** The engine counts in UTF-8 bytes: LINE:COLUMN of a byte offset. */
function positionOfByte(text: string, byteOffset: number): string {
  const chars = Buffer.from(text, 'utf8').subarray(0, byteOffset).toString('utf8').length;
  return position(text, chars);
}
