// What a model name may be, wherever keyway keeps one: a spend record's id (`spend:…:<model>`), an
// audit line's `usage.model`, a metrics label, the ledger's and the price lookup's maps, the
// dashboard and `keyway spend`. A model name comes from the vendor's answer when it names one, else
// from the request (a Gemini or Vertex path, an Azure deployment), so an agent (or anyone behind a
// gateway) chooses it: 8,000 characters, or a new name on every request, each one a store record that
// every later store write rewrites. So a guard, default deny:
//
// - The shape vendors use: a letter or digit, then letters, digits and `. _ : / @ + -`, at most
//   MODEL_NAME_MAX characters (`claude-sonnet-4-5-20250929`, `models/gemini-2.5-pro`,
//   `anthropic/claude-…`, `claude-…@20250929`, `anthropic.claude-…-v1:0`, `llama3:8b`). Anything
//   else is OTHER_MODEL.
// - At most MAX_MODEL_NAMES distinct names per agent per UTC day (per process: each worker and
//   replica keeps its own, and the ledger that writes the store keeps one more); a new name past
//   it is OTHER_MODEL until the day ends.
//
// A name nobody gave stays null. OTHER_MODEL cannot be a model's own name (it starts with `_`).

/** The longest model name kept as written; vendors' longest are under 60. */
export const MODEL_NAME_MAX = 128;
/** Distinct model names one agent may have counted under its own name per UTC day; past it, OTHER_MODEL. */
export const MAX_MODEL_NAMES = 32;
/** The name a model is counted under when its own is not admitted. */
export const OTHER_MODEL = '_other';

const MODEL_NAME = new RegExp(`^[A-Za-z0-9][A-Za-z0-9._:/@+-]{0,${MODEL_NAME_MAX - 1}}$`);

/** Whether `name` has a model name's shape (the charset and the length). */
export function isModelName(name: string): boolean {
  // The length first: the pattern never scans a long name.
  return name.length <= MODEL_NAME_MAX && MODEL_NAME.test(name);
}

/** `name` when it has a model name's shape, OTHER_MODEL when it has not; null stays null. */
export function modelNameShape(name: string | null): string | null {
  if (name === null) return null;
  return isModelName(name) ? name : OTHER_MODEL;
}

const DAY_MS = 86_400_000;

/**
 * The distinct-name cap: per agent (null: the anonymous agent), per UTC day. Holds at most
 * MAX_MODEL_NAMES names of MODEL_NAME_MAX characters per agent, and only today's: a new day starts
 * every agent's set afresh.
 */
export class ModelNames {
  readonly #max: number;
  #day = Number.NaN;
  #byAgent = new Map<string | null, Set<string>>();

  constructor(max = MAX_MODEL_NAMES) {
    this.#max = max;
  }

  /** The name `model` is counted under for `agent` at `at`: its own (shape and cap admitting it), else OTHER_MODEL; null stays null. */
  name(agent: string | null, model: string | null, at: Date): string | null {
    if (model === null) return null;
    if (!isModelName(model)) return OTHER_MODEL;
    const day = Math.floor(at.getTime() / DAY_MS);
    if (day !== this.#day) {
      this.#day = day;
      this.#byAgent = new Map();
    }
    let names = this.#byAgent.get(agent);
    if (names === undefined) {
      names = new Set();
      this.#byAgent.set(agent, names);
    }
    if (names.has(model)) return model;
    if (names.size >= this.#max) return OTHER_MODEL;
    names.add(model);
    return model;
  }
}
