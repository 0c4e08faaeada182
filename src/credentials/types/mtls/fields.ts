import type { GrantTypeFields } from '../type-fields.ts';

// mtls: the credential is the connection itself, a client certificate keyway presents to the
// grant's hosts (client_certificate, or a secret holding certificate and key).

export const mtls = {
  type: 'mtls',
  shape: {},
  secretRequired: false,
  noInject: 'an mtls grant presents a client certificate; it has no inject settings',
  configCheck(grant, fail) {
    if (grant.secret !== undefined && grant.client_certificate !== undefined) {
      fail('secret', 'an mtls grant takes its certificate from client_certificate or secret, not both');
    }
  },
} satisfies GrantTypeFields<'mtls'>;
