import { oauthType } from '../oauth-fields.ts';

// oauth2: tokens a person consented to, refreshed by keyway at the provider's token endpoint.
export const oauth2 = oauthType('oauth2');
