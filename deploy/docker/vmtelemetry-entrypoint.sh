#!/bin/sh
# Entrypoint of the vmtelemetry image (installed as /usr/local/bin/vmtelemetry-entrypoint).
#
# vmtelemetry reads its secrets from the environment only. Orchestrators often hand secrets over
# as files (a compose volume, Docker/Kubernetes secrets), so this reads
#   INFLUX_TOKEN_FILE  into INFLUX_TOKEN             (unless INFLUX_TOKEN is already set)
#   ADMIN_TOKEN_FILE   into VMTELEMETRY_ADMIN_TOKEN  (unless that is already set)
# and removes the *_FILE variables. They deliberately carry no VMTELEMETRY_ prefix: every
# VMTELEMETRY_* variable is a configuration key to the service, and an unknown key stops it.
#
# Arguments starting with '-' (the default CMD is `--config /etc/vmtelemetry/vmtelemetry.toml`)
# go to vmtelemetry; anything else is run as a command instead (e.g. `docker run … IMAGE sh`).
set -eu

me=vmtelemetry-entrypoint

# from_file VAR FILE: VAR=contents of FILE (trailing newlines dropped), exported; VAR must be unset.
from_file() {
    if [ ! -r "$2" ]; then
        echo "$me: cannot read $2 (given for $1)" >&2
        exit 2
    fi
    value=$(cat "$2")
    if [ -z "$value" ]; then
        echo "$me: $2 (given for $1) is empty" >&2
        exit 2
    fi
    export "$1=$value"
    unset value
}

if [ -n "${INFLUX_TOKEN_FILE:-}" ] && [ -z "${INFLUX_TOKEN:-}" ]; then
    from_file INFLUX_TOKEN "$INFLUX_TOKEN_FILE"
fi
unset INFLUX_TOKEN_FILE

if [ -n "${ADMIN_TOKEN_FILE:-}" ] && [ -z "${VMTELEMETRY_ADMIN_TOKEN:-}" ]; then
    from_file VMTELEMETRY_ADMIN_TOKEN "$ADMIN_TOKEN_FILE"
fi
unset ADMIN_TOKEN_FILE

case "${1:-}" in
    "" | -*) exec vmtelemetry "$@" ;;
    *) exec "$@" ;;
esac
