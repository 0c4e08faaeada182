import { z } from 'zod';
import { httpsUrlOk, renewFloorText } from '../values.ts';
import type { GrantTypeFields } from '../type-fields.ts';

// github_app (minter.ts): the API that mints installation tokens (GitHub
// Enterprise Server: https://HOST/api/v3), and what to narrow each token to.

export const githubApp = {
  type: 'github_app',
  shape: {
    api_url: z.string().refine(httpsUrlOk, 'expected an https:// URL with no user, query or fragment, such as https://api.github.com').optional(),
    repositories: z
      .array(z.string().regex(/^[\w.-]{1,100}$/, 'expected a repository name (without its owner)'))
      .min(1)
      .max(500)
      .optional(),
    permissions: z.record(z.string().regex(/^[a-z_]{1,64}$/, 'expected a permission name such as contents'), z.enum(['read', 'write', 'admin'])).optional(),
    renew_floor: renewFloorText,
  },
  secretRequired: false,
  noInject: 'a github_app grant puts its installation token in Authorization itself; it has no inject settings',
} satisfies GrantTypeFields<'github_app'>;
