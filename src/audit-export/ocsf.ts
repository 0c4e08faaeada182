// OCSF 1.2.0 (https://schema.ocsf.io/1.2.0/): each exported line as one event of a class whose
// required attributes it fills (test/unit/audit-export/ocsf-required.ts checks them, as the schema
// publishes them).
//
// - A request (any line with a method, and an approval's lines): API Activity, class 6003 (category
//   6, Application Activity). activity_id from the method: Create (POST), Read (GET, HEAD, OPTIONS),
//   Update (PUT, PATCH), Delete (DELETE), Other (99) for the rest.
// - An operator's change (decision admin): API Activity 6003 too (a call to keyway's own admin API
//   or CLI), api.operation the action (`grants.create`), activity_id from its verb.
// - A tunnel (decision tunnel, or a refused CONNECT): Network Activity, class 4001 (category 4),
//   activity Close (2: the line is written when the tunnel ends) or Refuse (5).
// keyway's own chain position (seq, hash) and names OCSF has no attribute for go under `unmapped`.

import { isIP } from 'node:net';
import type { ExportedLine } from './fields.ts';

export const OCSF_VERSION = '1.2.0';

const API_ACTIVITY = 6003;
const NETWORK_ACTIVITY = 4001;

const API_ACTIVITIES: Record<number, string> = { 1: 'Create', 2: 'Read', 3: 'Update', 4: 'Delete', 99: 'Other' };
const NETWORK_ACTIVITIES: Record<number, string> = { 2: 'Close', 5: 'Refuse' };
const SEVERITIES: Record<number, string> = { 1: 'Informational', 3: 'Medium', 4: 'High' };
const STATUSES: Record<number, string> = { 0: 'Unknown', 1: 'Success', 2: 'Failure' };

export type OcsfEvent = Record<string, unknown>;

/** One line as an OCSF event; `product` is keyway's version. */
export function toOcsf(line: ExportedLine, productVersion: string): OcsfEvent {
  const tunnel = line.decision === 'tunnel' || (line.method === 'CONNECT' && line.decision !== 'admin');
  return tunnel ? networkActivity(line, productVersion) : apiActivity(line, productVersion);
}

function apiActivity(line: ExportedLine, productVersion: string): OcsfEvent {
  const admin = line.decision === 'admin';
  const activity = admin ? actionActivity(line.action ?? '') : methodActivity(line.method);
  const operation = admin ? (line.action ?? 'admin') : (line.method ?? 'UNKNOWN');
  const event: OcsfEvent = {
    ...classification(API_ACTIVITY, 'API Activity', 6, 'Application Activity', activity, API_ACTIVITIES[activity] ?? 'Other'),
    ...common(line, productVersion),
    actor: actor(line, admin),
    api: { operation, service: { name: admin ? 'keyway' : line.host } },
    src_endpoint: endpointOf(line.client),
    dst_endpoint: { hostname: line.host, port: line.port },
  };
  if (!admin && line.method !== null) {
    const url: Record<string, unknown> = { hostname: line.host, port: line.port };
    if (line.path !== null) url['path'] = line.path;
    event['http_request'] = line.path === null ? { http_method: line.method } : { http_method: line.method, url };
  }
  if (line.status !== null) event['http_response'] = { code: line.status };
  return event;
}

function networkActivity(line: ExportedLine, productVersion: string): OcsfEvent {
  const activity = line.decision === 'tunnel' ? 2 : 5;
  return {
    ...classification(NETWORK_ACTIVITY, 'Network Activity', 4, 'Network Activity', activity, NETWORK_ACTIVITIES[activity] ?? 'Other'),
    ...common(line, productVersion),
    actor: actor(line, false),
    src_endpoint: endpointOf(line.client),
    dst_endpoint: { hostname: line.host, port: line.port },
  };
}

function classification(classUid: number, className: string, categoryUid: number, categoryName: string, activityId: number, activityName: string) {
  return {
    class_uid: classUid,
    class_name: className,
    category_uid: categoryUid,
    category_name: categoryName,
    activity_id: activityId,
    activity_name: activityName,
    type_uid: classUid * 100 + activityId,
  };
}

/** What every event carries: time, severity, status, metadata, and keyway's own fields. */
function common(line: ExportedLine, productVersion: string) {
  const failed = line.decision === 'deny' || line.decision === 'error' || (line.decision === 'admin' && line.code !== null);
  const severity = line.decision === 'error' ? 4 : line.decision === 'deny' ? 3 : 1;
  const status = line.phase === 'sent' ? 0 : failed ? 2 : 1;
  const unmapped: Record<string, unknown> = { seq: line.seq, hash: line.hash, decision: line.decision };
  // An anomaly signal goes here too, as [{name, why}]: keyway's own finding about this very request,
  // which API Activity has no attribute for (enrichments are data from an external source, each
  // with a required `data` object; observables name typed values such as an IP, not a judgement).
  for (const key of [
    'grant',
    'rule',
    'chain',
    'phase',
    'approval',
    'approval_by',
    'approval_id',
    'signal',
    'policy',
    'policy_mode',
    'repeated',
    'replica',
    'duration_ms',
  ] as const) {
    const value = line[key];
    if (value !== undefined && value !== null) unmapped[key] = value;
  }
  const out: Record<string, unknown> = {
    time: Date.parse(line.ts),
    severity_id: severity,
    severity: SEVERITIES[severity],
    status_id: status,
    status: STATUSES[status],
    metadata: { version: OCSF_VERSION, uid: line.id, log_name: 'audit', product: { name: 'keyway', vendor_name: 'keyway', version: productVersion } },
    unmapped,
  };
  if (line.code !== null) out['status_code'] = line.code;
  return out;
}

/** Who acted: the agent (or, for an operator's change, the actor); keyway as the app that saw it. */
function actor(line: ExportedLine, admin: boolean): Record<string, unknown> {
  const who = admin ? (line.actor ?? null) : line.agent;
  return who === null ? { app_name: 'keyway' } : { app_name: 'keyway', user: { name: who, uid: who } };
}

/** The caller: an address, or a name keyway gives (`cli`, a signal). */
function endpointOf(client: string): Record<string, unknown> {
  if (isIP(client) !== 0) return { ip: client };
  return { name: client === '' ? 'unknown' : client };
}

function methodActivity(method: string | null): number {
  switch (method) {
    case 'POST':
      return 1;
    case 'GET':
    case 'HEAD':
    case 'OPTIONS':
      return 2;
    case 'PUT':
    case 'PATCH':
      return 3;
    case 'DELETE':
      return 4;
    default:
      return 99;
  }
}

/** An admin action's verb: `grants.create` creates, `agents.rm` deletes, a reload updates. */
function actionActivity(action: string): number {
  const verb = action.split('.').at(-1) ?? '';
  if (/^(?:create|add|delegate|import_login)$/.test(verb)) return 1;
  if (/^(?:rm|remove|delete|revoke|revoke_lease)$/.test(verb)) return 4;
  return 3;
}
