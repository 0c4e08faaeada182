// Maps a CPU profile's frames in the bundled dist/ (scripts/bundle.mjs: many src/ modules per chunk)
// back to the src/ file each function came from, through the chunks' source maps, which the build
// writes when KEYWAY_BUNDLE_SOURCEMAP=1 (bench/run.ts --profile builds so). Without a map a frame
// keeps its chunk's name.
import { existsSync, readFileSync } from 'node:fs';
import { SourceMap } from 'node:module';
import { fileURLToPath } from 'node:url';

export type SourceOf = (url: string, line: number, column: number) => string | undefined;

/** A mapper over dist/ chunk URLs (file:///.../dist/...js) to 'src/…ts'; maps are read once each. */
export function distSourceMapper(): SourceOf {
  const maps = new Map<string, SourceMap | null>();
  const mapOf = (url: string): SourceMap | null => {
    let map = maps.get(url);
    if (map !== undefined) return map;
    map = null;
    try {
      const file = `${fileURLToPath(url)}.map`;
      if (existsSync(file)) map = new SourceMap(JSON.parse(readFileSync(file, 'utf8')));
    } catch {
      // Not a file URL or an unreadable map: the frame keeps its chunk's name.
    }
    maps.set(url, map);
    return map;
  };
  return (url, line, column) => {
    // keyway's own dist/ only: packages such as lru-cache ship a dist/ with maps of their own src/.
    if (url.includes('/node_modules/') || !/\/dist\/.+\.js$/.test(url)) return undefined;
    const entry = mapOf(url)?.findEntry(line, column);
    const source = entry && 'originalSource' in entry ? entry.originalSource : undefined;
    const src = source ? /(?:^|\/)(src\/.+\.ts)$/.exec(source) : null;
    return src?.[1];
  };
}

/** Whether the dist/ build beside this bench has source maps (built with KEYWAY_BUNDLE_SOURCEMAP=1). */
export function distHasSourceMaps(): boolean {
  return existsSync(fileURLToPath(new URL('../dist/cli/main.js.map', import.meta.url)));
}
