// What a 64-bit little-endian ELF executable needs to start: its loader (PT_INTERP) and the shared
// libraries its dynamic section names (DT_NEEDED). oci-image.mjs checks the base layer has each, so
// an executable built against a library the image lacks (Node 26 needs libatomic, 24 did not) is
// refused at build time, naming it, instead of failing when the container starts.

const PT_INTERP = 3;
const SHT_DYNAMIC = 6;
const DT_NEEDED = 1n;

function cString(bytes, at) {
  const end = bytes.indexOf(0, at);
  return bytes.toString('latin1', at, end === -1 ? bytes.length : end);
}

/** `{ interpreter, needed }` of an ELF64 LE file; a static one has neither. */
export function elfNeeds(bytes) {
  if (bytes.readUInt32BE(0) !== 0x7f454c46 || bytes[4] !== 2 || bytes[5] !== 1) throw new Error('elf-needs: not a 64-bit little-endian ELF file');
  const phoff = Number(bytes.readBigUInt64LE(0x20));
  const shoff = Number(bytes.readBigUInt64LE(0x28));
  const [phentsize, phnum, shentsize, shnum] = [0x36, 0x38, 0x3a, 0x3c].map((at) => bytes.readUInt16LE(at));
  let interpreter;
  for (let i = 0; i < phnum; i++) {
    const ph = phoff + i * phentsize;
    if (bytes.readUInt32LE(ph) === PT_INTERP) interpreter = cString(bytes, Number(bytes.readBigUInt64LE(ph + 8)));
  }
  const needed = [];
  for (let i = 0; i < shnum; i++) {
    const sh = shoff + i * shentsize;
    if (bytes.readUInt32LE(sh + 4) !== SHT_DYNAMIC) continue;
    const [offset, size] = [Number(bytes.readBigUInt64LE(sh + 24)), Number(bytes.readBigUInt64LE(sh + 32))];
    const strtab = Number(bytes.readBigUInt64LE(shoff + bytes.readUInt32LE(sh + 40) * shentsize + 24));
    for (let at = offset; at + 16 <= offset + size; at += 16) {
      const tag = bytes.readBigInt64LE(at);
      if (tag === 0n) break;
      if (tag === DT_NEEDED) needed.push(cString(bytes, strtab + Number(bytes.readBigUInt64LE(at + 8))));
    }
  }
  return { interpreter, needed };
}
