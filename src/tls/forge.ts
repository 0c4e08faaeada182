// node-forge, only the parts keyway uses. Its index loads all of forge (TLS, PKCS#7, SSH, ciphers,
// ed25519): ~0.9 MB of source held in the heap for the life of the process. keyway needs X.509
// certificates and PEM (pki, which brings ASN.1, OIDs, RSA public keys and the byte utilities with
// it) and SHA-256; loading those alone saves ~0.4 MiB of heap. Keys never enter forge (x509-util.ts).

import { createRequire } from 'node:module';
import type * as Forge from 'node-forge';

const require = createRequire(import.meta.url);
export const forge = require('node-forge/lib/forge') as typeof Forge;
require('node-forge/lib/pki');
require('node-forge/lib/sha256');
