// Types for dockerfile-entry.mjs (a plain script), for the tests that use it.
export interface DockerfileEntry {
  env: Record<string, string>;
  workdir: string;
  exposed: string[];
  volumes: string[];
  entrypoint: string[];
  cmd: string[];
  user: string | undefined;
}
export declare function parseDockerfileEntry(text: string): DockerfileEntry;
export declare function readDockerfileEntry(path: string): DockerfileEntry;
