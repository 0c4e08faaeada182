// deploy/helm/keyway: the templates and rendered/ are what scripts/chart/generate.mjs writes (no
// drift); the templates, read back with the subset of Helm they use, give the rendered objects; the
// rendered manifests validate against Kubernetes' schemas (kubernetes-models) and hold together
// (keyway's config loads, ports and uids agree, no policy admits everything); bad values are refused.
// helm itself is not run: it cannot be had here (docs/install.md).
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Deployment } from 'kubernetes-models/apps/v1';
import { NetworkPolicy } from 'kubernetes-models/networking.k8s.io/v1';
import { ConfigMap, Service } from 'kubernetes-models/v1';
import { describe, expect, it } from 'vitest';
import { parse, parseAllDocuments } from 'yaml';
import { CHART_DIR, chartFiles, chartValues, driftedFiles, type Json, mergeValues, RELEASE, renderChart } from '../../scripts/chart/generate.mjs';
import { chartPackage } from '../../scripts/release/chart-package.mjs';
import { parseConfig } from '../../src/config/load.ts';
import { REPO } from '../helpers/deploy-files.ts';
import { renderSubset } from '../helpers/helm-subset.ts';

type Obj = { [key: string]: Json };
type Container = Obj & { name: string; env?: Obj[]; securityContext?: Obj; args?: string[] };

const VERSION = (JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')) as { version: string }).version;
const LAYOUTS = { default: chartValues(), sidecar: chartValues('values-sidecar.yaml') };

/** What helm would render, read from the templates with the subset reader. */
function fromTemplates(values: Json): Obj[] {
  const files = [...chartFiles()].filter(([path]) => path.startsWith('templates/'));
  return files.flatMap(([, text]) =>
    parseAllDocuments(renderSubset(text, values, RELEASE))
      .map((d) => d.toJSON() as Obj | null)
      .filter((o): o is Obj => o !== null),
  );
}

function renderedFile(name: string): Obj[] {
  return parseAllDocuments(readFileSync(join(CHART_DIR, 'rendered', name), 'utf8')).map((d) => d.toJSON() as Obj);
}

const podOf = (objects: Obj[]) => ((objects.find((o) => o['kind'] === 'Deployment')!['spec'] as Obj)['template'] as Obj)['spec'] as Obj;
const containersOf = (objects: Obj[]) => {
  const pod = podOf(objects);
  return [...((pod['initContainers'] ?? []) as Container[]), ...(pod['containers'] as Container[])];
};
const envOf = (c: Container, name: string) => c.env?.find((e) => e['name'] === name)?.['value'];

describe('deploy/helm/keyway', () => {
  it('is exactly what scripts/chart/generate.mjs writes (run it after changing the chart or its values)', () => {
    expect(driftedFiles()).toEqual([]);
  });

  it('names the package version as the chart, app and image version', () => {
    const chart = parse(readFileSync(join(CHART_DIR, 'Chart.yaml'), 'utf8')) as Obj;
    expect([chart['version'], chart['appVersion']]).toEqual([VERSION, VERSION]);
    expect(LAYOUTS.default['image']).toBe(`keyway-proxy:${VERSION}`);
  });

  for (const [layout, values] of Object.entries(LAYOUTS)) {
    describe(`rendered/${layout}.yaml`, () => {
      const objects = renderedFile(`${layout}.yaml`);

      it('is what the templates give, read with the subset of Helm they use', () => {
        expect(fromTemplates(values)).toEqual(objects);
        // A template whose documents are all off renders nothing at all (not a comment-only document).
        for (const [path, text] of chartFiles()) {
          if (!path.startsWith('templates/')) continue;
          const out = renderSubset(text, values, RELEASE).trim();
          expect(out === '' || out.startsWith('---\n# '), `${path}: ${out.slice(0, 60)}`).toBe(true);
        }
        expect(renderChart(values).map((d) => d.object)).toEqual(objects);
      });

      it("validates against Kubernetes' schemas", () => {
        const models = { Deployment, ConfigMap, Service, NetworkPolicy } as const;
        for (const object of objects) {
          const Model = models[object['kind'] as keyof typeof models];
          expect(Model, `a model for ${String(object['kind'])}`).toBeDefined();
          expect(() => new Model(object as never).validate()).not.toThrow();
        }
      });

      it("holds a config keyway loads, and runs keyway as uid 1000 from the image's entrypoint", () => {
        const configMap = objects.find((o) => o['kind'] === 'ConfigMap')!;
        const config = parseConfig(parse((configMap['data'] as Obj)['keyway.yaml'] as string), '/app');
        const keyway = containersOf(objects).find((c) => c.name === 'keyway')!;
        expect(keyway['command']).toBeUndefined();
        expect(keyway.args![0]).toBe('start');
        expect(keyway.securityContext!['runAsUser']).toBe(1000);
        expect(keyway['image']).toBe(`keyway-proxy:${VERSION}`);
        expect(podOf(objects)['automountServiceAccountToken']).toBe(false);
        const template = (objects.find((o) => o['kind'] === 'Deployment')!['spec'] as Obj)['template'] as Obj;
        const admin = (keyway['ports'] as Obj[]).find((p) => p['name'] === 'admin')!['containerPort'];
        expect(((template['metadata'] as Obj)['annotations'] as Obj)['prometheus.io/port']).toBe(String(admin));
        expect(keyway.args).toContain(`0.0.0.0:${String(admin)}`);
        if (layout === 'default') expect(config.store.backend).toBe('postgres');
        if (layout === 'sidecar') {
          const rules = containersOf(objects).find((c) => c.name === 'keyway-rules')!;
          const port = (address: { port: number } | undefined) => String(address?.port);
          expect(envOf(rules, 'KEYWAY_UID')).toBe('1000');
          expect(envOf(rules, 'TLS_PORT')).toBe(port(config.proxy.transparent?.listen));
          expect(envOf(rules, 'HTTP_PORT')).toBe(port(config.proxy.transparent?.http_listen));
          expect(envOf(rules, 'DNS_PORT')).toBe(port(config.proxy.transparent?.dns_listen));
          const agent = containersOf(objects).find((c) => c.name === 'agent')!;
          expect(agent.securityContext!['runAsUser']).not.toBe(1000);
          expect((agent.env ?? []).map((e) => e['name']).filter((n) => /PROXY|KEY/i.test(String(n)))).toEqual([]);
        }
      });

      it('has NetworkPolicies that name every peer: no empty from, to or selector', () => {
        const policies = objects.filter((o) => o['kind'] === 'NetworkPolicy');
        expect(policies.length).toBeGreaterThan(0);
        for (const policy of policies) {
          const spec = policy['spec'] as Obj;
          expect(Object.keys((spec['podSelector'] as Obj)['matchLabels'] as Obj).length).toBeGreaterThan(0);
          for (const rule of [...((spec['ingress'] ?? []) as Obj[]), ...((spec['egress'] ?? []) as Obj[])]) {
            const peers = (rule['from'] ?? rule['to']) as Obj[] | undefined;
            expect(peers?.length ?? 0, JSON.stringify(rule)).toBeGreaterThan(0);
            expect(peers!.every((p) => Object.keys(p).length > 0)).toBe(true);
          }
        }
      });
    });
  }

  it('refuses a layout it does not know and a policy that would admit everything, in the templates as here', () => {
    const bad = [
      mergeValues(LAYOUTS.default, { layout: 'daemonset' }),
      mergeValues(LAYOUTS.default, { networkPolicy: { database: [] } }),
      mergeValues(LAYOUTS.sidecar, { networkPolicy: { prometheus: [] } }),
      // null, as in a values file: Helm merges an empty map into the default, and null removes it.
      mergeValues(LAYOUTS.default, { networkPolicy: { clientLabel: null } }),
    ];
    for (const values of bad) {
      expect(() => renderChart(values)).toThrow(/^chart: /);
      expect(() => fromTemplates(values)).toThrow(/^helm-subset fail: /);
    }
    // With the policies off, an empty database selector is nobody's business.
    expect(() => renderChart(mergeValues(LAYOUTS.default, { networkPolicy: { enabled: false, database: [] } }))).not.toThrow();
  });

  it("refuses a sidecar agent uid that is not an integer of 1 or more, or is keyway's 1000, in the templates as here", () => {
    // deploy/transparent's rules let uid 1000 out untouched: an agent running as it skips keyway.
    for (const uid of [1000, 0, -5, 1001.5, '1001', true, null]) {
      const values = mergeValues(LAYOUTS.sidecar, { sidecar: { agent: { uid } } });
      expect(() => renderChart(values), String(uid)).toThrow(/^chart: sidecar\.agent\.uid: /);
      expect(() => fromTemplates(values), String(uid)).toThrow(/^helm-subset fail: sidecar\.agent\.uid: /);
    }
    for (const uid of [1, 999, 1001, 1_000_680_000]) {
      const values = mergeValues(LAYOUTS.sidecar, { sidecar: { agent: { uid } } });
      expect(renderChart(values).map((d) => d.object)).toEqual(fromTemplates(values));
      const agent = containersOf(fromTemplates(values)).find((c) => c.name === 'agent')!;
      expect(agent.securityContext!['runAsUser']).toBe(uid);
    }
    // The shared layout runs no agent: its uid is nobody's business there.
    expect(() => renderChart(mergeValues(LAYOUTS.default, { sidecar: { agent: { uid: 1000 } } }))).not.toThrow();
  });

  it('reads only the subset of Helm the templates use: anything else throws, unread', () => {
    expect(() => renderSubset('{{ include "keyway.name" . }}', {}, RELEASE)).toThrow(/not read here/);
    expect(() => renderSubset('{{- if eq .Values.layout "shared" }}\na: 1\n', { layout: 'shared' }, RELEASE)).toThrow(/without its `end`/);
    expect(() => renderSubset('a: {{ .Values.missing }}', {}, RELEASE)).toThrow(/no value at/);
    expect(renderSubset('a:\n{{- toYaml .Values.b | nindent 2 }}\n', { b: { c: [1] } }, RELEASE)).toBe('a:\n  c:\n    - 1\n');
  });

  it('packages as `helm package` would: the chart under keyway/, without rendered/, the same bytes each time', () => {
    const archive = chartPackage(1_700_000_000);
    expect(chartPackage(1_700_000_000).equals(archive)).toBe(true);
    const file = join(mkdtempSync(join(tmpdir(), 'keyway-chart-')), 'chart.tgz');
    writeFileSync(file, archive);
    const names = execFileSync('tar', ['-tzf', file], { encoding: 'utf8' }).trim().split('\n');
    expect(names).toContain('keyway/Chart.yaml');
    expect(names).toContain('keyway/values.yaml');
    expect(names).toContain('keyway/templates/sidecar-deployment.yaml');
    expect(names.every((n) => n.startsWith('keyway/'))).toBe(true);
    expect(names.filter((n) => n.includes('rendered'))).toEqual([]);
  });

  it('merges values as helm does: maps key by key, lists replaced whole', () => {
    expect(mergeValues({ a: { b: 1, c: [1, 2] }, d: 1 }, { a: { c: [3] } })).toEqual({ a: { b: 1, c: [3] }, d: 1 });
  });
});
