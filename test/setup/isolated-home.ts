// Every test file runs with HOME pointing at a fresh temporary folder, so nothing a test starts (the
// CLI in a child that inherits HOME, a helper that forgot --home) can reach the developer's real
// ~/.keyway. Tests that care about the home still pass --home or KEYWAY_HOME explicitly.
import { mkdtempSync, rmSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll } from 'vitest';

// npm's download cache is not keyway's: the packed-install test keeps using the real one (offline).
process.env['npm_config_cache'] ??= join(homedir(), '.npm');
process.env['HOME'] = mkdtempSync(join(tmpdir(), 'keyway-test-user-'));
delete process.env['KEYWAY_HOME'];

// keyway's host-wide registry of listeners (/tmp/keyway-listeners) is shared by every keyway on the
// machine: each test file gets its own, and a test about the shared one removes this variable.
// Removed after the file's tests, with whatever entries a killed child left in it.
const listeners = mkdtempSync(join(tmpdir(), 'keyway-test-listeners-'));
process.env['KEYWAY_LISTENERS_DIR'] = listeners;
afterAll(() => rmSync(listeners, { recursive: true, force: true }));
