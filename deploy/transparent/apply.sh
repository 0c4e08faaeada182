#!/bin/sh
# Applies keyway's redirect rules (redirect.nft, beside this file) in the current network namespace:
# run it in an init container that shares the agent's (a pod's init container, or a compose service
# with network_mode: "service:keyway"), with CAP_NET_ADMIN, before the agent starts.
#   KEYWAY_UID  the uid keyway runs as (default 1000: the image runs as user node)
#   TLS_PORT    proxy.transparent.listen's port (default 8443)
#   HTTP_PORT   proxy.transparent.http_listen's port (default 8080)
#   DNS_PORT    proxy.transparent.dns_listen's port (default 8053): every DNS question of the
#               agent's goes there, whatever resolver it asks; none leaves the namespace
set -eu
here=$(dirname "$0")
for value in "${KEYWAY_UID:-1000}" "${TLS_PORT:-8443}" "${HTTP_PORT:-8080}" "${DNS_PORT:-8053}"; do
  case $value in
    '' | *[!0-9]*)
      echo "apply.sh: not a number: '$value' (KEYWAY_UID, TLS_PORT, HTTP_PORT and DNS_PORT are numbers)" >&2
      exit 1
      ;;
  esac
done
echo "apply.sh: TCP 443 and 80 to keyway (ports ${TLS_PORT:-8443}, ${HTTP_PORT:-8080}), DNS to keyway (port ${DNS_PORT:-8053})" >&2
nft -D "KEYWAY_UID=${KEYWAY_UID:-1000}" -D "TLS_PORT=${TLS_PORT:-8443}" -D "HTTP_PORT=${HTTP_PORT:-8080}" -D "DNS_PORT=${DNS_PORT:-8053}" -f "$here/redirect.nft"
