// The Cedar schema keyway ships (`keyway policy schema` prints it): what a policy may name and read.
// The context is built per request by context.ts, to these types (its test checks it against this
// text); a policy file is validated against it by `keyway policy lint`.

/**
 * The schema, in Cedar's schema syntax. Comments inside it are what `keyway policy schema` shows
 * people, so they say what each attribute holds and how to write an hours rule.
 */
export const CEDAR_SCHEMA = `// keyway's Cedar schema: principal Agent, actions request and mcp_call, resource Grant.

// An agent: the caller with a key. Its parents (delegation) are Agents it is "in", nearest last:
// \`principal in Agent::"parent"\` matches the parent and every agent it delegated to.
entity Agent in [Agent];

// A grant the agent holds: keyway picks the grant before any policy is asked, so a permit never
// hands an agent a grant it does not hold.
entity Grant;

// The clock, read once per request, to the minute. utc is a Cedar datetime (its seconds 0); hour,
// minute and weekday are UTC too.
// An hours rule in UTC:        context.time.hour >= 9 && context.time.hour < 18
// An hours rule in a zone:     context.time.utc.offset(duration("2h")).toTime() >= duration("9h")
//                              (a fixed offset: Cedar knows no daylight saving; YAML rules' tz does)
// Days:                        ["sat", "sun"].contains(context.time.weekday)
type Time = {
  utc: __cedar::datetime,
  hour: Long,        // 0-23, UTC
  minute: Long,      // 0-59, UTC
  weekday: String,   // "mon" "tue" "wed" "thu" "fri" "sat" "sun", UTC
};

type RequestContext = {
  method: String,            // upper case: "GET", "POST", ...
  host: String,              // lower case, as keyway routed it
  port: Long,
  path: String,              // as the upstream reads it (dot segments resolved, %2e decoded, // collapsed), no query; case kept
  path_lower: String,        // the same, NFKC and lower case: for a forbid a case-blind server must not sidestep (/ADMIN)
  query_keys: Set<String>,   // the query's parameter names; never their values
  body_size?: Long,          // Content-Length when declared; absent for a body of unknown size
  time: Time,
  source_ip?: __cedar::ipaddr, // the client's address as the socket reports it; absent without one (a Unix socket)
  mcp_tool?: String,         // mcp_call: the tool a tools/call names
  model?: String,            // a model host's request: the model it names
  spend_today_usd?: __cedar::decimal, // what the agent spent today (UTC) on metered hosts
  signal?: Set<String>,      // anomaly signals its own history raised (first_use new_host new_method burst off_hours); absent where anomaly is off
};

// request: one HTTP request through keyway. mcp_call: one JSON-RPC tools/call on an MCP endpoint
// (the HTTP request that carries it was a request first).
action request, mcp_call appliesTo {
  principal: [Agent],
  resource: [Grant],
  context: RequestContext,
};
`;
