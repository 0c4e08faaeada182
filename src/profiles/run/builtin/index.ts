import { CLAUDE_CODE } from './claude-code.ts';
import { CODEX } from './codex.ts';
import { GEMINI_CLI } from './gemini-cli.ts';

// The profiles keyway ships, as the same shape a user's profiles/NAME.yaml has (schema.ts reads
// both). What each holds was found from the installed CLI itself, each file says how.

export const BUILTIN_PROFILES: Readonly<Record<string, unknown>> = Object.freeze({
  'claude-code': CLAUDE_CODE,
  codex: CODEX,
  'gemini-cli': GEMINI_CLI,
});
