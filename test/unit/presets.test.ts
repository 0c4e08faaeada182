import { describe, expect, it } from 'vitest';
import { parseDomainPatternStrict as parseDomainPattern } from '../../src/config/domain-breadth.ts';
import { PROVIDER_PRESETS, findPreset } from '../../src/credentials/providers/presets.ts';
import type { ProviderPreset } from '../../src/credentials/providers/presets.ts';

const entries = Object.entries(PROVIDER_PRESETS);

const urlsOf = (preset: ProviderPreset): [string, string][] => {
  const urls: [string, string][] = [
    ['token_url', preset.token_url],
    ['docs', preset.docs],
  ];
  if (preset.authorize_url !== undefined) urls.push(['authorize_url', preset.authorize_url]);
  if (preset.refresh_url !== undefined) urls.push(['refresh_url', preset.refresh_url]);
  if (preset.revoke_url !== undefined) urls.push(['revoke_url', preset.revoke_url]);
  if (preset.device_authorization_url !== undefined) urls.push(['device_authorization_url', preset.device_authorization_url]);
  return urls;
};

describe('provider presets', () => {
  it('ships at least 20 presets, including the common services', () => {
    expect(entries.length).toBeGreaterThanOrEqual(20);
    for (const slug of [
      'google',
      'github',
      'gitlab',
      'slack',
      'microsoft',
      'atlassian',
      'notion',
      'linear',
      'dropbox',
      'box',
      'zoom',
      'spotify',
      'salesforce',
      'hubspot',
      'xero',
      'quickbooks',
      'reddit',
      'discord',
      'figma',
      'asana',
    ]) {
      expect(PROVIDER_PRESETS[slug], slug).toBeDefined();
    }
  });

  it('uses slugs of the grant-id form', () => {
    for (const [slug] of entries) expect(slug).toMatch(/^[a-z0-9][a-z0-9-]*$/);
  });

  it('gives every URL as https, and every one parses', () => {
    for (const [slug, preset] of entries) {
      for (const [field, url] of urlsOf(preset)) {
        const parsed = new URL(url); // throws on a malformed URL
        expect(parsed.protocol, `${slug}.${field}`).toBe('https:');
        expect(parsed.username + parsed.password, `${slug}.${field}`).toBe('');
        expect(parsed.hostname, `${slug}.${field}`).not.toBe('');
      }
    }
  });

  it('names the provider documentation each preset was taken from', () => {
    for (const [slug, preset] of entries) {
      expect(preset.docs, slug).toMatch(/^https:\/\//);
      expect(preset.name.trim(), slug).not.toBe('');
    }
  });

  it('limits every domain to an exact host or *. plus one registrable domain', () => {
    for (const [slug, preset] of entries) {
      expect(preset.domains.length, slug).toBeGreaterThan(0);
      for (const domain of preset.domains) {
        const parsed = parseDomainPattern(domain);
        expect(typeof parsed, `${slug}: ${domain}: ${String(parsed)}`).toBe('object');
        if (typeof parsed === 'string') continue;
        expect(parsed.port, `${slug}: ${domain}`).toBeUndefined();
        expect(domain, `${slug}: ${domain}`).toBe(domain.toLowerCase());
      }
    }
  });

  it('has well-formed quirk fields', () => {
    for (const [slug, preset] of entries) {
      expect(['basic', 'body'], slug).toContain(preset.client_auth);
      expect(['form', 'json'], slug).toContain(preset.token_body);
      for (const value of [...Object.values(preset.extra_params), ...Object.values(preset.authorize_params)]) {
        expect(typeof value, slug).toBe('string');
      }
      for (const scope of preset.scopes) expect(scope, slug).toMatch(/^\S+$/);
      for (const env of preset.env_names) expect(env, slug).toMatch(/^[A-Z][A-Z0-9_]*$/);
      if (preset.redirect_port !== undefined) {
        expect(Number.isInteger(preset.redirect_port) && preset.redirect_port > 0 && preset.redirect_port < 65536, slug).toBe(true);
      }
    }
  });

  it('records the refresh-token quirks the providers document', () => {
    expect(PROVIDER_PRESETS.google?.authorize_params).toMatchObject({ access_type: 'offline', prompt: 'consent' });
    expect(PROVIDER_PRESETS.microsoft?.scopes).toContain('offline_access');
    expect(PROVIDER_PRESETS.atlassian?.scopes).toContain('offline_access');
    expect(PROVIDER_PRESETS.atlassian?.authorize_params.audience).toBe('api.atlassian.com');
    expect(PROVIDER_PRESETS.dropbox?.authorize_params.token_access_type).toBe('offline');
    expect(PROVIDER_PRESETS.reddit?.authorize_params.duration).toBe('permanent');
    expect(PROVIDER_PRESETS.github?.env_names).toEqual(['GITHUB_TOKEN', 'GH_TOKEN']);
  });

  it('is frozen', () => {
    expect(Object.isFrozen(PROVIDER_PRESETS)).toBe(true);
  });
});

describe('findPreset', () => {
  it('finds a preset by slug, case-insensitively', () => {
    expect(findPreset('spotify')?.slug).toBe('spotify');
    expect(findPreset('Spotify')?.slug).toBe('spotify');
    expect(findPreset('Google')?.slug).toBe('google');
    expect(findPreset('GITHUB')?.preset).toBe(PROVIDER_PRESETS.github);
  });

  it('accepts env-style and suffixed forms', () => {
    expect(findPreset('SPOTIFY_OAUTH')?.slug).toBe('spotify');
    expect(findPreset('spotify-oauth')?.slug).toBe('spotify');
    expect(findPreset('spotify_oauth2')?.slug).toBe('spotify');
    expect(findPreset(' GitLab ')?.slug).toBe('gitlab');
  });

  it('finds a preset by its display name', () => {
    expect(findPreset('QuickBooks Online')?.slug).toBe('quickbooks');
    expect(findPreset('Bitbucket Cloud')?.slug).toBe('bitbucket');
  });

  it('returns undefined for unknown names and object-prototype keys', () => {
    expect(findPreset('nope')).toBeUndefined();
    expect(findPreset('')).toBeUndefined();
    expect(findPreset('constructor')).toBeUndefined();
    expect(findPreset('__proto__')).toBeUndefined();
    expect(findPreset('toString')).toBeUndefined();
  });
});
