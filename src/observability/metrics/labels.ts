import { isModelName } from '../../spend/core/model-name.ts';

// Label values for grant and agent ids. Prometheus keeps one series per distinct label set for as
// long as the process lives, so a label must never take a value an agent chooses (a host name, a
// path): only ids that the config or the store defined, which the operator controls. As a second
// guard, a set takes at most `max` distinct ids; any id past that counts under OVERFLOW_LABEL.

/** No grant (a tunnel, a refusal before one was chosen) or no agent (refused before it was known). */
export const NONE_LABEL = '_none';
/** An id seen after the set was full. Ids are `[a-z0-9][a-z0-9-]*`, so neither label is an id. */
export const OVERFLOW_LABEL = '_other';

export const DEFAULT_MAX_IDS = 1000;

export class BoundedLabels {
  readonly #max: number;
  readonly #seen = new Set<string>();

  constructor(max = DEFAULT_MAX_IDS) {
    this.#max = max;
  }

  /** The label for `id`: a Set lookup, no string built. */
  label(id: string | null): string {
    if (id === null) return NONE_LABEL;
    if (this.#seen.has(id)) return id;
    if (this.#seen.size >= this.#max) return OVERFLOW_LABEL;
    this.#seen.add(id);
    return id;
  }
}

/** Distinct model labels one process keeps; past it a new model counts under OVERFLOW_LABEL. */
export const MAX_MODEL_LABELS = 200;

/**
 * Label values for model names. Unlike ids, a model name comes from an upstream's answer (or the
 * agent's request), so anyone behind a gateway can choose it: a name of another shape, and any name
 * past the bound, counts under OVERFLOW_LABEL; no model named is NONE_LABEL.
 */
export class ModelLabels {
  readonly #bounded: BoundedLabels;

  constructor(max = MAX_MODEL_LABELS) {
    this.#bounded = new BoundedLabels(max);
  }

  label(model: string | null): string {
    if (model === null) return NONE_LABEL;
    // What a model name may be (spend/core/model-name.ts): the names vendors give, up to 128 characters.
    return isModelName(model) ? this.#bounded.label(model) : OVERFLOW_LABEL;
  }
}
