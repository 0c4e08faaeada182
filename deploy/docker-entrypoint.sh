#!/bin/sh
# The image's entrypoint (WORKDIR /app). For `start`, it first imports a shared CA when
# KEYWAY_CA_CERT_FILE and KEYWAY_CA_KEY_FILE name one, then makes what a first start makes (CA,
# master key, store, admin token: `keyway init` never overwrites), then copies the CA's public half,
# ca.pem and bundle.pem, into KEYWAY_PUBLIC_CA_DIR: the one folder shared with agent containers.
# certs/ itself also holds ca-key.pem, which must stay with keyway. Then it becomes keyway (exec),
# so keyway gets SIGTERM directly and drains.
# KEYWAY_BIN names the single executable in the release image (scripts/release/oci-image.mjs); the
# Dockerfile's image leaves it unset and runs the built files with node.
set -eu
keyway() {
  if [ -n "${KEYWAY_BIN:-}" ]; then "$KEYWAY_BIN" "$@"; else node dist/cli/main.js "$@"; fi
}
if [ "${1:-}" = start ] && [ -n "${KEYWAY_CA_CERT_FILE:-}" ]; then
  # Replicas behind one Service share one CA, made once and mounted from a Secret (read-only, so it
  # is copied into certs/, where keyway also writes bundle.pem). Same CA already there: no change;
  # another CA there: refused, and the container does not start.
  keyway ca import "$KEYWAY_CA_CERT_FILE" "${KEYWAY_CA_KEY_FILE:?set KEYWAY_CA_KEY_FILE with KEYWAY_CA_CERT_FILE}" >/dev/null
fi
if [ "${1:-}" = start ] && [ -n "${KEYWAY_PUBLIC_CA_DIR:-}" ]; then
  keyway init >/dev/null
  for name in ca.pem bundle.pem; do
    # Copy, then rename: an agent starting now never reads half a file.
    cp "$KEYWAY_HOME/certs/$name" "$KEYWAY_PUBLIC_CA_DIR/.$name.tmp"
    mv -f "$KEYWAY_PUBLIC_CA_DIR/.$name.tmp" "$KEYWAY_PUBLIC_CA_DIR/$name"
  done
fi
if [ -n "${KEYWAY_BIN:-}" ]; then exec "$KEYWAY_BIN" "$@"; fi
exec node dist/cli/main.js "$@"
