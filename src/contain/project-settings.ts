import { isAbsolute, relative, sep } from 'node:path';

// What a person's tools read on their own in a folder they open or enter, as opposed to what runs
// only when they run it (contain/change-judge.ts). A plain `claude`, `gemini` or `codex` in a folder
// reads its settings there (.claude/settings.json with its hooks, .mcp.json, .gemini/settings.json,
// .codex/config.toml), an editor runs `.vscode/tasks.json` with `runOn: folderOpen`, direnv and mise
// run `.envrc` and mise.toml's `[hooks] enter` on `cd`, and next year's tools will add their own
// dot-folders. They name a hidden file almost always, so the guard is default deny: a change whose
// path below its writable folder has a hidden name (one starting with `.`, `..foo` too) is kept
// aside, unless every hidden name on it is one the judge understands to be inert (INERT_HIDDEN).

/**
 * Hidden names that are data a tool reads only when the person runs it, and that can name no
 * command, plugin or program (each checked against what reads it):
 * - `.gitignore`, `.gitattributes`: which paths git tracks, and which of the drivers the person's
 *   own git configuration defines apply to a path (an attribute names a filter, diff or merge
 *   driver; its command is only ever in the configuration, which is judged apart).
 * - `.gitkeep`, `.keep`: empty markers that keep a folder in git.
 * - `.editorconfig`: indentation, charset and line endings for an editor; it has no key for a command.
 * - `.dockerignore`, `.npmignore`, `.prettierignore`, `.eslintignore`: lists of paths a tool skips.
 * Left out on purpose: `.gitmodules` (URLs a `git pull` with submodule.recurse fetches, and once
 * `update = !command`), `.github` (workflows run with the repository's secrets on the next push, and
 * instructions an editor's assistant reads on opening the folder), `.nvmrc`, `.node-version`,
 * `.python-version`, `.ruby-version`, `.tool-versions` (read on entering the folder by a version
 * manager's shell hook, they choose the program `node` or `python` runs there; pyenv and rbenv once
 * ran a path named in one, CVE-2022-35861), `.npmrc`, `.prettierrc`, `.eslintrc*`, `.babelrc`
 * (each can name a plugin or script, loaded by an editor's extension on opening the folder).
 */
const INERT_HIDDEN = new Set([
  '.gitignore',
  '.gitattributes',
  '.gitkeep',
  '.keep',
  '.editorconfig',
  '.dockerignore',
  '.npmignore',
  '.prettierignore',
  '.eslintignore',
]);

/**
 * The second part is a list, of plain names read on entering a folder: the hidden rule cannot see
 * them, and the project's plain names are its source, which lands. mise reads `mise.toml`,
 * `mise.local.toml`, `mise.<env>.toml` and `mise/config.toml` on `cd` (`[hooks] enter`, `[env]
 * _.source` run a script), as it reads `.mise.toml`, which the hidden rule keeps. A `mise` folder is
 * kept whole: a link by that name, or a folder renamed to it, is as good as its config.toml.
 */
const READ_ON_ENTRY: readonly RegExp[] = [/^mise(\..+)?\.toml$/, /^mise$/];

/**
 * What a coding agent or an editor reads on its own when it starts in a folder, under plain names:
 * instructions (Claude Code's CLAUDE.md and CLAUDE.local.md, AGENTS.md and Codex's
 * AGENTS.override.md, GEMINI.md, QWEN.md, CRUSH.md), which steer the person's next session there,
 * and configurations that name programs it starts there (opencode's and crush's MCP servers, a VS
 * Code workspace's tasks with `runOn: folderOpen`).
 */
const AGENT_INSTRUCTIONS = /^((claude(\.local)?|agents?(\.override)?|gemini|qwen|crush)\.md|opencode\.jsonc?|crush\.json|.+\.code-workspace)$/;

/**
 * What npm, pnpm and yarn keep at the top of node_modules, and the build tools' caches there (vite's
 * pre-bundled dependencies, prisma's generated client): admitted there, as the packages below are.
 */
const PACKAGE_MANAGER_OWN = new Set([
  '.package-lock.json',
  '.bin',
  '.cache',
  '.modules.yaml',
  '.pnpm',
  '.yarn-integrity',
  '.yarn-state.yml',
  '.vite',
  '.vite-temp',
  '.prisma',
]);

/**
 * Why a change is something a tool reads on its own on opening or entering a folder, or undefined.
 * Not looked at: what is in a `.git` (git's own rules judge it), what is below a package in a
 * `node_modules` folder, and the package managers' own names at its top (PACKAGE_MANAGER_OWN).
 * npm writes hidden names in every install there (`.package-lock.json`, `.bin`, `.cache`, a
 * package's own dotfiles); a package is code the person runs when they run it, like its index.js,
 * and nobody opens or enters it as a project (`node_modules/.bin` is judged by PATH's rule). Any
 * other hidden name at the top of node_modules (`node_modules/.claude`) is judged as anywhere. A link or a folder named like
 * one of these, made elsewhere, is judged by its own name.
 * `stateFolder`: the writable folder is a hidden folder of a home the person named (`~/.claude`,
 * which keeps `.claude.json` and `.credentials.json`): an application's state, handed over whole.
 */
export function readOnEntry(root: string, path: string, stateFolder: boolean): string | undefined {
  if (stateFolder) return undefined;
  const rel = relative(root, path);
  if (rel === '' || rel === '..' || rel.startsWith(`..${sep}`) || isAbsolute(rel)) return undefined;
  const parts = rel.split(sep);
  for (const [i, part] of parts.entries()) {
    if (part.toLowerCase() === '.git') return undefined;
    // Below a package in node_modules, or npm's own files at its top: a project's name there is its own.
    if (part === 'node_modules' && i + 1 < parts.length && (!parts[i + 1]!.startsWith('.') || PACKAGE_MANAGER_OWN.has(parts[i + 1]!))) return undefined;
    if (part.startsWith('.') && !INERT_HIDDEN.has(part))
      return `a hidden file a tool may read on its own when you open or enter the folder (${part}): kept for review`;
    if (READ_ON_ENTRY.some((re) => re.test(part.toLowerCase())))
      return `mise reads ${part} on its own when you enter the folder, and runs the hooks it names: kept for review`;
    if (i === parts.length - 1 && AGENT_INSTRUCTIONS.test(part.toLowerCase()))
      return `a coding agent or editor reads ${part} on its own when it starts in this folder, and may do what it says: kept for review`;
  }
  return undefined;
}
