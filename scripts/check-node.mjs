// npm scripts must run on Node 22 or later. This repo pins Node 24 as a devDependency (npm puts
// node_modules/.bin first on PATH); an install with --ignore-scripts leaves that binary out and
// the scripts would silently run on an older system Node. Fail loudly instead.
const major = Number(process.versions.node.split('.')[0]);
if (major < 22) {
  console.error(
    `keyway needs Node.js 22 or later, but this is ${process.version}. ` +
      'Run "npm install" (without --ignore-scripts) to get the pinned Node 24, or install Node 22+.',
  );
  process.exit(1);
}
