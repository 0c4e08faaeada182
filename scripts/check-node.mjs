// npm scripts must run on Node 22.19 or later (package.json engines). This repo pins Node 24 as a
// devDependency (npm puts node_modules/.bin first on PATH); an install with --ignore-scripts leaves
// that binary out and the scripts would silently run on an older system Node. Fail loudly instead.
// The floor is src/cli/node-too-old.ts's FIRST_SUPPORTED_NODE (test/unit/node-too-old.test.ts keeps them equal).
const FLOOR = { major: 22, minor: 19 };
const [major, minor] = process.versions.node.split('.').map(Number);
if (major < FLOOR.major || (major === FLOOR.major && minor < FLOOR.minor)) {
  // The same way out as src/cli/node-too-old.ts gives the `keyway` command (which this plain script,
  // run before any build, cannot import).
  console.error(
    `keyway needs Node.js ${FLOOR.major}.${FLOOR.minor} or later, but npm runs this on ${process.version} (${process.execPath}): ` +
      "run `npm install` here (not with --ignore-scripts) to get this checkout's pinned Node 24, " +
      `or install Node ${FLOOR.major}.${FLOOR.minor}+ (https://nodejs.org/en/download, or \`nvm install ${FLOOR.major}\`) and put it first on PATH`,
  );
  process.exit(1);
}
