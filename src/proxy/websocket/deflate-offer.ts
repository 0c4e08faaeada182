// permessage-deflate (RFC 7692) on the agent's leg only. keyway never offers the extension to the
// upstream when it injects a secret (the leak guard reads the upstream's frames as they come,
// websocket/upstream-guard.ts), so the upstream leg is uncompressed. For a grant that swaps its
// placeholder into messages, keyway itself accepts the agent's offer: the agent may then send
// compressed messages, which keyway inflates (bounded), swaps, and sends on uncompressed. keyway
// sends the agent nothing compressed (RSV1 clear), which the extension allows (RFC 7692 6).

/** What keyway agreed with the agent, and so how it must inflate the agent's messages. */
export interface AgentDeflate {
  /** The 101's Sec-WebSocket-Extensions value. */
  response: string;
  /** client_no_context_takeover: each message is inflated on its own; else with the window of the ones before. */
  noContextTakeover: boolean;
}

const PARAMS = new Set(['server_no_context_takeover', 'client_no_context_takeover', 'server_max_window_bits', 'client_max_window_bits']);

/**
 * The first permessage-deflate offer in the agent's Sec-WebSocket-Extensions that keyway can take,
 * or undefined (no offer, or only ones with parameters keyway does not know: declined, as the RFC
 * asks, rather than guessed at).
 */
export function acceptAgentDeflate(header: string | string[] | undefined): AgentDeflate | undefined {
  if (header === undefined) return undefined;
  const offers = (Array.isArray(header) ? header.join(',') : header).split(',');
  for (const offer of offers) {
    const [name, ...rest] = offer.split(';').map((part) => part.trim());
    if (name?.toLowerCase() !== 'permessage-deflate') continue;
    const accepted: string[] = ['permessage-deflate'];
    let noContextTakeover = false;
    let ok = true;
    const seen = new Set<string>();
    for (const param of rest) {
      if (param === '') continue;
      const [key = '', raw] = param.split('=').map((p) => p.trim());
      const value = raw?.replace(/^"(.*)"$/, '$1');
      const lower = key.toLowerCase();
      if (!PARAMS.has(lower) || seen.has(lower)) {
        ok = false;
        break;
      }
      seen.add(lower);
      if (lower.endsWith('_max_window_bits')) {
        if (value === undefined) continue; // client_max_window_bits alone: the agent may take any we name; we name none
        if (!/^(8|9|1[0-5])$/.test(value)) {
          ok = false;
          break;
        }
        // keyway inflates with a 32 KiB window, which reads any smaller one; it sends nothing compressed.
        accepted.push(`${lower}=${value}`);
      } else {
        if (value !== undefined) {
          ok = false;
          break;
        }
        if (lower === 'client_no_context_takeover') noContextTakeover = true;
        accepted.push(lower);
      }
    }
    if (ok) return { response: accepted.join('; '), noContextTakeover };
  }
  return undefined;
}
