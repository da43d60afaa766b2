#!/usr/bin/env bash
# A whole tianwang cluster on one machine, to try it: a PostgreSQL database, a NATS JetStream
# server of its own (the event log), two serve nodes (one writes alerts, the other stands by), N
# workers, and simulated cameras from `tianwang sim`.
# Usage: deploy/cluster-local.sh [WORKERS] [CAMERAS]      (defaults: 3 workers, 60 cameras)
# Needs a PostgreSQL server the current user can create databases on (TIANWANG_PG_ADMIN, default
# postgres://postgres@127.0.0.1:5432/postgres) and `nats-server` (scripts/setup.sh installs it).
# TIANWANG_BIN picks the binary. Ctrl-C stops everything and drops the database.
set -euo pipefail
cd "$(dirname "$0")/.."
. deploy/lib.sh
workers=${1:-3}
cameras=${2:-60}
tw_build
run=$(mktemp -d /tmp/tianwang-cluster.XXXXXX)
trap 'tw_stop; echo "logs kept in $run"' EXIT INT TERM
tw_database "tianwang_local_$$"
db=$tw_db
tw_nats "$run"
nats=$tw_nats_url

# Simulated cameras: a few streams shared by all cameras (one camera per client).
tw_sim "$run" s0:320x180@5:kf=5 s1:320x180@5:kf=5 s2:320x180@5:kf=5
sim=$tw_sim_url
mkdir -p "$run/city"
printf '[site]\nname = "Local cluster"\ntimezone = "Asia/Shanghai"\n[defaults]\nhfov_deg = 90\nresolution = "1920x1080"\nmounting_height_m = 6\nowner = "public"\ningest_size = "320x180"\n' >"$run/city/site.toml"
for i in $(seq 0 $((cameras - 1))); do
  printf '[[camera]]\nid = "h%04d"\nname = "camera %d"\nurl = "%ss%d"\nlon = 113.6%04d\nlat = 34.7\nbearing_deg = 0\nkind = "compound"\nprofile = "health"\n' \
    "$i" "$i" "$sim" $((i % 3)) "$i" >>"$run/city/cams.toml"
done

for n in 1 2; do
  tw_start "$run/api-$n.log" "$tw_bin" serve --config "$run/city" --db "$db" --no-ingest \
    --listen "127.0.0.1:$((8079 + n))" --node-id "api-$n" --nats "$nats"
  sleep 2
done
for n in $(seq "$workers"); do
  tw_start "$run/worker-$n.log" "$tw_bin" worker --config "$run/city" --db "$db" --id "worker-$n" \
    --listen "127.0.0.1:$((8180 + n))"
done
token=$("$tw_bin" token create --db "$db" --name local-admin --role admin | tail -n 1)
echo "serve nodes: http://127.0.0.1:8080 and http://127.0.0.1:8081 (token: $token)"
echo "workers:     http://127.0.0.1:8181 … (GET /api/v1/worker with the token)"
echo "cluster:     curl -H 'Authorization: Bearer $token' http://127.0.0.1:8080/api/v1/cluster"
echo "event log:   $nats, stream TIANWANG_EVENTS (subjects tianwang.events.<lane>.<kind>)"
echo "logs:        $run    (Ctrl-C stops everything)"
wait
