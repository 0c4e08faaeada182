import { secretOnly } from '../static-fields.ts';

// bearer: the secret is the token, sent as `Authorization: Bearer` unless inject says otherwise.
export const bearer = secretOnly('bearer');
