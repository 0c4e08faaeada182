#!/bin/sh
# Applies keyway's redirect rules (redirect.nft, beside this file) in the current network namespace:
# run it in an init container that shares the agent's (a pod's init container, or a compose service
# with network_mode: "service:keyway"), with CAP_NET_ADMIN, before the agent starts.
#   KEYWAY_UID  the uid keyway runs as (default 1000: the image runs as user node)
#   TLS_PORT    proxy.transparent.listen's port (default 8443)
#   HTTP_PORT   proxy.transparent.http_listen's port (default 8080)
# DNS may leave only for the nameservers of /etc/resolv.conf, the file the agent's resolver reads
# (every container of a pod has the same one): none listed, no DNS leaves.
set -eu
here=$(dirname "$0")
resolvers4=
resolvers6=
if [ -r /etc/resolv.conf ]; then
  # `|| [ -n "$key" ]`: a last line with no newline still counts.
  while read -r key address _ || [ -n "$key" ]; do
    [ "$key" = nameserver ] || continue
    # A scope (fe80::1%eth0) is for the resolver's socket; nft matches the address alone.
    address=${address%%\%*}
    case $address in
      '' | *[!0-9A-Fa-f:.]*)
        # Only an address may reach nft's input: anything else is a broken file, not a resolver.
        echo "apply.sh: not an address on a nameserver line of /etc/resolv.conf: '$address'" >&2
        exit 1
        ;;
      *:*) resolvers6="$resolvers6${resolvers6:+, }$address" ;;
      *) resolvers4="$resolvers4${resolvers4:+, }$address" ;;
    esac
  done </etc/resolv.conf
fi
elements=
[ -z "$resolvers4" ] || elements="add element inet keyway resolvers4 { $resolvers4 }"
[ -z "$resolvers6" ] || elements="$elements
add element inet keyway resolvers6 { $resolvers6 }"
listed="$resolvers4${resolvers4:+${resolvers6:+, }}$resolvers6"
echo "apply.sh: DNS may leave for ${listed:-no address}" >&2
# An assignment, so that set -e stops here if the file cannot be read (a pipe would hide it).
rules=$(cat "$here/redirect.nft")
# One transaction: the rules and their resolvers are in place together, or not at all.
printf '%s\n%s\n' "$rules" "$elements" |
  nft -D "KEYWAY_UID=${KEYWAY_UID:-1000}" -D "TLS_PORT=${TLS_PORT:-8443}" -D "HTTP_PORT=${HTTP_PORT:-8080}" -f -
