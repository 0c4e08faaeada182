// The child side of writeBundleInChild: write the bundle (path, CA certificate PEM), say so.
import { writeBundle } from './bundle.ts';

await writeBundle(process.argv[2] ?? '', process.argv[3] ?? '');
process.stdout.write('written');
