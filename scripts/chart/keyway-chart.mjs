// The chart deploy/helm/keyway, described once (template-model.mjs writes it as Helm templates and
// as rendered manifests). Two layouts, chosen by `layout`:
//   shared   keyway as its own Deployment of `replicas` behind a Service, the store on PostgreSQL,
//            agents elsewhere in the cluster pointing HTTPS_PROXY at it (deploy/README.md, "Other
//            ways to close it", 1);
//   sidecar  one agent Deployment with keyway beside it, the rules container first (as
//            deploy/kubernetes/deployment.yaml).
// Both with a NetworkPolicy (networkPolicy.enabled). What each setting does is in values.yaml.
import { name, spread, text, value, yamlOf } from './template-model.mjs';

/** keyway's uid in the image; deploy/transparent's rules let this uid alone out untouched. */
export const KEYWAY_UID = 1000;
const selector = (component) => ({ 'app.kubernetes.io/name': component, 'app.kubernetes.io/instance': name() });
const labels = (component) => ({ ...selector(component), 'app.kubernetes.io/part-of': 'keyway', 'app.kubernetes.io/managed-by': 'Helm' });

/** The rules container: deploy/transparent/apply.sh, root with NET_ADMIN alone, once. */
function rulesContainer() {
  return {
    name: 'keyway-rules',
    image: value('image'),
    imagePullPolicy: value('imagePullPolicy'),
    command: ['/bin/sh', '/app/deploy/transparent/apply.sh'],
    env: [
      { name: 'KEYWAY_UID', value: String(KEYWAY_UID) },
      { name: 'TLS_PORT', value: text(value('sidecar.ports.tls')) },
      { name: 'HTTP_PORT', value: text(value('sidecar.ports.http')) },
      { name: 'DNS_PORT', value: text(value('sidecar.ports.dns')) },
    ],
    securityContext: {
      runAsUser: 0,
      runAsNonRoot: false,
      allowPrivilegeEscalation: false,
      readOnlyRootFilesystem: true,
      capabilities: { drop: ['ALL'], add: ['NET_ADMIN'] },
    },
    resources: { requests: { cpu: '10m', memory: '16Mi' }, limits: { memory: '64Mi' } },
  };
}

/** keyway's container; `listen` is the proxy's address, `extra` the layout's own env and fields. */
function keywayContainer({ listen, env = [], extra = {} }) {
  return {
    name: 'keyway',
    image: value('image'),
    imagePullPolicy: value('imagePullPolicy'),
    ...extra,
    args: ['start', '--listen', listen, '--admin-listen', text('0.0.0.0:', value('admin.port'))],
    env: [
      { name: 'KEYWAY_MASTER_KEY_FILE', value: '/run/secrets/keyway/master-key' },
      { name: 'KEYWAY_ADMIN_TOKEN_FILE', value: '/run/secrets/keyway/admin-token' },
      // Every replica presents leaves from the one CA in the Secret: the entrypoint imports it.
      { name: 'KEYWAY_CA_CERT_FILE', value: '/run/secrets/keyway-ca/ca.pem' },
      { name: 'KEYWAY_CA_KEY_FILE', value: '/run/secrets/keyway-ca/ca-key.pem' },
      ...env,
      spread(value('extraEnv')),
    ],
    ports: [{ name: 'admin', containerPort: value('admin.port') }],
    startupProbe: { httpGet: { path: '/readyz', port: 'admin' }, periodSeconds: 1, failureThreshold: 30 },
    readinessProbe: { httpGet: { path: '/readyz', port: 'admin' }, periodSeconds: 10 },
    livenessProbe: { httpGet: { path: '/healthz', port: 'admin' }, periodSeconds: 20, failureThreshold: 3 },
    volumeMounts: [
      { name: 'keyway-config', mountPath: '/app/config', readOnly: true },
      { name: 'keyway-secrets', mountPath: '/run/secrets/keyway', readOnly: true },
      { name: 'keyway-ca', mountPath: '/run/secrets/keyway-ca', readOnly: true },
      { name: 'keyway-certs', mountPath: '/app/certs' },
      { name: 'keyway-ca-public', mountPath: '/app/ca-public' },
      { name: 'keyway-data', mountPath: '/app/data' },
      { name: 'keyway-logs', mountPath: '/app/logs' },
      { name: 'keyway-tmp', mountPath: '/tmp' },
    ],
    securityContext: {
      runAsUser: KEYWAY_UID,
      runAsGroup: KEYWAY_UID,
      allowPrivilegeEscalation: false,
      readOnlyRootFilesystem: true,
      capabilities: { drop: ['ALL'] },
    },
    resources: value('resources'),
  };
}

function podSpec({ initContainers, containers }) {
  return {
    automountServiceAccountToken: false,
    securityContext: { runAsNonRoot: true, fsGroup: KEYWAY_UID, seccompProfile: { type: 'RuntimeDefault' } },
    ...(initContainers ? { initContainers } : {}),
    containers,
    volumes: [
      { name: 'keyway-config', configMap: { name: name('-config') } },
      { name: 'keyway-secrets', secret: { secretName: value('secrets.name'), defaultMode: 0o440 } },
      { name: 'keyway-ca', secret: { secretName: value('secrets.caName'), defaultMode: 0o440 } },
      { name: 'keyway-certs', emptyDir: {} },
      { name: 'keyway-ca-public', emptyDir: {} },
      { name: 'keyway-data', emptyDir: {} },
      { name: 'keyway-logs', emptyDir: {} },
      { name: 'keyway-tmp', emptyDir: {} },
    ],
  };
}

function deployment(component, spec) {
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name: component === 'keyway' ? name() : name(`-${component}`), labels: labels(component) },
    spec: {
      replicas: value('replicas'),
      selector: { matchLabels: selector(component) },
      template: { metadata: { labels: labels(component), annotations: value('podAnnotations') }, spec },
    },
  };
}

const configMap = {
  apiVersion: 'v1',
  kind: 'ConfigMap',
  metadata: { name: name('-config'), labels: labels('keyway') },
  data: { 'keyway.yaml': yamlOf(value('config')) },
};

const dnsEgress = {
  to: value('networkPolicy.dns'),
  ports: [
    { protocol: 'UDP', port: 53 },
    { protocol: 'TCP', port: 53 },
  ],
};
const publicEgress = { to: [{ ipBlock: value('networkPolicy.publicAddresses') }], ports: [{ protocol: 'TCP', port: 443 }] };
const prometheusIngress = { from: value('networkPolicy.prometheus'), ports: [{ protocol: 'TCP', port: value('admin.port') }] };

/** The shared layout's objects. */
const shared = [
  {
    file: 'configmap.yaml',
    comment:
      "keyway's config (values: config), mounted as the folder /app/config. keyway does not watch it:\nafter an upgrade that changes it, `kubectl exec deploy/RELEASE -- keyway reload` in each pod, or restart.",
    object: configMap,
  },
  {
    file: 'shared-deployment.yaml',
    comment:
      'keyway as its own Deployment: `replicas` pods on one PostgreSQL store (KEYWAY_DATABASE_URL, from the\nSecret), one CA. Agents point HTTPS_PROXY at the Service with their key.',
    object: deployment(
      'keyway',
      podSpec({
        containers: [
          keywayContainer({
            listen: text('0.0.0.0:', value('proxy.port')),
            env: [{ name: 'KEYWAY_DATABASE_URL', valueFrom: { secretKeyRef: { name: value('secrets.name'), key: 'database-url' } } }],
            extra: {},
          }),
        ],
      }),
    ),
  },
  {
    file: 'shared-service.yaml',
    comment: "The proxy's address for agents: http://AGENT:KEY@RELEASE:PORT as HTTPS_PROXY.",
    object: {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: name(), labels: labels('keyway') },
      spec: {
        selector: selector('keyway'),
        ports: [{ name: 'proxy', port: value('proxy.port'), targetPort: value('proxy.port'), protocol: 'TCP' }],
      },
    },
  },
  {
    file: 'shared-networkpolicy.yaml',
    when: { enabled: 'networkPolicy.enabled' },
    comment:
      "keyway's pods: the proxy port from pods labelled as clients (networkPolicy.clientLabel), the admin\nport from Prometheus only; out: DNS, PostgreSQL, and public addresses on 443.",
    object: {
      apiVersion: 'networking.k8s.io/v1',
      kind: 'NetworkPolicy',
      metadata: { name: name(), labels: labels('keyway') },
      spec: {
        podSelector: { matchLabels: selector('keyway') },
        policyTypes: ['Ingress', 'Egress'],
        ingress: [
          { from: [{ podSelector: { matchLabels: value('networkPolicy.clientLabel') } }], ports: [{ protocol: 'TCP', port: value('proxy.port') }] },
          prometheusIngress,
        ],
        egress: [
          dnsEgress,
          { to: value('networkPolicy.database'), ports: [{ protocol: 'TCP', port: value('networkPolicy.databasePort') }] },
          publicEgress,
          spread(value('networkPolicy.extraEgress')),
        ],
      },
    },
  },
  {
    file: 'shared-networkpolicy.yaml',
    when: { enabled: 'networkPolicy.enabled' },
    comment:
      "The clients' side: a pod labelled as a client may reach keyway's proxy port and DNS, nothing\nelse (unless another policy of yours also selects it: policies add up).",
    object: {
      apiVersion: 'networking.k8s.io/v1',
      kind: 'NetworkPolicy',
      metadata: { name: name('-clients'), labels: labels('keyway') },
      spec: {
        podSelector: { matchLabels: value('networkPolicy.clientLabel') },
        policyTypes: ['Egress'],
        egress: [{ to: [{ podSelector: { matchLabels: selector('keyway') } }], ports: [{ protocol: 'TCP', port: value('proxy.port') }] }, dnsEgress],
      },
    },
  },
];

/** The sidecar layout's objects. */
const sidecar = [
  { file: 'configmap.yaml', comment: shared[0].comment, object: configMap },
  {
    file: 'sidecar-deployment.yaml',
    comment:
      "One agent pod with keyway as a native sidecar (Kubernetes 1.29+): keyway-rules applies the redirect\nrules once, keyway starts and is ready, then the agent (values: sidecar.agent) runs with no proxy\nsetting and no key, trusting keyway's CA.",
    object: deployment(
      'agent',
      podSpec({
        initContainers: [rulesContainer(), keywayContainer({ listen: text('127.0.0.1:', value('proxy.port')), extra: { restartPolicy: 'Always' } })],
        containers: [
          {
            name: 'agent',
            image: value('sidecar.agent.image'),
            command: value('sidecar.agent.command'),
            env: [
              { name: 'NODE_EXTRA_CA_CERTS', value: '/keyway-ca/ca.pem' },
              { name: 'SSL_CERT_FILE', value: '/keyway-ca/bundle.pem' },
              { name: 'REQUESTS_CA_BUNDLE', value: '/keyway-ca/bundle.pem' },
              { name: 'CURL_CA_BUNDLE', value: '/keyway-ca/bundle.pem' },
              { name: 'GIT_SSL_CAINFO', value: '/keyway-ca/bundle.pem' },
              spread(value('sidecar.agent.env')),
            ],
            volumeMounts: [{ name: 'keyway-ca-public', mountPath: '/keyway-ca', readOnly: true }],
            securityContext: { runAsUser: value('sidecar.agent.uid'), allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] } },
            resources: value('sidecar.agent.resources'),
          },
        ],
      }),
    ),
  },
  {
    file: 'sidecar-networkpolicy.yaml',
    when: { enabled: 'networkPolicy.enabled' },
    comment:
      "The agent pod (agent and keyway share its network, so this is both's): in, Prometheus to the admin\nport only; out, DNS, public addresses on 443, and networkPolicy.extraEgress (a database). The\nrules inside the pod are what force the agent through keyway; this is the layer outside.",
    object: {
      apiVersion: 'networking.k8s.io/v1',
      kind: 'NetworkPolicy',
      metadata: { name: name('-agent'), labels: labels('agent') },
      spec: {
        podSelector: { matchLabels: selector('agent') },
        policyTypes: ['Ingress', 'Egress'],
        ingress: [prometheusIngress],
        egress: [dnsEgress, publicEgress, spread(value('networkPolicy.extraEgress'))],
      },
    },
  },
];

/** Every document, with its template file and the condition it is rendered under. */
export const CHART_DOCUMENTS = [
  ...shared.map((d) => ({ ...d, when: { layout: 'shared', ...d.when } })),
  ...sidecar.map((d) => ({ ...d, when: { layout: 'sidecar', ...d.when } })),
];
