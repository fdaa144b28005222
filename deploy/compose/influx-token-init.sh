#!/bin/sh
# One-shot init service of deploy/docker-compose.yml, run as root in the influxdb:3-core image.
#
# Creates, once, InfluxDB 3 Core's first admin ("operator") token in a volume shared by:
#   $TOKEN_DIR/admin-token.json  the offline admin token file that `influxdb3 serve` loads with
#                                --admin-token-file (readable by the influxdb3 user only)
#   $TOKEN_DIR/influx-token      the same token as a bare string, which the vmtelemetry image's
#                                entrypoint reads through INFLUX_TOKEN_FILE (readable by it only)
#
# Uses the documented automation path of InfluxDB 3.4 and later:
#   influxdb3 create token --admin --offline --output-file FILE
# writes {"token": "apiv3_…", "name": "_admin", "expiry_millis": …} without a running server, and
# a server started with --admin-token-file FILE creates that admin token if none exists yet.
# (Core has admin tokens only, so the collector gets an admin token.)
#
# When both files exist nothing is done, so `docker compose up` can run this every time. The
# token lives with InfluxDB's data: remove both volumes together (`docker compose down -v`);
# a server whose data already holds an operator token ignores a new token file.
set -eu

dir=${TOKEN_DIR:-/run/influxdb3-token}
influx_uid=${INFLUX_UID:-1500}        # the influxdb3 user of the influxdb:3-core image
collector_uid=${COLLECTOR_UID:-10001} # the vmtelemetry user of deploy/Dockerfile
json=$dir/admin-token.json
raw=$dir/influx-token
me=influx-token-init

if [ -s "$json" ] && [ -s "$raw" ]; then
    echo "$me: $json and $raw exist; nothing to do"
    exit 0
fi

umask 077
mkdir -p "$dir"
rm -f "$json" "$raw" "$raw.tmp"
influxdb3 create token --admin --offline --output-file "$json"

# The bare token, from the file's documented "token" field (a JSON string without escapes:
# apiv3_ then base64url characters).
token=$(sed -n 's/.*"token"[[:space:]]*:[[:space:]]*"\(apiv3_[^"\\]*\)".*/\1/p' "$json" | head -n 1)
if [ -z "$token" ]; then
    echo "$me: no \"token\": \"apiv3_…\" field in $json" >&2
    rm -f "$json"
    exit 1
fi
printf '%s\n' "$token" >"$raw.tmp"

chown "$influx_uid" "$json"
chmod 0400 "$json"
chown "$collector_uid" "$raw.tmp"
chmod 0400 "$raw.tmp"
mv -f "$raw.tmp" "$raw"
echo "$me: created the admin token files in $dir"
