import { z } from 'zod';
import type { GrantTypeFields } from '../type-fields.ts';
import { renewFloorText } from '../values.ts';

// google_service_account (minter.ts): the scopes its tokens
// are asked for, and the user it acts as (domain-wide delegation).

export const googleServiceAccount = {
  type: 'google_service_account',
  shape: {
    scopes: z.array(z.string().min(1).max(500).regex(/^\S+$/, 'expected a scope without spaces')).min(1, 'expected at least one scope').max(100).optional(),
    subject: z
      .string()
      .regex(/^[^\s@]{1,64}@[^\s@]{1,255}$/, 'expected the email address of the user to act as')
      .optional(),
    renew_floor: renewFloorText,
  },
  secretRequired: false,
  check(grant, fail) {
    if (grant['scopes'] === undefined) fail('scopes', 'a google_service_account grant needs the scopes its tokens are for');
  },
} satisfies GrantTypeFields<'google_service_account'>;
