import { z } from 'zod';
import { httpsUrl, secretRef } from './values.ts';

// approvals.slack: pending approvals posted to a Slack channel with buttons, answered there by the
// people mapped in `approvers` (Slack user id -> the name keyway records as who decided). The
// tokens and the signing secret are references (env:NAME, file:PATH), never the values.
// Socket Mode needs the app-level token (xapp-…); HTTP interactivity needs the admin listener
// reachable from Slack (admin.allowed_hosts names the public host).

const SLACK_USER_ID = /^[UW][A-Z0-9]{2,20}$/;
const SLACK_CHANNEL = /^[CGD][A-Z0-9]{2,20}$/;

export const slackSchema = z
  .strictObject({
    bot_token: secretRef,
    signing_secret: secretRef,
    app_token: secretRef.optional(),
    channel: z.string().regex(SLACK_CHANNEL, 'expected a Slack channel id such as C0123ABCD (not its #name: a name can be renamed)'),
    mode: z.enum(['socket', 'http']).default('socket'),
    approvers: z
      .record(
        z.string().regex(SLACK_USER_ID, 'expected a Slack user id such as U0123ABCD'),
        z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$/, 'expected a name (letters, digits, . _ @ -)'),
      )
      .refine((map) => Object.keys(map).length > 0, 'name at least one approver: with none, nobody could answer in Slack'),
    // Where the Web API is (a Slack-compatible gateway, or a test's stand-in).
    api_url: httpsUrl.default('https://slack.com/api/'),
    // At most this many messages a minute; past it, one summary message counts the rest.
    max_messages_per_minute: z.number().int().min(1).max(600).default(20),
  })
  .refine((s) => s.mode !== 'socket' || s.app_token !== undefined, {
    message: 'mode: socket needs app_token (an app-level token, xapp-…)',
    path: ['app_token'],
  });

export type SlackConfig = z.output<typeof slackSchema>;
