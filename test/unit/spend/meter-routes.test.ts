// The route table (src/spend/core/meters/routes.ts): which requests are model traffic, metered in which
// wire format, free, or `unknown` (refused under a budget). Every default route, the hints for Azure,
// a gateway and a self-hosted server, and the paths nobody listed.
import { describe, expect, it } from 'vitest';
import { type ModelApiHint, modelRoute, protobufAnswer, reshapedAnswer, socketRoute } from '../../../src/spend/core/meters/routes.ts';

const route = (api: ModelApiHint, host: string, method: string, path: string) => modelRoute(api, host, method, path);
const metered = (api: string, r: string, requestModel: string | null = null) => ({ kind: 'metered', plan: { api, route: r, requestModel } });
const FREE = { kind: 'free' };
const UNKNOWN = { kind: 'unknown' };

describe('model routes by host (no hint)', () => {
  it.each([
    ['api.anthropic.com', '/v1/messages', metered('anthropic', 'anthropic-messages')],
    ['api.anthropic.com', '/v1/messages?beta=true', metered('anthropic', 'anthropic-messages')],
    ['api.openai.com', '/v1/chat/completions', metered('openai', 'openai-chat')],
    ['api.openai.com', '/v1/responses', metered('openai', 'openai-responses')],
    ['api.openai.com', '/v1/responses/compact', metered('openai', 'openai-responses')],
    ['api.openai.com', '/v1/completions', metered('openai', 'openai-completions')],
    ['api.openai.com', '/v1/embeddings', metered('openai', 'openai-embeddings')],
    ['chatgpt.com', '/backend-api/codex/responses', metered('openai', 'openai-responses')],
    ['generativelanguage.googleapis.com', '/v1beta/models/gemini-2.5-pro:generateContent', metered('gemini', 'gemini-generate', 'gemini-2.5-pro')],
    [
      'generativelanguage.googleapis.com',
      '/v1/models/gemini-2.5-flash:streamGenerateContent?alt=sse',
      metered('gemini', 'gemini-generate', 'gemini-2.5-flash'),
    ],
    ['cloudcode-pa.googleapis.com', '/v1internal:streamGenerateContent?alt=sse', metered('gemini', 'gemini-code-assist')],
    ['cloudcode-pa.googleapis.com', '/v1internal:generateContent', metered('gemini', 'gemini-code-assist')],
    [
      'aiplatform.googleapis.com',
      '/v1/projects/p/locations/global/publishers/google/models/gemini-2.5-pro:generateContent',
      metered('gemini', 'gemini-generate', 'gemini-2.5-pro'),
    ],
    [
      'us-central1-aiplatform.googleapis.com',
      '/v1beta1/projects/p/locations/us-central1/publishers/google/models/gemini-2.5-pro:streamGenerateContent',
      metered('gemini', 'gemini-generate', 'gemini-2.5-pro'),
    ],
    [
      'us-east5-aiplatform.googleapis.com',
      '/v1/projects/p/locations/us-east5/publishers/anthropic/models/claude-sonnet-4@20250514:streamRawPredict',
      metered('anthropic', 'anthropic-messages', 'claude-sonnet-4@20250514'),
    ],
  ])('%s POST %s', (host, path, expected) => {
    expect(route(undefined, host, 'POST', path)).toEqual(expected);
  });

  it('free: reads, token counting, Code Assist account calls', () => {
    expect(route(undefined, 'api.anthropic.com', 'GET', '/v1/models')).toEqual(FREE);
    expect(route(undefined, 'api.anthropic.com', 'POST', '/v1/messages/count_tokens')).toEqual(FREE);
    expect(route(undefined, 'api.openai.com', 'POST', '/v1/responses/input_tokens')).toEqual(FREE);
    expect(route(undefined, 'api.openai.com', 'GET', '/v1/models')).toEqual(FREE);
    expect(route(undefined, 'generativelanguage.googleapis.com', 'POST', '/v1beta/models/gemini-2.5-pro:countTokens')).toEqual(FREE);
    expect(route(undefined, 'chatgpt.com', 'GET', '/backend-api/codex/models')).toEqual(FREE);
    for (const method of ['loadCodeAssist', 'onboardUser', 'listExperiments', 'retrieveUserQuota', 'recordCodeAssistMetrics', 'countTokens'])
      expect(route(undefined, 'cloudcode-pa.googleapis.com', 'POST', `/v1internal:${method}`)).toEqual(FREE);
    expect(
      route(undefined, 'us-east5-aiplatform.googleapis.com', 'POST', '/v1/projects/p/locations/l/publishers/anthropic/models/count-tokens:rawPredict'),
    ).toEqual(FREE);
  });

  it('unknown: calls on a model API keyway cannot meter, and any POST nobody listed', () => {
    for (const [host, path] of [
      ['api.anthropic.com', '/v1/messages/batches'],
      ['api.anthropic.com', '/v1/complete'],
      ['api.anthropic.com', '/v1/files'],
      ['api.openai.com', '/v1/audio/speech'],
      ['api.openai.com', '/v1/images/generations'],
      ['api.openai.com', '/v1/batches'],
      ['api.openai.com', '/v1/moderations'],
      ['api.openai.com', '/v1/realtime/client_secrets'],
      ['api.openai.com', '/v1/responses/resp_1/cancel'],
      ['api.openai.com', '/v1/something-new'],
      ['generativelanguage.googleapis.com', '/v1beta/models/text-embedding-004:embedContent'],
      ['generativelanguage.googleapis.com', '/v1beta/models/imagen-4:predict'],
      ['generativelanguage.googleapis.com', '/v1beta/models/gemini-2.5-pro:batchGenerateContent'],
      ['generativelanguage.googleapis.com', '/v1beta/cachedContents'],
      ['cloudcode-pa.googleapis.com', '/v1internal:somethingNew'],
      ['chatgpt.com', '/backend-api/codex/something'],
      ['us-east5-aiplatform.googleapis.com', '/v1/projects/p/locations/l/publishers/anthropic/models/claude:predict'],
    ])
      expect(route(undefined, host!, 'POST', path!), `${host}${path}`).toEqual(UNKNOWN);
    expect(route(undefined, 'api.openai.com', 'DELETE', '/v1/files/file_1')).toEqual(UNKNOWN);
    expect(route(undefined, 'api.openai.com', 'PUT', '/v1/chat/completions')).toEqual(UNKNOWN);
  });

  it('not model traffic: only hosts that are no model host', () => {
    expect(route(undefined, 'api.example.test', 'POST', '/v1/chat/completions')).toBeUndefined();
    expect(route(undefined, 'evil-aiplatform.googleapis.com.example.test', 'POST', '/v1/x/models/m:generateContent')).toBeUndefined();
    expect(route(undefined, 'aiplatform.googleapis.com.', 'POST', '/v1/x/models/m:generateContent')).toEqual(metered('gemini', 'gemini-generate', 'm'));
  });

  it("default deny outside the API's paths on a model host: a read is free, a listed non-model POST is free, anything else is unknown", () => {
    // What the pinned CLIs send there (model-hosts.ts).
    for (const path of ['/api/event_logging/batch', '/api/event_logging/v2/batch', '/api/claude_code/metrics', '/api/claude_cli_feedback'])
      expect(route(undefined, 'api.anthropic.com', 'POST', path), path).toEqual(FREE);
    expect(route(undefined, 'api.anthropic.com', 'GET', '/api/oauth/profile')).toEqual(FREE);
    expect(route(undefined, 'api.anthropic.com', 'GET', '/api/claude_code/settings')).toEqual(FREE);
    expect(route(undefined, 'chatgpt.com', 'GET', '/backend-api/wham/accounts/check')).toEqual(FREE);
    expect(route(undefined, 'chatgpt.com', 'POST', '/backend-api/wham/usage/thread_usage/query')).toEqual(FREE);
    for (const [host, method, path] of [
      // ChatGPT's own web API runs a model; so do Codex's cloud tasks.
      ['chatgpt.com', 'POST', '/backend-api/conversation'],
      ['chatgpt.com', 'POST', '/backend-api/wham/tasks'],
      ['chat.openai.com', 'POST', '/backend-api/conversation'],
      ['api.anthropic.com', 'POST', '/api/organizations/o/dust/generate_title_and_branch'],
      ['api.anthropic.com', 'POST', '/api/x'],
      ['api.anthropic.com', 'POST', '/v2/messages'],
      ['api.openai.com', 'POST', '/api/x'],
      ['api.openai.com', 'POST', '/v2/chat/completions'],
      ['api.openai.com', 'POST', '/chat/completions'],
      ['generativelanguage.googleapis.com', 'POST', '/v2/models/m:generateContent'],
      ['generativelanguage.googleapis.com', 'POST', '/upload/v1beta/files'],
      ['cloudcode-pa.googleapis.com', 'POST', '/v1/models/m:generateContent'],
      // gRPC and gRPC-Web: /package.Service/Method.
      ['generativelanguage.googleapis.com', 'POST', '/google.ai.generativelanguage.v1beta.GenerativeService/GenerateContent'],
      ['generativelanguage.googleapis.com', 'POST', '/google.ai.generativelanguage.v1beta.GenerativeService/StreamGenerateContent'],
      ['generativelanguage.googleapis.com', 'POST', '/google.ai.generativelanguage.v1.GenerativeService/GenerateContent'],
      ['aiplatform.googleapis.com', 'POST', '/google.cloud.aiplatform.v1.PredictionService/GenerateContent'],
      ['us-central1-aiplatform.googleapis.com', 'POST', '/google.cloud.aiplatform.v1beta1.PredictionService/StreamGenerateContent'],
      ['aiplatform.googleapis.com', 'POST', '/google.cloud.aiplatform.v1.PredictionService/RawPredict'],
      // The list is exact: another case, a parameter, an extra segment is not on it.
      ['api.anthropic.com', 'POST', '/API/event_logging/batch'],
      ['api.anthropic.com', 'POST', '/api/Event_Logging/batch'],
      ['api.anthropic.com', 'POST', '/api/event_logging/batch;x'],
      ['api.anthropic.com', 'POST', '/api/event_logging/batch/x'],
      ['api.anthropic.com', 'POST', '/api/event_logging/batch/'],
      ['api.anthropic.com', 'POST', '/api/event_logging/%62atch'],
      ['api.anthropic.com', 'POST', '/api;x/event_logging'],
      // A free path under another method is no read.
      ['api.anthropic.com', 'PUT', '/api/event_logging/batch'],
      ['chatgpt.com', 'DELETE', '/backend-api/conversation/c1'],
      ['chatgpt.com', 'PATCH', '/backend-api/conversation/c1'],
    ])
      expect(route(undefined, host!, method!, path!), `${host} ${method} ${path}`).toEqual(UNKNOWN);
    // The free list is the default's: a hint covers every path (below).
    expect(route('anthropic', 'api.anthropic.com', 'POST', '/api/event_logging/batch')).toEqual(UNKNOWN);
  });

  it('regional and alias hosts of the vendors are model hosts; a name just outside each pattern is not', () => {
    const gemini = '/v1/projects/p/locations/l/publishers/google/models/gemini-2.5-pro:generateContent';
    const vertexGemini = metered('gemini', 'gemini-generate', 'gemini-2.5-pro');
    for (const host of ['eu.api.openai.com', 'jp.api.openai.com', 'EU.API.OPENAI.COM.'])
      expect(route(undefined, host, 'POST', '/v1/chat/completions'), host).toEqual(metered('openai', 'openai-chat'));
    for (const host of [
      'aiplatform.us.rep.googleapis.com',
      'aiplatform.eu.rep.googleapis.com',
      'aiplatform.europe-west4.rep.googleapis.com',
      'europe-west4-aiplatform.googleapis.com',
      'aiplatform.mtls.googleapis.com',
      'us-central1-aiplatform.mtls.googleapis.com',
      'aiplatform.us.rep.mtls.googleapis.com',
      'aiplatform-genai1.p.googleapis.com',
      'us-central1-aiplatform-ep1.p.googleapis.com',
    ])
      expect(route(undefined, host, 'POST', gemini), host).toEqual(vertexGemini);
    expect(route(undefined, 'generativelanguage.mtls.googleapis.com', 'POST', '/v1beta/models/m:generateContent')).toEqual(
      metered('gemini', 'gemini-generate', 'm'),
    );
    expect(route(undefined, 'generativelanguage-ep1.p.googleapis.com', 'POST', '/v1beta/models/m:generateContent')).toEqual(
      metered('gemini', 'gemini-generate', 'm'),
    );
    expect(route(undefined, 'cloudcode-pa.mtls.googleapis.com', 'POST', '/v1internal:generateContent')).toEqual(metered('gemini', 'gemini-code-assist'));
    expect(route(undefined, 'eu.api.openai.com', 'POST', '/v2/x')).toEqual(UNKNOWN);
    expect(route(undefined, 'aiplatform.us.rep.googleapis.com', 'POST', '/google.cloud.aiplatform.v1.PredictionService/GenerateContent')).toEqual(UNKNOWN);
    for (const host of [
      'api.openai.com.example.test',
      'eu.api.openai.com.example.test',
      'a.eu.api.openai.com',
      'euapi.openai.com',
      'eu-api.openai.com',
      'openai.com',
      'aiplatform.us.rep.googleapis.com.example.test',
      'aiplatform.rep.googleapis.com',
      'x.aiplatform.us.rep.googleapis.com',
      'aiplatform.us.rep.example.test',
      'aiplatformx.us.rep.googleapis.com',
      'aiplatform.googleapis.com.example.test',
      'aiplatform.example.mtls.googleapis.com',
      'mtls.googleapis.com',
      'storage.mtls.googleapis.com',
      'aiplatform.p.googleapis.com',
      'x.aiplatform-genai1.p.googleapis.com',
      'generativelanguage.googleapis.com.example.test',
      'x.generativelanguage.googleapis.com',
      'anthropic.com',
      'eu.api.anthropic.com',
      'chatgpt.com.example.test',
    ])
      expect(route(undefined, host, 'POST', host.includes('openai') ? '/v1/chat/completions' : gemini), host).toBeUndefined();
  });

  it('host names in any case; `none` turns a vendor host off', () => {
    expect(route(undefined, 'API.Anthropic.COM', 'POST', '/v1/messages')).toEqual(metered('anthropic', 'anthropic-messages'));
    expect(route('none', 'api.anthropic.com', 'POST', '/v1/messages')).toBeUndefined();
    expect(route(undefined, 'api.anthropic.com', 'post', '/v1/messages')).toEqual(metered('anthropic', 'anthropic-messages'));
  });

  it('paths the server may read differently are unknown (a GET stays free): encoded, dot segments, empty segments, trailing slash, case', () => {
    for (const path of [
      '/v1/%6Dessages',
      '/v1/messages/../messages',
      '/v1/./messages',
      '/v1//messages',
      '/v1/messages/',
      '/v1\\messages',
      '/v1/mes sages',
      '/V1/MESSAGES',
      '/v1/Messages/count_tokens',
      '/%76%31/messages',
      '/api/../v1/messages',
    ])
      expect(route(undefined, 'api.anthropic.com', 'POST', path), path).toEqual(UNKNOWN);
    expect(route(undefined, 'api.anthropic.com', 'GET', '/v1/%6Dodels')).toEqual(FREE);
    // The API's space is matched in any case (so a case-blind server's /V1/… is not outside it), the route's tail exactly.
    expect(route(undefined, 'api.anthropic.com', 'POST', '/V1/messages')).toEqual(metered('anthropic', 'anthropic-messages'));
    // A query or fragment is cut before anything is matched: what it holds does not matter.
    expect(route(undefined, 'api.anthropic.com', 'POST', '/v1/messages?x=/../batches#y')).toEqual(metered('anthropic', 'anthropic-messages'));
    expect(route(undefined, 'api.anthropic.com', 'POST', '/v1/messages/batches?x=/messages')).toEqual(UNKNOWN);
  });

  it('`;params` do not take a path out of the API space (a server that drops them serves it)', () => {
    expect(route(undefined, 'api.anthropic.com', 'POST', '/v1;x/messages')).toEqual(metered('anthropic', 'anthropic-messages'));
    expect(route(undefined, 'api.anthropic.com', 'POST', '/v1;x/messages/batches')).toEqual(UNKNOWN);
    expect(route(undefined, 'api.anthropic.com', 'POST', '/v1/messages;x')).toEqual(UNKNOWN);
    expect(route(undefined, 'generativelanguage.googleapis.com', 'POST', '/v1beta;a=b/models/m:generateContent')).toEqual(
      metered('gemini', 'gemini-generate', 'm'),
    );
  });
});

describe('answers in protobuf (protobufAnswer)', () => {
  it('finds gRPC, gRPC-Web and protobuf in the body type or the Accept, in any case', () => {
    for (const type of [
      'application/grpc',
      'application/grpc+proto',
      'application/grpc+json',
      'application/grpc-web',
      'application/grpc-web+proto',
      'application/grpc-web-text',
      'application/grpc-web-text+proto',
      'Application/GRPC',
      ' application/grpc ; charset=utf-8',
      'application/x-protobuf',
      'application/protobuf',
      'application/x-google-protobuf',
    ])
      expect(protobufAnswer(type, undefined), type).toBe('a gRPC or protobuf body: its answer is protobuf');
    for (const accept of [
      'application/json, application/x-protobuf;q=0.5',
      'text/plain,application/grpc',
      'APPLICATION/GRPC-WEB',
      'application/json;q=1,  application/protobuf',
    ])
      expect(protobufAnswer('application/json', accept), accept).toBe('an Accept of gRPC or protobuf');
  });

  it('passes what the SDKs send', () => {
    for (const type of [undefined, 'application/json', 'application/json; charset=utf-8', 'text/plain', 'application/grpcx', 'application/json+grpc'])
      expect(protobufAnswer(type, 'application/json'), type).toBeUndefined();
    expect(protobufAnswer('application/json', 'text/event-stream')).toBeUndefined();
    expect(protobufAnswer('application/json', '*/*')).toBeUndefined();
    expect(protobufAnswer('application/json', 'application/json, text/x-application/grpc')).toBeUndefined();
  });
});

describe('answers a Google front would reshape (reshapedAnswer)', () => {
  const gemini = { api: 'gemini', route: 'gemini-generate', requestModel: 'm' } as const;
  const anthropic = { api: 'anthropic', route: 'anthropic-messages', requestModel: null } as const;
  const host = 'generativelanguage.googleapis.com';

  it('admits what the SDKs and CLIs send: no query, `alt=sse` or `alt=json` once, `key`', () => {
    for (const query of ['', '?', '?alt=sse', '?alt=json', '?key=k&alt=sse']) expect(reshapedAnswer(gemini, host, query, false), query).toBeUndefined();
    // Not a Google host nor a Gemini answer: the query is the vendor's business.
    expect(reshapedAnswer(anthropic, 'api.anthropic.com', '?beta=true&fields=x', false)).toBeUndefined();
  });

  it('refuses a field mask, another `alt`, a repeated one, and every other parameter', () => {
    expect(reshapedAnswer(gemini, host, '', true)).toBe('the X-Goog-FieldMask header');
    for (const query of [
      '?fields=candidates',
      '?$fields=candidates',
      '?alt=proto',
      '?$alt=proto',
      '?alt=sse&alt=proto',
      '?alt=sse&alt=sse',
      '?callback=f',
      '?prettyPrint=false',
    ])
      expect(reshapedAnswer(gemini, host, query, false), query).toMatch(/^the query parameter "/);
    // Claude on Vertex is behind the same front.
    expect(reshapedAnswer(anthropic, 'us-east5-aiplatform.googleapis.com', '?fields=id', false)).toBe('the query parameter "fields"');
  });
});

describe('model routes with a hint', () => {
  it('Azure OpenAI: deployments name the model; /openai/v1 paths', () => {
    const host = 'my-resource.openai.azure.com';
    expect(route(undefined, host, 'POST', '/openai/deployments/gpt4o-prod/chat/completions?api-version=2024-10-21')).toBeUndefined();
    expect(route('openai', host, 'POST', '/openai/deployments/gpt4o-prod/chat/completions?api-version=2024-10-21')).toEqual(
      metered('openai', 'openai-chat', 'gpt4o-prod'),
    );
    expect(route('openai', host, 'POST', '/openai/deployments/emb/embeddings?api-version=2024-10-21')).toEqual(metered('openai', 'openai-embeddings', 'emb'));
    expect(route('openai', host, 'POST', '/openai/deployments/old/completions')).toEqual(metered('openai', 'openai-completions', 'old'));
    expect(route('openai', host, 'POST', '/openai/v1/responses')).toEqual(metered('openai', 'openai-responses'));
    expect(route('openai', host, 'POST', '/openai/deployments/d/audio/transcriptions')).toEqual(UNKNOWN);
  });

  it('a gateway or self-hosted server on any prefix, matched by the path tail', () => {
    expect(route('openai', 'llm.internal.test', 'POST', '/gateway/team-a/v1/chat/completions')).toEqual(metered('openai', 'openai-chat'));
    expect(route('openai', 'localhost', 'POST', '/v1/completions')).toEqual(metered('openai', 'openai-completions'));
    expect(route('openai', 'localhost', 'POST', '/api/generate')).toEqual(UNKNOWN);
    expect(route('openai', 'localhost', 'GET', '/v1/models')).toEqual(FREE);
    expect(route('anthropic', 'gw.example.test', 'POST', '/anthropic/v1/messages')).toEqual(metered('anthropic', 'anthropic-messages'));
    expect(route('anthropic', 'gw.example.test', 'POST', '/anthropic/v1/messages/count_tokens')).toEqual(FREE);
    expect(route('anthropic', 'gw.example.test', 'POST', '/anthropic/v1/chat/completions')).toEqual(UNKNOWN);
    expect(route('gemini', 'gw.example.test', 'POST', '/google/v1beta/models/gemini-x:streamGenerateContent')).toEqual(
      metered('gemini', 'gemini-generate', 'gemini-x'),
    );
    expect(route('gemini', 'gw.example.test', 'POST', '/google/v1beta/models/gemini-x:embedContent')).toEqual(UNKNOWN);
    // A hint covers every path of the host, the vendor's telemetry paths too: nothing unlisted is free.
    expect(route('anthropic', 'api.anthropic.com', 'POST', '/api/event_logging/batch')).toEqual(UNKNOWN);
  });

  it("a hint names the format whatever the host's default", () => {
    expect(route('openai', 'api.anthropic.com', 'POST', '/v1/messages')).toEqual(UNKNOWN);
    expect(route('openai', 'api.anthropic.com', 'POST', '/v1/chat/completions')).toEqual(metered('openai', 'openai-chat'));
  });
});

describe('WebSocket routes', () => {
  it("Codex's Responses socket is metered; other sockets on a model API are unknown; elsewhere nothing", () => {
    expect(socketRoute(undefined, 'api.openai.com', '/v1/responses')).toEqual(metered('openai', 'openai-responses'));
    expect(socketRoute(undefined, 'chatgpt.com', '/backend-api/codex/responses')).toEqual(metered('openai', 'openai-responses'));
    expect(socketRoute(undefined, 'api.openai.com', '/v1/realtime?model=gpt-realtime')).toEqual(UNKNOWN);
    expect(socketRoute(undefined, 'api.openai.com', '/v1/%72esponses')).toEqual(UNKNOWN);
    expect(
      socketRoute(undefined, 'generativelanguage.googleapis.com', '/ws/google.ai.generativelanguage.v1beta.GenerativeService.BidiGenerateContent'),
    ).toEqual(UNKNOWN);
    expect(socketRoute('gemini', 'generativelanguage.googleapis.com', '/ws/live')).toEqual(UNKNOWN);
    // Outside the API's paths on a model host too (Claude Code's voice dictation; default deny).
    expect(socketRoute(undefined, 'chatgpt.com', '/backend-api/other')).toEqual(UNKNOWN);
    expect(socketRoute(undefined, 'api.anthropic.com', '/api/ws/speech_to_text/voice_stream')).toEqual(UNKNOWN);
    expect(socketRoute(undefined, 'eu.api.openai.com', '/v1/responses')).toEqual(metered('openai', 'openai-responses'));
    expect(socketRoute(undefined, 'api.example.test', '/v1/responses')).toBeUndefined();
    expect(socketRoute('none', 'api.openai.com', '/v1/responses')).toBeUndefined();
  });
});
