// The README's recipes are config a reader pastes: each block must load as keyway config, and its
// `keyway grants add` line must make the same grant, putting the key where that API expects it.
// The contents line at the top must reach every section (Operate among them) and nothing else.
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, posix } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import { parseConfig } from '../../src/config/load.ts';
import { DOC_PAGES, docsSection, README } from '../helpers/docs.ts';
import { cleanEnv, makeHome, runCli } from '../helpers/keyway.ts';

const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));

/** Where each API takes its key: what the grant must inject, as `grants list` describes it. */
const EXPECTED: Record<string, { host: string; inject: string }> = {
  GitHub: { host: 'api.github.com', inject: 'header Authorization: Bearer {secret}' },
  OpenAI: { host: 'api.openai.com', inject: 'header Authorization: Bearer {secret}' },
  Anthropic: { host: 'api.anthropic.com', inject: 'header x-api-key: {secret}' },
  'Google API key': { host: 'generativelanguage.googleapis.com', inject: 'header x-goog-api-key: {secret}' },
  Slack: { host: 'slack.com', inject: 'header Authorization: Bearer {secret}' },
  Stripe: { host: 'api.stripe.com', inject: 'header Authorization: Bearer {secret}' },
};

interface Recipe {
  name: string;
  yaml: string;
  command: string;
}

function section(title: string): string {
  const found = docsSection(title);
  if (found === undefined) throw new Error(`the docs have no section ${title}`);
  return found;
}

/** Each `**Name**` paragraph of the Recipes section with its yaml block and its `keyway grants add` line. */
function recipes(): Recipe[] {
  return section('Recipes')
    .split(/\n(?=\*\*[^*]+\*\*)/)
    .slice(1)
    .map((part) => {
      const name = /^\*\*([^*]+)\*\*/.exec(part)![1]!.replace(/\s*\(.*$/, '');
      const yaml = /```yaml\n([\s\S]*?)```/.exec(part)?.[1] ?? '';
      const command = /^`(keyway grants add [^`]+)`$/m.exec(part)?.[1] ?? '';
      return { name, yaml, command };
    });
}

/** A shell-like split of a one-line command: words, "double-quoted" words kept whole. */
function words(command: string): string[] {
  return [...command.matchAll(/"([^"]*)"|(\S+)/g)].map((m) => m[1] ?? m[2]!);
}

describe("the README's recipes", () => {
  const found = recipes();

  it('cover GitHub, OpenAI, Anthropic, a Google API key, Slack and Stripe, each with a config block and a command', () => {
    expect(found.map((r) => r.name)).toEqual(Object.keys(EXPECTED));
    for (const r of found) {
      expect(r.yaml, r.name).not.toBe('');
      expect(r.command, r.name).not.toBe('');
    }
  });

  it.each(Object.keys(EXPECTED))('%s: the block loads as keyway config, one grant on its API host', (name) => {
    const recipe = found.find((r) => r.name === name)!;
    const config = parseConfig(parse(recipe.yaml), makeHome());
    const grants = Object.values(config.grants);
    expect(grants).toHaveLength(1);
    expect(grants[0]!.domains.map((d) => d.text)).toEqual([EXPECTED[name]!.host]);
  });

  it('make the same grants from the config and from the commands, each injecting where its API expects the key', async () => {
    const env = cleanEnv({ KEYWAY_MASTER_KEY: randomBytes(32).toString('base64') });
    // All the blocks in one config file, as a reader who took several would have it.
    const fromConfig = makeHome();
    mkdirSync(join(fromConfig, 'config'));
    const merged = { grants: Object.assign({}, ...found.map((r) => (parse(r.yaml) as { grants: object }).grants)) };
    writeFileSync(join(fromConfig, 'config', 'keyway.yaml'), stringify(merged));
    const fromCommands = makeHome();
    for (const r of found) {
      const [keyway, ...args] = words(r.command);
      expect(keyway).toBe('keyway');
      const added = await runCli([...args, '--home', fromCommands], env);
      expect(added.code, `${r.command}: ${added.stderr}`).toBe(0);
    }
    const list = async (home: string) => {
      const result = await runCli(['grants', 'list', '--json', '--home', home], env);
      expect(result.code, result.stderr).toBe(0);
      const grants = JSON.parse(result.stdout) as Array<{ id: string; type: string; domains: string[]; inject: string }>;
      return grants.map(({ id, type, domains, inject }) => ({ id, type, domains, inject })).sort((a, b) => a.id.localeCompare(b.id));
    };
    const configured = await list(fromConfig);
    expect(await list(fromCommands)).toEqual(configured);
    const byHost = Object.fromEntries(configured.map((g) => [g.domains[0], g.inject]));
    for (const { host, inject } of Object.values(EXPECTED)) expect(byHost[host], host).toBe(inject);
  });
});

describe("the README's signed requests", () => {
  it('has an AWS and an HMAC example, each loading as keyway config with its signing settings', () => {
    const blocks = [...section('Signed requests').matchAll(/```yaml\n([\s\S]*?)```/g)].map((m) => m[1]!);
    expect(blocks).toHaveLength(2);
    const grants = blocks.flatMap((yaml) => Object.values(parseConfig(parse(yaml), makeHome()).grants));
    expect(grants.map((g) => g.type)).toEqual(['aws_sigv4', 'hmac']);
    expect(grants[0]).toMatchObject({ regions: ['eu-west-1'], services: ['s3', 'dynamodb'] });
    const hmac = grants[1]!;
    expect(hmac.type === 'hmac' ? hmac.sign : undefined).toBeDefined();
  });
});

describe("the README's client certificates and JWTs", () => {
  it('has an mtls and a jwt example, each loading as keyway config', () => {
    const blocks = [...section('Client certificates and JWTs').matchAll(/```yaml\n([\s\S]*?)```/g)].map((m) => m[1]!);
    const grants = blocks.flatMap((yaml) => Object.values(parseConfig(parse(yaml), makeHome()).grants));
    expect(grants.map((g) => g.type)).toEqual(['mtls', 'jwt']);
    expect(grants[0]!.client_certificate).toBeDefined();
  });
});

describe("the README's map of the docs", () => {
  const slug = (heading: string) =>
    heading
      .toLowerCase()
      .replace(/[^a-z0-9 _-]/g, '')
      .replace(/ /g, '-');
  const anchors = (markdown: string) => new Set([...markdown.matchAll(/^#+ (.+)$/gm)].map((m) => slug(m[1]!)));

  it('links every docs page, the operations page (the dashboard) among them, before the development notes', () => {
    const map = docsSection('Documentation') ?? '';
    const linked = new Set([...map.matchAll(/\]\(docs\/([a-z0-9-]+\.md)\)/g)].map((m) => m[1]));
    const pages = [...DOC_PAGES.keys()].filter((name) => name !== 'README.md');
    expect([...linked].sort()).toEqual(pages.sort());
    expect(map).toMatch(/\[Operations\]\(docs\/operations\.md\): The dashboard/);
    expect(README.indexOf('\n## Documentation\n')).toBeLessThan(README.indexOf('\n## Development\n'));
  });

  it('every link between the README and the docs reaches a file, and a heading where it names one', () => {
    const files = new Map<string, string>([['README.md', README], ...[...DOC_PAGES].map(([name, text]) => [`docs/${name}`, text] as [string, string])]);
    const broken: string[] = [];
    for (const [file, text] of files) {
      const prose = text.replace(/```[\s\S]*?```/g, '');
      for (const [, target] of prose.matchAll(/\[[^\]]*\]\(([^)\s]+)\)/g)) {
        if (/^(https?:|mailto:)/.test(target!)) continue;
        const [path = '', anchor] = target!.split('#');
        const resolved = path === '' ? file : posix.normalize(posix.join(posix.dirname(file), path));
        if (!existsSync(join(REPO_ROOT, resolved))) broken.push(`${file}: ${target} (no such file)`);
        else if (anchor && resolved.endsWith('.md') && !anchors(files.get(resolved) ?? readFileSync(join(REPO_ROOT, resolved), 'utf8')).has(anchor))
          broken.push(`${file}: ${target} (no such heading)`);
      }
    }
    expect(broken).toEqual([]);
  });
});
