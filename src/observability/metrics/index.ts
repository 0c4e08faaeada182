// The metrics module's public surface: the metric definitions (prom-client) and how they are fed.

export { KeywayMetrics } from './keyway-metrics.ts';
export type { MetricSources } from './keyway-metrics.ts';
export { NONE_LABEL, OVERFLOW_LABEL } from './labels.ts';
