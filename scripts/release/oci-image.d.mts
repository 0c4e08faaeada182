// Types for oci-image.mjs (a plain script), for the tests that use it.
import type { TarEntry } from './tar.mjs';

export interface DebianPackage {
  name: string;
  version: string;
  arch: string;
  source?: string;
}
export interface ImageConfig {
  created: string;
  architecture: string;
  os: 'linux';
  config: {
    User: string;
    Env: string[];
    Entrypoint: string[];
    Cmd: string[];
    WorkingDir: string;
    ExposedPorts: Record<string, object>;
    Volumes: Record<string, object>;
    Labels: Record<string, string>;
  };
  rootfs: { type: 'layers'; diff_ids: string[] };
}
export interface BuiltImage {
  blobs: Map<string, Buffer>;
  index: { manifests: { digest: string; annotations: Record<string, string> }[] };
  dockerManifest: { Config: string; RepoTags: string[]; Layers: string[] }[];
  name: string;
  packages: DebianPackage[];
  config: ImageConfig;
}
export declare const KEYWAY_UID: number;
export declare const EXECUTABLE_PATH: string;
export declare function elfArchitecture(bytes: Buffer): 'amd64' | 'arm64';
export declare function keywayLayer(executable: Buffer): TarEntry[];
export declare function imageConfig(options: {
  arch: string;
  diffIds: string[];
  version: string;
  commit: string;
  created: string;
  packages: DebianPackage[];
}): ImageConfig;
export declare function buildImage(options: { executable: Buffer; version: string; commit: string; epoch: number; debCache: string }): BuiltImage;
export declare function layoutEntries(image: BuiltImage): TarEntry[];
export declare function writeImage(image: BuiltImage, options: { layoutDir?: string; tarPath: string; epoch: number }): void;
export declare function writeReleaseImage(options: {
  executable: string;
  out: string;
  epoch?: number;
  commit?: string;
  layoutDir?: string;
  debCache?: string;
}): { name: string; tarPath: string };
export declare function checkLibraries(executable: Buffer, arch: string, baseEntries: readonly TarEntry[]): void;
