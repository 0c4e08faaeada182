// The throwaway keyway's config (warm-up.ts): what it admits, in full. One agent, whose name and key
// are random values only the warm-up's own client holds (a name known in advance could be locked out
// by another local user's wrong keys: the throttle counts them per name); one bearer grant for one host under the
// reserved .test name, mapped to loopback, where the warm-up's own HTTPS server answers; every
// other host refused (unmatched: deny); no admin listener; its listener on a port of the system's
// choosing on 127.0.0.1.

export const WARM_UP_HOST = 'warm-up.keyway.test';

/** keyway.yaml for the throwaway home; `caPath` is its own CA, which the upstream's leaf is signed by. */
export function warmUpConfigText(caPath: string, agent: string): string {
  return `${[
    'proxy:',
    '  listen: 127.0.0.1:0',
    '  unmatched: deny',
    `  hosts: { ${WARM_UP_HOST}: 127.0.0.1 }`,
    '  allow_networks: [127.0.0.1/32]',
    `  upstream_ca: [${JSON.stringify(caPath)}]`,
    'admin:',
    '  enabled: false',
    'grants:',
    '  warm-up:',
    '    type: bearer',
    `    domains: [${WARM_UP_HOST}]`,
    '    secret: env:KEYWAY_WARM_UP_SECRET',
    'agents:',
    `  ${agent}:`,
    '    key: env:KEYWAY_WARM_UP_AGENT_KEY',
    '    grants: [warm-up]',
  ].join('\n')}\n`;
}
