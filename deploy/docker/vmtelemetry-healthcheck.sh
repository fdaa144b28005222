#!/bin/bash
# HEALTHCHECK of the vmtelemetry image (installed as /usr/local/bin/vmtelemetry-healthcheck):
# GET /health on the port the service listens on, exit 0 on a 200 answer, 1 otherwise.
#
# Why bash's /dev/tcp and not curl: debian:bookworm-slim has no curl, and installing it would add
# libcurl and its TLS/HTTP2 dependencies to the image only for a loopback GET. bash is an
# Essential package of the base image, so this costs nothing. `timeout` (coreutils, also
# Essential) bounds the connect and the read; Docker's --timeout bounds the whole run anyway.
set -euo pipefail

listen=${VMTELEMETRY_LISTEN:-127.0.0.1:8080}
port=${listen##*:}
address=${listen%:*}
case "$address" in
    "" | 0.0.0.0 | "[::]" | "::") host=127.0.0.1 ;; # every interface: loopback answers too
    \[*\]) host=${address#[} && host=${host%]} ;;    # an IPv6 literal
    *) host=$address ;;
esac
wait_s=${VMT_HEALTHCHECK_TIMEOUT:-4}

# Prints the status line of the answer; fails when nothing answers. The inner script is quoted
# on purpose: it expands its own positional arguments.
# shellcheck disable=SC2016
status=$(timeout "$wait_s" bash -c '
    exec 3<>"/dev/tcp/$1/$2"
    printf "GET /health HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n" >&3
    IFS= read -r line <&3
    printf "%s\n" "$line"
' healthcheck "$host" "$port" 2>/dev/null) || {
    echo "unhealthy: nothing answered on $host:$port" >&2
    exit 1
}
status=${status%$'\r'}
if [[ $status =~ ^HTTP/1\.[01]\ 200\  ]]; then
    exit 0
fi
echo "unhealthy: GET /health on $host:$port answered '$status'" >&2
exit 1
