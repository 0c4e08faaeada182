#!/bin/sh
# Applies keyway's redirect rules (redirect.nft, beside this file) in the current network namespace:
# run it in an init container that shares the agent's (a pod's init container, or a compose service
# with network_mode: "service:agent"), with CAP_NET_ADMIN, before the agent starts.
#   KEYWAY_UID  the uid keyway runs as (default 1000: the image runs as user node)
#   TLS_PORT    proxy.transparent.listen's port (default 8443)
#   HTTP_PORT   proxy.transparent.http_listen's port (default 8080)
set -eu
here=$(dirname "$0")
exec nft -D "KEYWAY_UID=${KEYWAY_UID:-1000}" -D "TLS_PORT=${TLS_PORT:-8443}" -D "HTTP_PORT=${HTTP_PORT:-8080}" -f "$here/redirect.nft"
