import type { Decisions, Delegating, Issuing, Records, Transport } from './contract.ts';
import type { FeatureViews } from './stages/views.ts';

/**
 * Everything the proxy reads, built once by the composition root (app/proxy-runtime.ts): the
 * driver's views (contract.ts) and the features' (stages/views.ts). The driver hands it on whole;
 * a stage reads one view of it (connection.ts).
 */
export type ProxyRuntime = Decisions & Issuing & Records & Transport & Delegating & FeatureViews;
