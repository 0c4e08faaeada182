// A file of its own, without zod: the proxy's capture settings read it at every table build, and
// the grant's schema (fields.ts, with zod) is the config loader's alone (docs/perf/startup.md).

/** The answer fields captured when the grant names none: what an OAuth 2.0 / OpenID token endpoint returns. */
export const TOKEN_FIELDS = ['access_token', 'refresh_token', 'id_token'] as const;
