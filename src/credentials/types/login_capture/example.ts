import type { KindExample } from '../example.ts';

export const loginCaptureExample: KindExample<'login_capture'> = {
  // Its tokens are captured from the agent's own login: no secret is ever set.
  secret: null,
  blank: ' ',
  fields: { capture: { endpoints: [{ host: 'login.example.com', path: '/oauth/token' }] } },
  describes: 'placeholders the agent got at login, resolved where it puts them',
};
