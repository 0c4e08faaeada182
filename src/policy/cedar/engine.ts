// Cedar's own engine (@cedar-policy/cedar-wasm), loaded on first need only: ~4 MB of WASM, about a
// second and 15 MiB per process (NOTES.md), which a keyway without Cedar files never pays.

export type CedarEngine = typeof import('@cedar-policy/cedar-wasm/nodejs');

let loading: Promise<CedarEngine> | undefined;
let loaded = false;

/** The engine, imported once per process (each worker thread has its own). */
export function loadCedarEngine(): Promise<CedarEngine> {
  loading ??= import('@cedar-policy/cedar-wasm/nodejs').then((engine) => {
    loaded = true;
    return engine;
  });
  return loading;
}

/** Whether this process has loaded the engine: the cost test reads it. */
export function cedarEngineLoaded(): boolean {
  return loaded;
}
