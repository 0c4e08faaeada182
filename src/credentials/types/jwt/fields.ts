import { secretOnly } from '../static-fields.ts';

// jwt: a token the user has; its exp is read, and it is never sent past it.
export const jwt = secretOnly('jwt');
