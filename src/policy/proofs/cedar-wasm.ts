// Cedar's own engine, loaded only when a proof (policy test | diff | check | lint) runs: ~4 MB of
// WASM and about a second that a keyway without Cedar files never pays.

type CedarWasm = typeof import('@cedar-policy/cedar-wasm/nodejs');

let loading: Promise<CedarWasm> | undefined;

export function cedarWasm(): Promise<CedarWasm> {
  loading ??= import('@cedar-policy/cedar-wasm/nodejs');
  return loading;
}
