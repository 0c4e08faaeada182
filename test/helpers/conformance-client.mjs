// The MCP client the conformance suite's client scenarios drive (@modelcontextprotocol/conformance:
// it starts a scenario server and runs this with its URL as the last argument, the scenario in
// MCP_CONFORMANCE_SCENARIO). It is the MCP SDK's own client, doing what each scenario asks; it
// reaches the server through whatever proxy the environment names (Node's own HTTP_PROXY support,
// NODE_USE_ENV_PROXY=1), so the suite judges the client's exchanges as keyway relayed them.
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { ElicitRequestSchema } from '@modelcontextprotocol/sdk/types.js';

const url = new URL(process.argv.at(-1));
const scenario = process.env.MCP_CONFORMANCE_SCENARIO;
const client = new Client({ name: 'keyway-conformance', version: '1.0.0' }, { capabilities: { elicitation: {} } });
// SEP-1034: an accepted elicitation carries each field's default where the user gave none.
client.setRequestHandler(ElicitRequestSchema, async (request) => {
  const content = {};
  for (const [name, field] of Object.entries(request.params.requestedSchema?.properties ?? {})) {
    if (field && typeof field === 'object' && 'default' in field) content[name] = field.default;
  }
  return { action: 'accept', content };
});
await client.connect(new StreamableHTTPClientTransport(url));
const { tools } = await client.listTools();
if (scenario === 'tools_call') await client.callTool({ name: 'add_numbers', arguments: { a: 2, b: 3 } });
if (scenario === 'elicitation-sep1034-client-defaults') await client.callTool({ name: 'test_client_elicitation_defaults', arguments: {} });
if (scenario === 'sse-retry') await client.callTool({ name: 'test_reconnection', arguments: {} });
console.log(JSON.stringify({ scenario, tools: tools.map((t) => t.name) }));
await client.close();
