import type { Logger } from 'pino';
import { boundEvent } from '../audit/bound.ts';
import type { AuditEvent } from '../audit/index.ts';
import { stripQuery } from '../audit/index.ts';
import { readSecretRef, parseSecretRef, type Config } from '../config/index.ts';
import { KeywayError } from '../errors/index.ts';
import { keywayVersion } from '../version.ts';

// telemetry.otlp: every decision keyway makes (each audit line) exported with the OpenTelemetry JS
// SDK over OTLP/HTTP (protobuf), as a span (its timing and outcome) and as a log record (the audit
// line itself). What goes out is what the audit line holds, bounded as it is: agent (and, for a
// delegated agent, its chain and root agent), grant, decision, code, method, host, port, path without its query, status, timings; never a header value, token or
// query string. The SDK is loaded only when telemetry is configured, and batches off the request path:
// an exporter that is slow or down costs dropped telemetry, never a request.

export interface DecisionTelemetry {
  /** One committed decision (called where its audit line is committed). */
  record(event: AuditEvent): void;
  /** Flushes what is batched and stops the exporters. */
  shutdown(): Promise<void>;
}

/** The span's and the log record's attributes: the line's own fields, under keyway.* and the HTTP conventions. */
export function decisionAttributes(whole: AuditEvent): Record<string, string | number | boolean | string[]> {
  const event = boundEvent(whole);
  const out: Record<string, string | number | boolean | string[]> = {
    'keyway.decision': event.decision,
    'keyway.request.id': event.id,
    'server.address': event.host,
    'server.port': event.port,
    'client.address': event.client,
    'keyway.duration_ms': event.duration_ms,
    'keyway.refreshed': event.refreshed,
  };
  if (event.agent !== null) {
    out['keyway.agent'] = event.agent;
    // The root of a delegated agent's chain, or the agent itself: one attribute to group a whole tree by.
    out['keyway.root_agent'] = event.chain?.[0] ?? event.agent;
  }
  if (event.chain !== undefined) out['keyway.chain'] = [...event.chain];
  if (event.grant !== null) out['keyway.grant'] = event.grant;
  if (event.code !== null) out['keyway.code'] = event.code;
  if (event.method !== null) out['http.request.method'] = event.method;
  if (event.path !== null) out['url.path'] = stripQuery(event.path);
  if (event.status !== null) out['http.response.status_code'] = event.status;
  if (event.via !== undefined) out['keyway.via'] = event.via;
  if (event.identity !== undefined) {
    out['keyway.identity.iss'] = event.identity.iss;
    out['keyway.identity.sub'] = event.identity.sub;
  }
  if (event.mcp !== undefined) {
    out['keyway.mcp.method'] = event.mcp.method;
    if (event.mcp.tool !== undefined) out['keyway.mcp.tool'] = event.mcp.tool;
  }
  return out;
}

/** The exporters for telemetry.otlp, or undefined when it is not set. Throws config_invalid for a header that cannot be read. */
export async function startTelemetry(config: Config, env: NodeJS.ProcessEnv, logger: Logger): Promise<DecisionTelemetry | undefined> {
  const otlp = config.telemetry.otlp;
  if (otlp === undefined) return undefined;
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(otlp.headers)) {
    const ref = parseSecretRef(value);
    try {
      headers[name] = ref === undefined ? value : readSecretRef(ref, env, config.home);
    } catch (err) {
      throw new KeywayError('config_invalid', `telemetry.otlp.headers.${name}: ${(err as Error).message}`);
    }
  }
  const [{ resourceFromAttributes }, { TracerProvider, BatchSpanProcessor }, { LoggerProvider, BatchLogRecordProcessor }, traceExporter, logExporter] =
    await Promise.all([
      import('@opentelemetry/resources'),
      import('@opentelemetry/sdk-trace'),
      import('@opentelemetry/sdk-logs'),
      import('@opentelemetry/exporter-trace-otlp-proto'),
      import('@opentelemetry/exporter-logs-otlp-proto'),
    ]);
  const base = otlp.endpoint.replace(/\/+$/, '');
  const resource = resourceFromAttributes({ 'service.name': otlp.service_name, 'service.version': keywayVersion() });
  const timeoutMillis = otlp.timeout;
  const tracerProvider = new TracerProvider({
    resource,
    spanProcessors: [
      new BatchSpanProcessor({
        exporter: new traceExporter.OTLPTraceExporter({ url: `${base}/v1/traces`, headers, timeoutMillis }),
        scheduledDelayMillis: otlp.batch_delay,
      }),
    ],
  });
  const tracer = tracerProvider.getTracer('keyway', keywayVersion());
  const loggerProvider = new LoggerProvider({
    resource,
    processors: [
      new BatchLogRecordProcessor({
        exporter: new logExporter.OTLPLogExporter({ url: `${base}/v1/logs`, headers, timeoutMillis }),
        scheduledDelayMillis: otlp.batch_delay,
      }),
    ],
  });
  const otelLogger = loggerProvider.getLogger('keyway', keywayVersion());
  logger.info({ endpoint: new URL(base).origin }, 'decisions are exported over OTLP');
  return {
    record(event) {
      const attributes = decisionAttributes(event);
      const end = Date.now();
      const span = tracer.startSpan(`keyway ${event.decision}`, { attributes, startTime: end - event.duration_ms, kind: 1 /* SERVER */ });
      // error: something failed (keyway's or the upstream's); a refusal (deny) is keyway working as told.
      if (event.decision === 'error') span.setStatus({ code: 2, message: event.code ?? 'error' });
      span.end(end);
      otelLogger.emit({
        timestamp: end,
        severityNumber: event.decision === 'error' ? 17 : event.decision === 'deny' ? 13 : 9,
        severityText: event.decision === 'error' ? 'ERROR' : event.decision === 'deny' ? 'WARN' : 'INFO',
        body: JSON.stringify({ ...boundEvent(event), path: event.path === null ? null : stripQuery(event.path) }),
        attributes,
      });
    },
    async shutdown() {
      await Promise.allSettled([tracerProvider.shutdown(), loggerProvider.shutdown()]);
    },
  };
}
