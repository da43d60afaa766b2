#!/usr/bin/env bash
# A whole tianwang cluster on one machine, to try it: a PostgreSQL database, two serve nodes
# (one writes alerts, the other stands by), N workers, and simulated cameras from `tianwang sim`.
# Usage: deploy/cluster-local.sh [WORKERS] [CAMERAS]      (defaults: 3 workers, 60 cameras)
# Needs a PostgreSQL server that the current user can create databases on (TIANWANG_PG_ADMIN,
# default postgres://postgres@127.0.0.1:5432/postgres). Stops everything on Ctrl-C.
set -euo pipefail
cd "$(dirname "$0")/.."
workers=${1:-3}
cameras=${2:-60}
admin=${TIANWANG_PG_ADMIN:-postgres://postgres@127.0.0.1:5432/postgres}
bin=${TIANWANG_BIN:-target/release/tianwang}
[ -x "$bin" ] || cargo build --release --locked
run=$(mktemp -d /tmp/tianwang-cluster.XXXXXX)
db_name=tianwang_local_$$
psql -q "$admin" -c "CREATE DATABASE $db_name"
db="${admin%/*}/$db_name"
pids=()
cleanup() {
  kill "${pids[@]}" 2>/dev/null || true
  wait 2>/dev/null || true
  psql -q "$admin" -c "DROP DATABASE IF EXISTS $db_name WITH (FORCE)" || true
  echo "logs kept in $run"
}
trap cleanup EXIT INT TERM

# Simulated cameras: a few streams shared by all cameras (one camera per client).
"$bin" sim --port 0 --stream s0:320x180@5:kf=5 --stream s1:320x180@5:kf=5 --stream s2:320x180@5:kf=5 >"$run/sim.out" 2>"$run/sim.log" &
pids+=($!)
for _ in $(seq 100); do grep -q '^sim: ' "$run/sim.out" && break; sleep 0.1; done
sim=$(sed -n 's/^sim: //p' "$run/sim.out")
mkdir -p "$run/city"
cat >"$run/city/site.toml" <<TOML
[site]
name = "Local cluster"
timezone = "Asia/Shanghai"
[defaults]
hfov_deg = 90
resolution = "1920x1080"
mounting_height_m = 6
owner = "public"
ingest_size = "320x180"
TOML
for i in $(seq 0 $((cameras - 1))); do
  printf '[[camera]]\nid = "h%04d"\nname = "camera %d"\nurl = "%ss%d"\nlon = 113.6%04d\nlat = 34.7\nbearing_deg = 0\nkind = "compound"\nprofile = "health"\n' \
    "$i" "$i" "$sim" $((i % 3)) "$i" >>"$run/city/cams.toml"
done

for n in 1 2; do
  "$bin" serve --config "$run/city" --db "$db" --no-ingest --listen "127.0.0.1:$((8079 + n))" --node-id "api-$n" 2>"$run/api-$n.log" &
  pids+=($!)
  sleep 2
done
for n in $(seq "$workers"); do
  "$bin" worker --config "$run/city" --db "$db" --id "worker-$n" --listen "127.0.0.1:$((8180 + n))" 2>"$run/worker-$n.log" &
  pids+=($!)
done
token=$("$bin" token create --db "$db" --name local-admin --role admin | tail -n 1)
echo "serve nodes: http://127.0.0.1:8080 and http://127.0.0.1:8081 (token: $token)"
echo "workers:     http://127.0.0.1:8181 … (GET /api/v1/worker with the token)"
echo "cluster:     curl -H 'Authorization: Bearer $token' http://127.0.0.1:8080/api/v1/cluster"
echo "logs:        $run    (Ctrl-C stops everything)"
wait
