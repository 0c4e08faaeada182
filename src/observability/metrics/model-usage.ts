// Model tokens and dollars for /metrics (keyway_model_tokens_total, keyway_spend_usd_total), counted
// from the audit event's usage and cost_usd where every request is counted (KeywayMetrics.request):
// the metrics then equal the audit log's totals by construction. Plain numbers on the request path,
// handed to prom-client when scraped, as tally.ts does; dollars in a compensated sum (ExactSum).

// prom-client's Counter is handed in at the registry's build (prom-metrics.ts): it is loaded off a keyway's start.
import type { Counter, Registry } from 'prom-client';
import type { AuditEvent } from '../../audit/index.ts';
import { ExactSum } from '../../spend/core/exact-sum.ts';

/** The token kinds, as the metric's `kind` label names them, and where each is in the audit's usage. */
const KINDS = [
  ['input', 'input_tokens'],
  ['output', 'output_tokens'],
  ['cached_input', 'cached_input_tokens'],
  ['cache_write', 'cache_write_tokens'],
] as const;

type Tokens = [number, number, number, number];

/** A count as the audit's usage holds it: a whole number from 0 up; anything else adds nothing. */
const whole = (n: unknown): number => (typeof n === 'number' && Number.isSafeInteger(n) && n > 0 ? n : 0);

export class ModelUsageCounts {
  // grant -> agent -> model -> tokens by kind; grant -> agent -> dollars.
  readonly #tokens = new Map<string, Map<string, Map<string, Tokens>>>();
  readonly #usd = new Map<string, Map<string, ExactSum>>();

  /** Its two counters, in `registry`, read from these counts at each scrape. */
  register(registry: Registry, CounterClass: typeof Counter): void {
    const tokens = this.#tokens;
    const usd = this.#usd;
    new CounterClass({
      name: 'keyway_model_tokens_total',
      help: 'Tokens model answers reported using (as their audit lines carry them), by grant, agent, model and kind (input, output, cached_input, cache_write; cached and written tokens are part of input).',
      labelNames: ['grant', 'agent', 'model', 'kind'],
      registers: [registry],
      collect() {
        this.reset();
        for (const [grant, agents] of tokens)
          for (const [agent, models] of agents)
            for (const [model, counts] of models)
              for (const [i, [kind]] of KINDS.entries()) if (counts[i]! > 0) this.inc({ grant, agent, model, kind }, counts[i]!);
      },
    });
    new CounterClass({
      name: 'keyway_spend_usd_total',
      help: "Dollars model answers cost at the config's prices (their audit lines' cost_usd), by grant and agent; unpriced models add nothing here.",
      labelNames: ['grant', 'agent'],
      registers: [registry],
      collect() {
        this.reset();
        for (const [grant, agents] of usd) for (const [agent, sum] of agents) this.inc({ grant, agent }, sum.value);
      },
    });
  }

  /** One audit event's usage and cost, under labels already bounded by the caller (`model` read only for tokens). */
  add(event: Pick<AuditEvent, 'usage' | 'cost_usd'>, grant: string, agent: string, model: ModelLabel): void {
    const { usage, cost_usd: cost } = event;
    if (usage !== undefined && !('unknown' in usage)) {
      const counts = branch(branch(this.#tokens, grant, newAgentModels), agent, newModels);
      const label = model.label(usage.model);
      let cell = counts.get(label);
      if (cell === undefined) {
        cell = [0, 0, 0, 0];
        counts.set(label, cell);
      }
      // Indexed: an entries() iterator and two destructurings per request otherwise.
      for (let i = 0; i < KINDS.length; i++) cell[i]! += whole(usage[KINDS[i]![1]]);
    }
    if (typeof cost === 'number' && Number.isFinite(cost) && cost > 0) branch(branch(this.#usd, grant, newAgentSums), agent, newSum).add(cost);
  }
}

/** What turns a model name into its bounded label (ModelLabels). */
export interface ModelLabel {
  label(model: string | null): string;
}

// Module functions, not arrows in add(): no closure made per answer.
const newAgentModels = (): Map<string, Map<string, Tokens>> => new Map();
const newModels = (): Map<string, Tokens> => new Map();
const newAgentSums = (): Map<string, ExactSum> => new Map();
const newSum = (): ExactSum => new ExactSum();

function branch<K, V>(map: Map<K, V>, key: K, make: () => V): V {
  let found = map.get(key);
  if (found === undefined) {
    found = make();
    map.set(key, found);
  }
  return found;
}
