// The grant types and what each one's secret is, for the dashboard's secret help: read off the
// types themselves (credentials/types/secret-forms.ts), so a type registered there has its help
// here and on the page with no list to keep. Nothing in it is a secret.

import { GRANT_TYPES } from '../../config/index.ts';
import { type SecretForms, secretFormsOf } from '../../credentials/types/secret-forms.ts';
import { jsonResponse } from '../openapi.ts';
import type { Route } from '../router.ts';

const SECRET_SCHEMA = {
  type: 'object',
  properties: {
    shape: { type: 'string', description: 'What the secret is, in the words a refusal uses' },
    line: { type: 'boolean', description: 'It is given as one line (a token, user:password, a PEM)' },
    json: { type: 'array', items: { type: 'string' }, description: 'Each JSON object form, its fields as {"a","b"?}; empty: none' },
    pem: { type: 'boolean', description: 'A JSON form holds a PEM, read however its line breaks were pasted' },
    certificate: { type: 'boolean', description: 'It is a client certificate and key (mtls): listings show the certificate' },
    help: { type: 'string', description: 'All of it in one sentence or two, as the dashboard shows it beside the secret field' },
  },
};

/** The help beside a secret field: the JSON forms where the secret is only JSON, else the shape's own words. */
export function secretHelp(forms: SecretForms): string {
  const said =
    forms.line || forms.json.length === 0 ? sentence(forms.shape) : `JSON: ${forms.json.join(' or ')}${forms.pem ? '; paste the PEMs as they are' : ''}.`;
  return forms.certificate ? `${said} The grant shows its certificate’s subject and expiry, never its key.` : said;
}

/** "a bearer secret is one non-empty line" as a sentence. */
function sentence(text: string): string {
  return `${text.charAt(0).toUpperCase()}${text.slice(1)}${/[.!?]$/.test(text) ? '' : '.'}`;
}

export function grantTypeRoutes(): Route[] {
  return [
    {
      method: 'GET',
      path: '/api/grant-types',
      doc: {
        operationId: 'grant_types.list',
        summary: "Every grant type and what its secret is: the forms it is given in, and the dashboard's help for it",
        tags: ['grants'],
        responses: {
          '200': jsonResponse('The grant types', {
            type: 'object',
            properties: { types: { type: 'array', items: { type: 'object', properties: { type: { type: 'string' }, secret: SECRET_SCHEMA } } } },
          }),
        },
      },
      handle: () => ({
        status: 200,
        body: {
          types: GRANT_TYPES.map((type) => {
            const forms = secretFormsOf(type);
            return { type, secret: { ...forms, help: secretHelp(forms) } };
          }),
        },
      }),
    },
  ];
}
