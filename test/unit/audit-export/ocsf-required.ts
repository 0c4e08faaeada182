// The attributes OCSF 1.2.0 requires of the classes keyway writes, as the schema publishes them
// (github.com/ocsf/ocsf-schema at tag v1.2.0): `"requirement": "required"` in
// events/base_event.json (metadata, severity_id), includes/classification.json (activity_id,
// category_uid, class_uid, type_uid), includes/occurrence.json (time), events/application/api.json
// (API Activity 6003: actor, api, src_endpoint), events/network/network.json (Network Activity 4001:
// dst_endpoint, src_endpoint); the objects' own required attributes and at_least_one constraints
// (objects/metadata.json: product, version; product.json: vendor_name; api.json: operation;
// http_response.json: code; actor.json, user.json, network_endpoint.json, url.json: at_least_one).
// Written from the schema's files, not from keyway's formatter: it returns every problem found.

type Obj = Record<string, unknown>;

const BASE = ['metadata', 'severity_id', 'activity_id', 'category_uid', 'class_uid', 'type_uid', 'time'];
const CLASSES: Record<number, { category: number; required: string[]; activities: number[] }> = {
  6003: { category: 6, required: ['actor', 'api', 'src_endpoint'], activities: [0, 1, 2, 3, 4, 99] },
  4001: { category: 4, required: ['dst_endpoint', 'src_endpoint'], activities: [0, 1, 2, 3, 4, 5, 6, 7, 99] },
};
const AT_LEAST_ONE: Record<string, string[]> = {
  actor: ['process', 'user', 'invoked_by', 'session', 'app_name', 'app_uid'],
  user: ['account', 'name', 'uid'],
  network_endpoint: ['ip', 'uid', 'name', 'hostname', 'svc_name', 'instance_uid', 'interface_uid', 'interface_name'],
  url: ['url_string', 'path'],
};
const SEVERITY_IDS = [0, 1, 2, 3, 4, 5, 6, 99];
const STATUS_IDS = [0, 1, 2, 99];

const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

function atLeastOne(problems: string[], where: string, value: unknown, kind: string): void {
  if (!isObj(value)) return void problems.push(`${where} is not an object`);
  if (!AT_LEAST_ONE[kind]!.some((k) => value[k] !== undefined && value[k] !== null)) problems.push(`${where} has none of ${AT_LEAST_ONE[kind]!.join(', ')}`);
}

export function ocsfProblems(event: Obj): string[] {
  const problems: string[] = [];
  for (const key of BASE) if (event[key] === undefined || event[key] === null) problems.push(`missing ${key}`);
  const cls = CLASSES[event['class_uid'] as number];
  if (cls === undefined) return [...problems, `class_uid ${String(event['class_uid'])} is not one checked here`];
  for (const key of cls.required) if (event[key] === undefined) problems.push(`missing ${key} (required by class ${String(event['class_uid'])})`);
  if (event['category_uid'] !== cls.category) problems.push(`category_uid ${String(event['category_uid'])} is not ${cls.category}`);
  if (!cls.activities.includes(event['activity_id'] as number)) problems.push(`activity_id ${String(event['activity_id'])} is not in the class's enum`);
  if (event['type_uid'] !== (event['class_uid'] as number) * 100 + (event['activity_id'] as number))
    problems.push('type_uid is not class_uid * 100 + activity_id');
  if (!SEVERITY_IDS.includes(event['severity_id'] as number)) problems.push('severity_id out of its enum');
  if (event['status_id'] !== undefined && !STATUS_IDS.includes(event['status_id'] as number)) problems.push('status_id out of its enum');
  if (typeof event['time'] !== 'number' || !Number.isInteger(event['time'])) problems.push('time is not a timestamp_t (integer milliseconds)');
  const metadata = event['metadata'];
  if (isObj(metadata)) {
    if (typeof metadata['version'] !== 'string') problems.push('metadata.version missing');
    const product = metadata['product'];
    if (!isObj(product) || typeof product['vendor_name'] !== 'string') problems.push('metadata.product.vendor_name missing');
  }
  if (event['actor'] !== undefined) {
    atLeastOne(problems, 'actor', event['actor'], 'actor');
    const user = (event['actor'] as Obj)['user'];
    if (user !== undefined) atLeastOne(problems, 'actor.user', user, 'user');
  }
  if (event['api'] !== undefined && (!isObj(event['api']) || typeof event['api']['operation'] !== 'string')) problems.push('api.operation missing');
  for (const key of ['src_endpoint', 'dst_endpoint']) if (event[key] !== undefined) atLeastOne(problems, key, event[key], 'network_endpoint');
  const response = event['http_response'];
  if (response !== undefined && (!isObj(response) || typeof response['code'] !== 'number')) problems.push('http_response.code missing');
  const request = event['http_request'];
  if (isObj(request) && request['url'] !== undefined) atLeastOne(problems, 'http_request.url', request['url'], 'url');
  return problems;
}
