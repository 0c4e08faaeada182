// A histogram kept in plain numbers, as tally.ts keeps counters: the request path observes into it
// with no prom-client loaded, and prom-client reads it only when /metrics is scraped. So a keyway
// that nobody scrapes never loads prom-client (with the OpenTelemetry API and the default metrics'
// observers, ~3 MiB of RSS after s2: docs/perf/breakdown.md), and nothing observed before the first
// scrape has to wait in a queue for it.
//
// At the scrape it is registered as a metric object of the shape prom-client's registry reads
// (name, help, type, get(), getForPromString()), with the values prom-client's own Histogram gives
// for the same observations: each bound's cumulative count as `_bucket{le=...}`, then `+Inf`,
// `_sum` and `_count`, per label value; an unlabelled histogram shows its zeros before any
// observation, a labelled one shows only the label values observed. test/unit/metrics-histogram.test.ts
// compares the two over random observations.

/** One label value's counts: per bound (the last slot for values above every bound), their sum and count. */
interface Series {
  readonly counts: number[];
  sum: number;
  count: number;
}

/** A value prom-client's registry formats: `labels` are the bucket's own (`le`), `sharedLabels` the series'. */
interface ExportedValue {
  labels: Record<string, string | number>;
  sharedLabels: Record<string, string>;
  value: number;
  metricName: string;
  exemplar: null | undefined;
}

export class PlainHistogram {
  readonly name: string;
  readonly help: string;
  readonly #bounds: readonly number[];
  /** The label's name; undefined for an unlabelled histogram (one series, under ''). */
  readonly #label: string | undefined;
  readonly #series = new Map<string, Series>();

  constructor(options: { name: string; help: string; buckets: readonly number[]; label?: string }) {
    this.name = options.name;
    this.help = options.help;
    this.#bounds = [...options.buckets].sort((a, b) => a - b);
    this.#label = options.label;
    if (this.#label === undefined) this.#series.set('', this.#newSeries());
  }

  /** One observation (non-finite values are ignored: prom-client refuses them); `label` is the label's value (none for an unlabelled histogram). */
  observe(value: number, label = ''): void {
    if (!Number.isFinite(value)) return;
    const key = this.#label === undefined ? '' : label;
    let series = this.#series.get(key);
    if (series === undefined) {
      series = this.#newSeries();
      this.#series.set(key, series);
    }
    // The first bound at or above the value, as prom-client counts it.
    const bounds = this.#bounds;
    let i = 0;
    while (i < bounds.length && value > bounds[i]!) i++;
    series.counts[i]! += 1;
    series.sum += value;
    series.count += 1;
  }

  /** The metric object prom-client's Registry.registerMetric takes for this histogram. */
  metric(): { name: string; help: string; type: 'histogram'; aggregator: 'sum'; get(): unknown; getForPromString(): unknown; reset(): void } {
    const exported = (splay: boolean) => ({ name: this.name, help: this.help, type: 'histogram', aggregator: 'sum', values: this.#values(splay) });
    return {
      name: this.name,
      help: this.help,
      type: 'histogram',
      aggregator: 'sum',
      get: async () => exported(true),
      getForPromString: async () => exported(false),
      reset: () => {
        this.#series.clear();
        if (this.#label === undefined) this.#series.set('', this.#newSeries());
      },
    };
  }

  #newSeries(): Series {
    return { counts: new Array<number>(this.#bounds.length + 1).fill(0), sum: 0, count: 0 };
  }

  /** prom-client's export: getForPromString keeps the series' labels apart (sharedLabels); get() merges them in after `le`. */
  #values(splay: boolean): Array<ExportedValue | Omit<ExportedValue, 'sharedLabels'>> {
    const out: Array<ExportedValue | Omit<ExportedValue, 'sharedLabels'>> = [];
    const value = (le: Record<string, string | number>, shared: Record<string, string>, v: number, metricName: string, exemplar: null | undefined) =>
      splay ? { value: v, metricName, exemplar, labels: { ...le, ...shared } } : { labels: le, sharedLabels: shared, value: v, metricName, exemplar };
    for (const [label, series] of this.#series) {
      const shared: Record<string, string> = this.#label === undefined ? {} : { [this.#label]: label };
      let cumulative = 0;
      for (let i = 0; i < this.#bounds.length; i++) {
        cumulative += series.counts[i]!;
        out.push(value({ le: this.#bounds[i]! }, shared, cumulative, `${this.name}_bucket`, null));
      }
      out.push(value({ le: '+Inf' }, shared, series.count, `${this.name}_bucket`, null));
      out.push(value({}, shared, series.sum, `${this.name}_sum`, undefined));
      out.push(value({}, shared, series.count, `${this.name}_count`, undefined));
    }
    return out;
  }
}
