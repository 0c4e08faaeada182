// npm scripts must run on Node 22 or later. This repo pins Node 24 as a devDependency (npm puts
// node_modules/.bin first on PATH); an install with --ignore-scripts leaves that binary out and
// the scripts would silently run on an older system Node. Fail loudly instead.
const major = Number(process.versions.node.split('.')[0]);
if (major < 22) {
  // The same way out as src/cli/node-too-old.ts gives the `keyway` command (which this plain script,
  // run before any build, cannot import).
  console.error(
    `keyway needs Node.js 22 or later, but npm runs this on ${process.version} (${process.execPath}): ` +
      "run `npm install` here (not with --ignore-scripts) to get this checkout's pinned Node 24, " +
      'or install Node 22+ (https://nodejs.org/en/download, or `nvm install 22`) and put it first on PATH',
  );
  process.exit(1);
}
