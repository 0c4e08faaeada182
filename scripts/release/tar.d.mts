// Types for tar.mjs (a plain script), for the tests that use it.
export interface TarEntry {
  path: string;
  type: 'dir' | 'file' | 'symlink';
  mode: number;
  uid?: number;
  gid?: number;
  data?: Buffer;
  linkname?: string;
}
export declare function tarArchive(entries: readonly TarEntry[], mtime: number): Buffer;
