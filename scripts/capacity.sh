#!/usr/bin/env bash
# What one `tianwang worker` costs per camera: it runs N cameras of one profile from `tianwang sim`
# (a serve node syncs them into a fresh PostgreSQL database), and once every camera streams, the
# worker's CPU (over SECONDS_MEASURED), resident memory and threads are read from /proc.
# Usage: scripts/capacity.sh [PROFILE] [CAMERAS]    (defaults: health 300; release binary)
# The cameras' streams: SIM_SIZE (WxH), SIM_FPS and SIM_PATHS (distinct streams, shared by the
# cameras; default 8) override the profile's defaults.
# Prints one line: profile, cameras, CPU cores, CPU per camera, RSS, RSS per camera, threads.
set -euo pipefail
cd "$(dirname "$0")/.."
. deploy/lib.sh
profile=${1:-health}
n=${2:-300}
secs=${SECONDS_MEASURED:-60}
tw_build
run=$(mktemp -d /tmp/tianwang-capacity.XXXXXX)
trap tw_stop EXIT INT TERM
tw_database "tianwang_capacity_$$"
db=$tw_db

case "$profile" in
  health) size=320x180; fps=5 ;;
  street) size=640x360; fps=10 ;;
  checkpoint) size=1280x720; fps=10 ;;
  *) echo "profile: health, street or checkpoint" >&2; exit 2 ;;
esac
size=${SIM_SIZE:-$size}
fps=${SIM_FPS:-$fps}
paths=${SIM_PATHS:-8}
paths=$(( n < paths ? n : paths ))
streams=()
for i in $(seq 0 $((paths - 1))); do streams+=("s$i:$size@$fps:kf=$fps"); done
tw_sim "$run" "${streams[@]}"
sim=$tw_sim_url
mkdir -p "$run/city"
printf '[site]\nname = "capacity"\ntimezone = "UTC"\n[defaults]\nhfov_deg = 90\nresolution = "1920x1080"\nmounting_height_m = 6\nowner = "public"\n' >"$run/city/site.toml"
for i in $(seq 0 $((n - 1))); do
  printf '[[camera]]\nid = "c%05d"\nname = "camera %d"\nurl = "%ss%d"\nlon = 113.6\nlat = 34.7\nbearing_deg = 0\nkind = "street"\nprofile = "%s"\n' \
    "$i" "$i" "$sim" $((i % paths)) "$profile" >>"$run/city/cams.toml"
done
tw_start "$run/serve.log" "$tw_bin" serve --config "$run/city" --db "$db" --no-ingest --listen 127.0.0.1:0
sleep 3
token=$("$tw_bin" token create --db "$db" --name capacity --role maintainer 2>/dev/null | tail -n 1)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
tw_start "$run/worker.log" "$tw_bin" worker --config "$run/city" --db "$db" --id capacity --listen "127.0.0.1:$port" --max-cameras "$n"
wpid=${tw_pids[-1]}
streaming() {
  curl -s -H "Authorization: Bearer $token" "http://127.0.0.1:$port/api/v1/worker" |
    python3 -c 'import json,sys; v=json.load(sys.stdin); print(sum(1 for c in v["cameras"] if c["ingest"]=="streaming"))' 2>/dev/null || echo 0
}
for _ in $(seq 600); do [ "$(streaming)" -ge "$n" ] && break; sleep 1; done
[ "$(streaming)" -ge "$n" ] || { echo "only $(streaming) of $n cameras streaming; logs in $run" >&2; exit 1; }
sleep 10   # past the start-up
ticks() { awk '{print $14 + $15}' "/proc/$wpid/stat"; }
hz=$(getconf CLK_TCK)
t0=$(ticks); s0=$(date +%s.%N)
sleep "$secs"
t1=$(ticks); s1=$(date +%s.%N)
rss_kb=$(awk '/^VmRSS/ {print $2}' "/proc/$wpid/status")
threads=$(awk '/^Threads/ {print $2}' "/proc/$wpid/status")
python3 - "$profile" "$n" "$t0" "$t1" "$hz" "$s0" "$s1" "$rss_kb" "$threads" "${size}@${fps}" <<'PY'
import sys
profile, n, t0, t1, hz, s0, s1, rss, threads, size = sys.argv[1:]
n = int(n); cores = (int(t1) - int(t0)) / int(hz) / (float(s1) - float(s0)); rss = int(rss) / 1024
print(f"{profile}: {n} cameras ({size}) on one worker: CPU {cores:.3f} cores ({cores / n:.5f} per camera), "
      f"RSS {rss:.0f} MB ({rss / n:.2f} MB per camera), {threads} threads ({int(threads) / n:.2f} per camera)")
PY
