# Shared by deploy/cluster-local.sh and scripts/capacity.sh (sourced, not run): a fresh database
# on the local PostgreSQL, `tianwang sim` cameras, and stopping everything started.
#   TIANWANG_PG_ADMIN  admin URL (default postgres://postgres@127.0.0.1:5432/postgres)
#   TIANWANG_BIN       the binary (default the release build, built when missing)

tw_admin=${TIANWANG_PG_ADMIN:-postgres://postgres@127.0.0.1:5432/postgres}
tw_bin=${TIANWANG_BIN:-target/release/tianwang}
tw_pids=()

tw_build() {
  [ -x "$tw_bin" ] || cargo build --release --locked
}

# tw_database NAME: creates it and sets tw_db to its URL. Dropped by tw_stop.
tw_database() {
  tw_db_name=$1
  psql -q "$tw_admin" -c "CREATE DATABASE $tw_db_name"
  tw_db="${tw_admin%/*}/$tw_db_name"
}

# tw_sim DIR STREAM...: starts `tianwang sim` with the streams and sets tw_sim_url to its base
# URL (not in a subshell: tw_stop must know the process).
tw_sim() {
  local dir=$1
  shift
  local args=()
  for s in "$@"; do args+=(--stream "$s"); done
  "$tw_bin" sim --port 0 "${args[@]}" >"$dir/sim.out" 2>"$dir/sim.log" &
  tw_pids+=($!)
  for _ in $(seq 100); do grep -q '^sim: ' "$dir/sim.out" && break; sleep 0.1; done
  tw_sim_url=$(sed -n 's/^sim: //p' "$dir/sim.out")
}

# tw_nats DIR: starts a private nats-server with JetStream (store in DIR/nats) on a free port and
# sets tw_nats_url.
tw_nats() {
  local dir=$1 port
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  nats-server -js -a 127.0.0.1 -p "$port" -sd "$dir/nats" 2>"$dir/nats.log" &
  tw_pids+=($!)
  for _ in $(seq 100); do grep -q 'Server is ready' "$dir/nats.log" && break; sleep 0.1; done
  tw_nats_url="nats://127.0.0.1:$port"
}

# tw_start LOG COMMAND...: starts a process in the background, stopped by tw_stop.
tw_start() {
  local log=$1
  shift
  "$@" 2>"$log" &
  tw_pids+=($!)
}

tw_stop() {
  kill "${tw_pids[@]}" 2>/dev/null || true
  wait 2>/dev/null || true
  [ -n "${tw_db_name:-}" ] && psql -q "$tw_admin" -c "DROP DATABASE IF EXISTS $tw_db_name WITH (FORCE)" >/dev/null || true
}
