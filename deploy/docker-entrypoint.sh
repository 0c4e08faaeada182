#!/bin/sh
# The image's entrypoint (WORKDIR /app). For `start`, it first makes what a first start makes (CA,
# master key, store, admin token: `keyway init` never overwrites), then copies the CA's public half,
# ca.pem and bundle.pem, into KEYWAY_PUBLIC_CA_DIR: the one folder shared with agent containers.
# certs/ itself also holds ca-key.pem, which must stay with keyway. Then it becomes keyway (exec),
# so keyway gets SIGTERM directly and drains.
set -eu
if [ "${1:-}" = start ] && [ -n "${KEYWAY_PUBLIC_CA_DIR:-}" ]; then
  node dist/cli/main.js init >/dev/null
  for name in ca.pem bundle.pem; do
    # Copy, then rename: an agent starting now never reads half a file.
    cp "$KEYWAY_HOME/certs/$name" "$KEYWAY_PUBLIC_CA_DIR/.$name.tmp"
    mv -f "$KEYWAY_PUBLIC_CA_DIR/.$name.tmp" "$KEYWAY_PUBLIC_CA_DIR/$name"
  done
fi
exec node dist/cli/main.js "$@"
