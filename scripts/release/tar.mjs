// A tar writer for image layers that gives the same bytes for the same entries: entries sorted by
// path, one fixed mtime, uid/gid and modes as given (never the build machine's), no user or group
// names, ustar headers only (no PAX records carrying times). Node has no tar of its own, and GNU
// tar's output depends on its version and flags; this one is short enough to read.

const BLOCK = 512;

/**
 * @typedef {{ path: string, type: 'dir' | 'file' | 'symlink', mode: number, uid?: number,
 *   gid?: number, data?: Buffer, linkname?: string }} TarEntry
 */

/** Splits a path for ustar's name (100 bytes) and prefix (155 bytes) fields, or throws. */
function splitName(path) {
  if (Buffer.byteLength(path) <= 100) return { name: path, prefix: '' };
  for (let cut = path.indexOf('/'); cut !== -1; cut = path.indexOf('/', cut + 1)) {
    const prefix = path.slice(0, cut);
    const name = path.slice(cut + 1);
    if (Buffer.byteLength(prefix) <= 155 && Buffer.byteLength(name) <= 100 && name !== '') return { name, prefix };
  }
  throw new Error(`tar: path too long for a ustar header: ${path}`);
}

function field(header, offset, length, text) {
  const bytes = Buffer.from(text);
  if (bytes.length > length) throw new Error(`tar: field too long: ${text}`);
  bytes.copy(header, offset);
}

function octal(header, offset, length, value) {
  field(header, offset, length, `${value.toString(8).padStart(length - 1, '0')}\0`);
}

/** One entry's header block. */
function header(entry, mtime) {
  const h = Buffer.alloc(BLOCK, 0);
  const path = entry.type === 'dir' ? `${entry.path}/` : entry.path;
  const { name, prefix } = splitName(path);
  field(h, 0, 100, name);
  octal(h, 100, 8, entry.mode & 0o7777);
  octal(h, 108, 8, entry.uid ?? 0);
  octal(h, 116, 8, entry.gid ?? 0);
  octal(h, 124, 12, entry.type === 'file' ? entry.data.length : 0);
  octal(h, 136, 12, mtime);
  h.fill(0x20, 148, 156); // the checksum is computed with its own field as spaces
  field(h, 156, 1, { file: '0', symlink: '2', dir: '5' }[entry.type]);
  if (entry.type === 'symlink') field(h, 157, 100, entry.linkname);
  field(h, 257, 8, 'ustar\u000000');
  octal(h, 329, 8, 0); // device major/minor: none
  octal(h, 337, 8, 0);
  field(h, 345, 155, prefix);
  let sum = 0;
  for (const byte of h) sum += byte;
  field(h, 148, 8, `${sum.toString(8).padStart(6, '0')}\0 `);
  return h;
}

/**
 * The tar archive of `entries` (no leading slash in paths; parents need not be listed), sorted by
 * path, every entry with `mtime` (seconds since the epoch). Two entries with one path throw.
 * @param {TarEntry[]} entries
 * @param {number} mtime
 */
export function tarArchive(entries, mtime) {
  const sorted = [...entries].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  const parts = [];
  for (let i = 0; i < sorted.length; i++) {
    const entry = sorted[i];
    if (entry.path.startsWith('/') || entry.path === '') throw new Error(`tar: not a relative path: '${entry.path}'`);
    if (i > 0 && sorted[i - 1].path === entry.path) throw new Error(`tar: two entries at ${entry.path}`);
    parts.push(header(entry, mtime));
    if (entry.type === 'file') {
      parts.push(entry.data);
      const pad = (BLOCK - (entry.data.length % BLOCK)) % BLOCK;
      if (pad > 0) parts.push(Buffer.alloc(pad, 0));
    }
  }
  parts.push(Buffer.alloc(BLOCK * 2, 0)); // the end: two empty blocks
  return Buffer.concat(parts);
}
