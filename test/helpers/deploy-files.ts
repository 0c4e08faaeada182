// Reads deploy/ (compose.yaml, kubernetes/*.yaml) and the Dockerfile the way Docker and Kubernetes
// would read the parts keyway depends on, so the tests can check them against each other and run
// what they describe. Only the forms these files use are understood; anything else throws, so a new
// form in the manifests makes a test fail instead of being silently misread.
import { readFileSync, readdirSync } from 'node:fs';
import { posix } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse, parseAllDocuments } from 'yaml';

export const REPO = fileURLToPath(new URL('../../', import.meta.url));
export const DEPLOY = `${REPO}deploy/`;
export const KUBERNETES = `${DEPLOY}kubernetes/`;

export type Json = Record<string, unknown>;

/** Parses one YAML file, failing on any YAML error or warning (a duplicate key, a bad indent). */
export function readYaml(path: string): Json {
  const docs = readYamlDocuments(path);
  if (docs.length !== 1) throw new Error(`${path}: expected one YAML document, found ${docs.length}`);
  return docs[0]!;
}

export function readYamlDocuments(path: string): Json[] {
  const docs = parseAllDocuments(readFileSync(path, 'utf8'), { uniqueKeys: true });
  if (!Array.isArray(docs)) throw new Error(`${path}: not a YAML stream`);
  return docs.map((doc, i) => {
    const problems = [...doc.errors, ...doc.warnings];
    if (problems.length > 0) throw new Error(`${path} document ${i}: ${problems.map((p) => p.message).join('; ')}`);
    return doc.toJS() as Json;
  });
}

/** Every Kubernetes object under deploy/kubernetes, with the file it came from. */
export function kubernetesObjects(): Array<{ file: string; object: Json }> {
  return readdirSync(KUBERNETES)
    .filter((f) => f.endsWith('.yaml') && f !== 'kustomization.yaml')
    .flatMap((file) => readYamlDocuments(`${KUBERNETES}${file}`).map((object) => ({ file, object })));
}

export function kubernetesObject(kind: string, name: string): Json {
  const found = kubernetesObjects().filter(({ object }) => object['kind'] === kind && meta(object)['name'] === name);
  if (found.length !== 1) throw new Error(`expected one ${kind} ${name} in deploy/kubernetes, found ${found.length}`);
  return found[0]!.object;
}

export function meta(object: Json): Json {
  return object['metadata'] as Json;
}

// ---- Dockerfile ----

export interface ImageSpec {
  workdir: string;
  env: Record<string, string>;
  entrypoint: string[];
  cmd: string[];
  /** USER of the final stage, as written (a name or a uid); root when none. */
  user: string;
  /** COPY lines of the final stage: `from` is a stage name, or undefined for the build context. */
  copies: Array<{ from: string | undefined; src: string; dest: string }>;
}

/** The final stage of the Dockerfile: what a container of the image starts from. */
export function readDockerfile(path = `${REPO}Dockerfile`): ImageSpec {
  const lines = readFileSync(path, 'utf8')
    .replace(/\\\n/g, ' ')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'));
  const lastFrom = lines.findLastIndex((l) => /^FROM\s/i.test(l));
  const image: ImageSpec = { workdir: '/', env: {}, entrypoint: [], cmd: [], user: 'root', copies: [] };
  for (const line of lines.slice(lastFrom + 1)) {
    const [, instruction = '', rest = ''] = /^(\w+)\s+(.*)$/.exec(line) ?? [];
    switch (instruction.toUpperCase()) {
      case 'WORKDIR':
        image.workdir = rest;
        break;
      case 'USER':
        image.user = rest;
        break;
      case 'ENV':
        for (const pair of rest.split(/\s+/)) {
          const eq = pair.indexOf('=');
          if (eq <= 0) throw new Error(`Dockerfile: ENV in KEY=VALUE form only, got "${pair}"`);
          image.env[pair.slice(0, eq)] = pair.slice(eq + 1);
        }
        break;
      case 'ENTRYPOINT':
      case 'CMD': {
        const argv = JSON.parse(rest) as unknown;
        if (!Array.isArray(argv)) throw new Error(`Dockerfile: ${instruction} in exec (JSON) form only`);
        image[instruction.toUpperCase() === 'CMD' ? 'cmd' : 'entrypoint'] = argv.map(String);
        break;
      }
      case 'COPY': {
        const words = rest.split(/\s+/);
        const from = words[0]?.startsWith('--from=') ? words.shift()!.slice(7) : undefined;
        const dest = words.pop()!;
        for (const src of words) image.copies.push({ from, src, dest });
        break;
      }
      default:
        break; // RUN, VOLUME, EXPOSE: nothing a process run can take from them
    }
  }
  return image;
}

/**
 * Where a file of the image comes from in this checkout: the final stage's COPY from the build
 * context that put it there (a script the image runs, such as deploy/transparent/apply.sh).
 */
export function checkoutPath(image: ImageSpec, path: string): string {
  for (const { from, src, dest } of image.copies) {
    if (from !== undefined) continue;
    const target = posix.resolve(image.workdir, dest.endsWith('/') ? posix.join(dest, posix.basename(src)) : dest);
    if (path === target || path.startsWith(`${target}/`)) return `${REPO}${src}${path.slice(target.length)}`;
  }
  throw new Error(`the image has no ${path} copied from the checkout`);
}

/** The users of the base image (node:24-slim's /etc/passwd) by name. */
const BASE_IMAGE_USERS: Record<string, number> = { root: 0, node: 1000 };

/** A uid from a container's user as compose or the Dockerfile write it (`1001`, `1001:1001`, `node`). */
export function userId(user: string): number {
  const name = user.split(':')[0]!;
  const uid = /^\d+$/.test(name) ? Number(name) : BASE_IMAGE_USERS[name];
  if (uid === undefined) throw new Error(`no uid known for the user ${user}`);
  return uid;
}

// ---- compose ----

/** Compose's interpolation of ${NAME}, ${NAME:?message} and ${NAME:-default} from the .env values. */
export function interpolate(text: string, vars: Record<string, string>): string {
  return text.replace(/\$\{([A-Za-z_][A-Za-z0-9_]*)(?::([?-])([^}]*))?\}/g, (_all, name: string, op?: string, arg?: string) => {
    const value = vars[name];
    if (value !== undefined && value !== '') return value;
    if (op === '?') throw new Error(`compose: ${name}: ${arg}`);
    return op === '-' ? (arg ?? '') : '';
  });
}

export function readCompose(vars: Record<string, string>): Json {
  return parse(interpolate(readFileSync(`${DEPLOY}compose.yaml`, 'utf8'), vars), { uniqueKeys: true }) as Json;
}

// ---- Kubernetes containers ----

export interface PodContainer {
  name: string;
  image: string;
  args?: string[];
  command?: string[];
  restartPolicy?: string;
  env?: Array<{ name: string; value?: string; valueFrom?: { secretKeyRef?: { name: string; key: string } } }>;
  volumeMounts?: Array<{ name: string; mountPath: string; readOnly?: boolean }>;
  ports?: Array<{ name: string; containerPort: number }>;
  readinessProbe?: { httpGet?: { path: string; port: string | number } };
  startupProbe?: { httpGet?: { path: string; port: string | number } };
  securityContext?: { runAsUser?: number; runAsNonRoot?: boolean; capabilities?: { drop?: string[]; add?: string[] } };
}

/**
 * A container's environment as the kubelet gives it: secretKeyRef values looked up, then $(NAME)
 * expanded from the variables listed before it (a later or unknown one is left as written).
 */
export function kubernetesEnv(container: PodContainer, secrets: Record<string, Record<string, string>>): Record<string, string> {
  const env: Record<string, string> = {};
  for (const entry of container.env ?? []) {
    if (entry.value !== undefined) {
      env[entry.name] = entry.value.replace(/\$\(([A-Za-z_][A-Za-z0-9_]*)\)/g, (all, name: string) => env[name] ?? all);
      continue;
    }
    const ref = entry.valueFrom?.secretKeyRef;
    const value = ref ? secrets[ref.name]?.[ref.key] : undefined;
    if (value === undefined) throw new Error(`${container.name}: env ${entry.name} names no known Secret key`);
    env[entry.name] = value;
  }
  return env;
}

// ---- the image's name ----

/** Where the image is named: the Dockerfile's comments, and every file under deploy/ (the manifests and their README). */
export function imageNamingFiles(): string[] {
  const under = (dir: string): string[] =>
    readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? under(`${dir}${e.name}/`) : [`${dir}${e.name}`]));
  return [`${REPO}Dockerfile`, ...under(DEPLOY).filter((f) => /\.(ya?ml|md)$/.test(f))];
}

/**
 * Every spelling of the image's name in a text: `keyway-proxy` with or without a `:tag`. The npm
 * tarball's name (`keyway-proxy-0.1.0.tgz`) is not an image reference and is not matched.
 */
export function imageReferences(text: string): string[] {
  return [...text.matchAll(/(?<![\w./-])keyway-proxy(?::[\w.-]+)?(?![\w-])/g)].map((m) => m[0].replace(/\.$/, ''));
}
