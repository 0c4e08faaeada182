// The run settings of the Dockerfile's last stage (ENV, WORKDIR, EXPOSE, VOLUME, ENTRYPOINT, CMD),
// read from the Dockerfile itself so the daemonless image (oci-image.mjs) and `docker build` start
// keyway the same way and cannot drift. Only the forms the Dockerfile uses are read: ENV KEY=VALUE
// pairs without spaces in values, JSON arrays for ENTRYPOINT, CMD and VOLUME; anything else throws.
import { readFileSync } from 'node:fs';

/** The last stage's settings from the Dockerfile's text. */
export function parseDockerfileEntry(text) {
  const lines = text.replace(/\\\n/g, ' ').split('\n');
  const lastFrom = lines.findLastIndex((l) => /^FROM\s/i.test(l));
  const entry = { env: {}, workdir: '/', exposed: [], volumes: [], entrypoint: undefined, cmd: undefined, user: undefined };
  for (const line of lines.slice(lastFrom + 1)) {
    const m = /^([A-Z]+)\s+(.*)$/.exec(line.trim());
    if (m === null) continue;
    const [, instruction, rest] = m;
    if (instruction === 'ENV') {
      for (const pair of rest.trim().split(/\s+/)) {
        const eq = pair.indexOf('=');
        if (eq <= 0) throw new Error(`Dockerfile: ENV in a form not read here: ${line}`);
        entry.env[pair.slice(0, eq)] = pair.slice(eq + 1);
      }
    } else if (instruction === 'WORKDIR') entry.workdir = rest.trim();
    else if (instruction === 'EXPOSE') entry.exposed.push(...rest.trim().split(/\s+/));
    else if (instruction === 'USER') entry.user = rest.trim();
    else if (instruction === 'VOLUME') entry.volumes.push(...JSON.parse(rest));
    else if (instruction === 'ENTRYPOINT') entry.entrypoint = JSON.parse(rest);
    else if (instruction === 'CMD') entry.cmd = JSON.parse(rest);
  }
  if (!Array.isArray(entry.entrypoint) || !Array.isArray(entry.cmd)) throw new Error('Dockerfile: no ENTRYPOINT or CMD in JSON form in its last stage');
  return entry;
}

/** The same, from a file. */
export function readDockerfileEntry(path) {
  return parseDockerfileEntry(readFileSync(path, 'utf8'));
}
