import { oauthType } from '../oauth-fields.ts';

// client_credentials: tokens keyway asks for with the client alone.
export const clientCredentials = oauthType('client_credentials');
