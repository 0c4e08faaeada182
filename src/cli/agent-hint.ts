// One wording, wherever a command finds agents configured and was given none (env, run, fetch,
// doctor): what will happen (407) and how this command takes the agent, so a person reads the same
// fix whichever command they ran first.

/** How `keyway COMMAND` takes the agent and its key. */
export function passAgentHint(command: string, options: { envName?: boolean } = {}): string {
  const also = options.envName ? ' (or KEYWAY_AGENT)' : '';
  return `pass --agent ID${also} to keyway ${command}, its key in KEYWAY_AGENT_KEY (or, for an agent in the config, read from its reference)`;
}

/** The line for a command given no agent where agents are configured. */
export function noAgentLine(command: string, options: { envName?: boolean } = {}): string {
  return `agents are configured, so requests without agent credentials get 407 proxy_auth_required: ${passAgentHint(command, options)}`;
}
