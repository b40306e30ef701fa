#!/usr/bin/env bash
# Gearlock and gearmand side by side on loopback, measured by `gearlock bench`: foreground jobs of
# 100 B and 64 KiB (plaintext, and TLS for Gearlock), background enqueue and drain (Gearlock in
# memory and with its durable SQLite store, gearmand in memory), RSS per queued job, thousands of
# idle connections, sleeping workers with nothing to do, one huge payload. Prints a Markdown table
# of medians with the Gearlock/gearmand ratios, each row's target and whether it was met. See
# bench/README.md.
#
#   bench/compare.sh            # builds release first; the full matrix (~10 minutes of runs)
#   bench/compare.sh --quick    # tiny sizes, one run: a smoke test (~2 minutes after the build)
#
# Settings (environment variables; --quick changes the defaults marked *):
#   ROWS="fg tls bg idle sleep huge"   the groups of rows to run
#   RUNS=3*              runs of every measurement, interleaved between the servers (medians shown)
#   DURATION=10* WARMUP=1*             foreground: seconds measured after a warm-up
#   WORKERS=4 CLIENTS=4 IN_FLIGHT=16 WORKER_CONCURRENCY=1   foreground load (also idle's load)
#   DRIVER=raw           what drives the foreground, background and idle rows' loads: raw (NIO
#                        handlers speaking the protocol, the cheapest load generator, so the servers'
#                        own costs show) or library (GearmanClient/GearmanWorker); the same for every
#                        server
#   BG_JOBS=100000*      background jobs per run, 100 B each with its own unique key
#   BG_CLIENTS=4 BG_IN_FLIGHT=64*      background enqueue load; drained by WORKERS workers
#   IDLE_CONNECTIONS=10000*            idle connections, half of them sleeping workers
#   IDLE_DURATION=10*    seconds measured with them open and nothing to do
#   IDLE_LOAD_DURATION=5*              seconds of foreground load before they open and while open
#   SLEEPERS=1000*       sleeping workers for the idle-CPU row
#   SLEEP_DURATION=10*   seconds of their idle CPU measured
#   HUGE_SIZE=1073741824*              bytes of the one huge payload
#   HUGE_TIMEOUT=600     seconds the huge round trip may take
#   GEARMAND=/usr/sbin/gearmand        set to "" to run Gearlock alone
#   GEARMAND_THREADS=    gearmand -t N (default: gearmand's own, 4)
#   GEARLOCK_THREADS=1   gearlock serve --threads N
#   DB_DIR=              directory for Gearlock's SQLite file (default: the temporary directory;
#                        it must be on a disk, not tmpfs, for the fsyncs to mean anything)
#   GEARLOCK=PATH        use this gearlock binary (any build), no build step
#   SKIP_BUILD=1         use the existing release build
#   JSON_OUT=FILE        also append every run's JSON line to FILE
#   The targets of issue 7 (shown in the table; the exit status never depends on them):
#   TARGET_FG_RATE_SMALL=2 (foreground 100 B jobs/s vs gearmand) TARGET_FG_RATE_LARGE=1.5 (64 KiB)
#   TARGET_FG_P99=1 TARGET_TLS_SMALL=0.7 (TLS 100 B vs our plaintext; 64 KiB over TLS has no target
#   without a TLS gearmand) TARGET_ENQUEUE=1 (durable SQLite enqueue vs gearmand in memory)
#   TARGET_DRAIN=1.5 TARGET_RSS_PER_JOB=1 TARGET_IDLE_LOAD=0.9 TARGET_IDLE_CPU=1 TARGET_HUGE_RSS_MIB=2560
#                        the targets (see bench/README.md); they only fill the table's last
#                        column: the exit status is 1 when a run failed, whatever the targets say
set -euo pipefail

# shellcheck source=bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
bench_options "$@"
bench_quick_defaults RUNS=1 DURATION=1 WARMUP=0.5 BG_JOBS=2000 BG_IN_FLIGHT=16 IDLE_CONNECTIONS=200 IDLE_DURATION=1 \
    IDLE_LOAD_DURATION=1 SLEEPERS=100 SLEEP_DURATION=1 HUGE_SIZE=8388608
ROWS=${ROWS:-"fg tls bg idle sleep huge"}
bench_load_settings
BG_JOBS=${BG_JOBS:-100000}
BG_CLIENTS=${BG_CLIENTS:-4}
BG_IN_FLIGHT=${BG_IN_FLIGHT:-64}
DRIVER=${DRIVER:-raw}
GEARLOCK_THREADS=${GEARLOCK_THREADS:-1}
IDLE_CONNECTIONS=${IDLE_CONNECTIONS:-10000}
IDLE_DURATION=${IDLE_DURATION:-10}
IDLE_LOAD_DURATION=${IDLE_LOAD_DURATION:-5}
SLEEPERS=${SLEEPERS:-1000}
SLEEP_DURATION=${SLEEP_DURATION:-10}
HUGE_SIZE=${HUGE_SIZE:-1073741824}
HUGE_TIMEOUT=${HUGE_TIMEOUT:-600}
TARGET_FG_RATE_SMALL=${TARGET_FG_RATE_SMALL:-2}
TARGET_FG_RATE_LARGE=${TARGET_FG_RATE_LARGE:-1.5}
TARGET_FG_P99=${TARGET_FG_P99:-1}
TARGET_TLS_SMALL=${TARGET_TLS_SMALL:-0.7}
TARGET_ENQUEUE=${TARGET_ENQUEUE:-1}
TARGET_DRAIN=${TARGET_DRAIN:-1.5}
TARGET_RSS_PER_JOB=${TARGET_RSS_PER_JOB:-1}
TARGET_IDLE_LOAD=${TARGET_IDLE_LOAD:-0.9}
TARGET_IDLE_CPU=${TARGET_IDLE_CPU:-1}
TARGET_HUGE_RSS_MIB=${TARGET_HUGE_RSS_MIB:-2560}

bench_gearlock
bench_workdir gearlock-compare
work=$bench_work
db_dir=${DB_DIR:-$work}
mkdir -p "$db_dir"
bench_check_gearmand
bench_pki "$work/pki"

wants() { [[ " $ROWS " == *" $1 "* ]]; }

# The idle rows hold thousands of connections: every server and the bench inherit this limit
# (neither gearlock serve nor gearmand raises its own; the bench raises its own when it needs to).
fds_needed=$((IDLE_CONNECTIONS + SLEEPERS + 1024))
if (($(ulimit -Sn) < fds_needed)); then
    (($(ulimit -Hn) < fds_needed)) && { ulimit -Hn "$fds_needed" 2>/dev/null || true; }
    ulimit -Sn "$fds_needed" 2>/dev/null || ulimit -Sn "$(ulimit -Hn)"
fi
if (($(ulimit -Sn) < fds_needed)) && { wants idle || wants sleep; }; then
    echo "warning: the idle rows need $fds_needed open files, the limit is $(ulimit -Sn) (hard $(ulimit -Hn)): expect failed runs" >&2
fi

# --- Servers --------------------------------------------------------------------------------------
server_pid=
# Starts a fresh server: gearlock (memory queue; a plaintext and a TLS listener), gearlock-sqlite
# (a new SQLite database in DB_DIR) or gearmand. Sets server_pid, port and, for gearlock, tls_port.
# Tries three times (a port found free may be taken before the server binds it).
start_server() {
    for _ in 1 2 3; do
        start_server_once "$1" && return 0
    done
    return 1
}

start_server_once() {
    local target=$1 log="$work/$1.log"
    port=$(bench_free_port)
    case $target in
        gearlock)
            tls_port=$(bench_free_port)
            bench_spawn "$log" "$gearlock" serve --log-level warning --queue memory --listen "127.0.0.1:$port" \
                --tls-listen "127.0.0.1:$tls_port" "${tls_server[@]}" --threads "$GEARLOCK_THREADS" ;;
        gearlock-sqlite)
            rm -f "$db_dir"/q.sqlite*
            bench_spawn "$log" "$gearlock" serve --log-level warning --listen "127.0.0.1:$port" \
                --queue "sqlite:$db_dir/q.sqlite" --threads "$GEARLOCK_THREADS" ;;
        gearmand) bench_spawn_gearmand "$port" gearmand ;;
    esac
    server_pid=$bench_last_pid
    if ! bench_wait_answering "$server_pid" -s "127.0.0.1:$port" 2>/dev/null; then
        echo "$target did not start on 127.0.0.1:$port:" >&2
        tail -20 "$log" >&2 || true
        bench_stop "$server_pid"
        server_pid=
        return 1
    fi
}

stop_server() {
    bench_stop "$server_pid"
    server_pid=
}

# --- Runs -------------------------------------------------------------------------------------------
declare -A results # "group target" -> one line of numbers per run (see each group)
line=

# One measurement: a fresh server for TARGET (gearlock-tls: gearlock, reached over TLS), then
# `gearlock bench --json --server-pid PID -s ADDRESS ARGS…` bounded by LIMIT seconds, then the
# server stopped. Sets line to the JSON, or counts a failure (NAME in the message) and clears it.
measure() {
    local target=$1 name=$2 limit=$3 server=$1 connect
    shift 3
    line=
    [[ $target == gearlock-tls ]] && server=gearlock
    if ! start_server "$server"; then
        bench_failures=$((bench_failures + 1))
        echo "run $run, $name: FAILED (the server did not start)" >&2
        return 0
    fi
    connect=(-s "127.0.0.1:$port")
    [[ $target == gearlock-tls ]] && connect=(-s "127.0.0.1:$tls_port" "${tls_client[@]}")
    bench_run "run $run, $name" "$limit" --server-pid "$server_pid" "${connect[@]}" "$@" || true
    stop_server
    line=$bench_line
}

# The targets in the order this run measures them: as given in odd runs, reversed in even runs, so
# that no server always goes first (on a virtual machine, the first to touch memory the host has not
# backed yet pays for it; warm-up effects go both ways).
in_run_order() {
    local targets=("$@") index
    if ((run % 2 == 1)); then
        printf '%s\n' "${targets[@]}"
    else
        for ((index = ${#targets[@]} - 1; index >= 0; index--)); do printf '%s\n' "${targets[index]}"; done
    fi
}

# Touches BYTES of fresh memory in a throwaway process, then frees it: a virtual machine's host backs
# guest memory at its first touch, which made whichever server ran the huge payload first pay up to
# twice the time for its page faults. After this, both find memory the host already backs. A machine
# without that much memory to spare just skips it.
touch_memory() {
    python3 -c 'import sys; n = int(sys.argv[1]); m = bytearray(n); m[::4096] = b"\x01" * len(range(0, n, 4096))' "$1" \
        2>/dev/null || echo "note: could not touch $1 bytes of memory before the huge run" >&2
}

# Seconds rounded up to a whole number, for timeouts.
whole() { awk -v v="$1" 'BEGIN { w = int(v); if (w < v) w++; print w }'; }

gearmand_targets=()
[[ -n $GEARMAND ]] && gearmand_targets=(gearmand)
fg_sizes=(100 65536)
fg_targets=()
wants fg && fg_targets+=(gearlock "${gearmand_targets[@]}")
wants tls && fg_targets+=(gearlock-tls)
fg_load=(--workers "$WORKERS" --worker-concurrency "$WORKER_CONCURRENCY" --clients "$CLIENTS" --in-flight "$IN_FLIGHT")
fg_limit=$(($(whole "$DURATION") + $(whole "$WARMUP") + 60))
bg_limit=1260
idle_limit=$((2 * ($(whole "$WARMUP") + $(whole "$IDLE_LOAD_DURATION")) + $(whole "$IDLE_DURATION") + IDLE_CONNECTIONS / 50 + 120))
sleep_limit=$(($(whole "$SLEEP_DURATION") + SLEEPERS / 50 + 60))
huge_limit=$((HUGE_TIMEOUT + 60))

echo "running: $ROWS; $RUNS run(s) of each measurement, a fresh server for each" >&2
for run in $(seq "$RUNS"); do
    for size in "${fg_sizes[@]}"; do
        for target in $(in_run_order "${fg_targets[@]}"); do
            measure "$target" "$target, foreground $(human_size "$size")" "$fg_limit" --mode foreground "${fg_load[@]}" \
                --driver "$DRIVER" \
                --payload-size "$size" --duration "$DURATION" --warmup "$WARMUP"
            [[ -n $line ]] || continue
            echo "run $run, $target, foreground $(human_size "$size"): $(field "$line" jobs_per_s) jobs/s" >&2
            results["fg$size $target"]+="$(field "$line" jobs_per_s) $(field "$line" latency_p99_us) $(field "$line" server_cpu_us_per_job)"$'\n'
        done
    done
    if wants bg; then
        for target in $(in_run_order gearlock gearlock-sqlite "${gearmand_targets[@]}"); do
            measure "$target" "$target, background" "$bg_limit" --mode background --jobs "$BG_JOBS" --unique-keys \
                --payload-size 100 --clients "$BG_CLIENTS" --in-flight "$BG_IN_FLIGHT" --workers "$WORKERS" \
                --worker-concurrency "$WORKER_CONCURRENCY" --enqueue-timeout 600 --drain-timeout 600 --job-timeout 600 \
                --driver "$DRIVER"
            [[ -n $line ]] || continue
            enqueued=$(field "$line" enqueued)
            per_job=$(awk -v p="$(field "$line" server_peak_rss_bytes)" -v b="$(field "$line" server_rss_before_bytes)" \
                -v n="$enqueued" 'BEGIN { if (p ~ /^[0-9]+$/ && b ~ /^[0-9]+$/ && n > 0) printf "%.1f", (p - b) / n; else print "-" }')
            echo "run $run, $target, background: enqueue $(field "$line" jobs_per_s) jobs/s, drain $(field "$line" drain_per_s) jobs/s, $per_job B of RSS per queued job" >&2
            results["bg $target"]+="$(field "$line" jobs_per_s) $(field "$line" drain_per_s) $per_job $(field "$line" drain_server_cpu_us_per_job)"$'\n'
        done
    fi
    if wants idle; then
        for target in $(in_run_order gearlock "${gearmand_targets[@]}"); do
            measure "$target" "$target, $IDLE_CONNECTIONS idle connections" "$idle_limit" --mode idle \
                --connections "$IDLE_CONNECTIONS" --duration "$IDLE_DURATION" --load-duration "$IDLE_LOAD_DURATION" \
                --warmup "$WARMUP" "${fg_load[@]}" --payload-size 100 --driver "$DRIVER"
            [[ -n $line ]] || continue
            echo "run $run, $target, $IDLE_CONNECTIONS idle connections: $(field "$line" jobs_per_s) jobs/s with them, $(field "$line" baseline_jobs_per_s) without" >&2
            results["idle $target"]+="$(field "$line" load_ratio) $(field "$line" jobs_per_s) $(field "$line" server_rss_per_connection_bytes) $(field "$line" connections_open)"$'\n'
        done
    fi
    if wants sleep; then
        for target in $(in_run_order gearlock "${gearmand_targets[@]}"); do
            measure "$target" "$target, $SLEEPERS sleeping workers" "$sleep_limit" --mode idle --connections "$SLEEPERS" \
                --sleeping-workers "$SLEEPERS" --duration "$SLEEP_DURATION" --load-duration 0 --workers 1 --clients 1 --in-flight 1
            [[ -n $line ]] || continue
            echo "run $run, $target, $SLEEPERS sleeping workers: $(field "$line" idle_server_cpu_pct) % CPU, $(field "$line" noops_idle) NOOPs" >&2
            results["sleep $target"]+="$(field "$line" idle_server_cpu_pct) $(field "$line" noops_idle)"$'\n'
        done
    fi
    if wants huge; then
        for target in $(in_run_order gearlock "${gearmand_targets[@]}"); do
            touch_memory $((3 * HUGE_SIZE))  # the server's copy in and out, and the load generator's
            measure "$target" "$target, one $(human_size "$HUGE_SIZE") payload" "$huge_limit" --mode huge \
                --payload-size "$HUGE_SIZE" --job-timeout "$HUGE_TIMEOUT"
            [[ -n $line ]] || continue
            echo "run $run, $target, one $(human_size "$HUGE_SIZE") payload: $(field "$line" round_trip_s) s, server peak $(mib "$(field "$line" server_peak_rss_bytes)") MiB" >&2
            results["huge $target"]+="$(field "$line" round_trip_s) $(field "$line" payload_mb_per_s) $(field "$line" server_peak_rss_bytes)"$'\n'
        done
    fi
done

# --- Table --------------------------------------------------------------------------------------------
# The median of column COLUMN of the runs of KEY ("group target"), "-" when none succeeded.
med() {
    local lines=${results["$1"]:-}
    [[ -n $lines ]] || { echo "-"; return; }
    median "$2" <<<"${lines%$'\n'}"
}
# PASS or FAIL: VALUE OP (ge, le, eq) LIMIT; "-" when VALUE is no number.
judge() {
    awk -v v="$1" -v op="$2" -v t="$3" 'BEGIN {
        if (v !~ /^-?[0-9.]+$/) { print "-"; exit }
        ok = op == "ge" ? v + 0 >= t + 0 : op == "le" ? v + 0 <= t + 0 : v + 0 == t + 0
        print ok ? "PASS" : "FAIL" }'
}
row() { printf '| %s | %s | %s | %s | %s | %s |\n' "$@"; }
kib() { awk -v b="$1" 'BEGIN { if (b ~ /^-?[0-9.]+$/) printf "%.2f", b / 1024; else print "-" }'; }
# VALUE as FORMAT: n0, n1 or n2 (decimals), ms (from µs), kib or mib (from bytes).
show() {
    case $1 in
        n0) num "$2" 0 ;;
        n1) num "$2" 1 ;;
        n2) num "$2" 2 ;;
        ms) ms "$2" ;;
        kib) kib "$2" ;;
        mib) mib "$2" ;;
    esac
}

# One row: LABEL; the medians of column COLUMN of the runs of KEY (Gearlock) and OTHER (gearmand, or
# for the TLS rows Gearlock plaintext, shown as such), as FORMAT; with RATIO "ratio", KEY / OTHER;
# the target as text; and PASS or FAIL by JUDGE: "ratio OP LIMIT" or "value OP LIMIT" (Gearlock's
# value; OP ge, le or eq), or "-" for none.
table_row() {
    local label=$1 format=$2 column=$3 key=$4 other=$5 with_ratio=$6 target=$7 judging=$8
    local gl gm r="–" verdict="–" gm_shown subject op limit
    gl=$(med "$key" "$column")
    gm=$(med "$other" "$column")
    gm_shown=$(show "$format" "$gm")
    [[ $other == *gearlock ]] && gm_shown="no TLS (Gearlock plaintext: $gm_shown)"
    [[ $with_ratio == ratio ]] && r=$(ratio "$gl" "$gm")
    if [[ $judging != - ]]; then
        read -r subject op limit <<<"$judging"
        if [[ $subject == ratio ]]; then verdict=$(judge "$r" "$op" "$limit"); else verdict=$(judge "$gl" "$op" "$limit"); fi
    fi
    row "$label" "$(show "$format" "$gl")" "$gm_shown" "$r" "$target" "$verdict"
}

echo
echo "Gearlock and gearmand on loopback, median of $RUNS run(s), a fresh server for each run, runs interleaved"
echo "between the servers ($DRIVER driver). Foreground: $WORKERS workers (concurrency $WORKER_CONCURRENCY), $CLIENTS clients x $IN_FLIGHT in flight,"
echo "$DURATION s measured after $WARMUP s warm-up. Background: $BG_JOBS jobs of 100 B with unique keys, $BG_CLIENTS clients x $BG_IN_FLIGHT in flight,"
echo "drained by $WORKERS workers. Idle: $IDLE_CONNECTIONS connections (half sleeping workers), $IDLE_DURATION s idle, $IDLE_LOAD_DURATION s of"
echo "foreground 100 B load before and while open; $SLEEPERS sleeping workers, $SLEEP_DURATION s. Gearlock: --queue memory, or --queue sqlite:"
echo "(synchronous FULL) for the SQLite rows; TLS with client certificates for the TLS rows. $(bench_machine)."
echo "$(bench_versions). The load generator (gearlock bench) runs on the same machine."
echo
row measurement Gearlock gearmand "Gearlock / gearmand" target "vs target"
row "---" "---:" "---:" "---:" "---" "---"
for size in "${fg_sizes[@]}"; do
    label="foreground $(human_size "$size")"
    if wants fg; then
        target=$TARGET_FG_RATE_LARGE
        ((size <= 1024)) && target=$TARGET_FG_RATE_SMALL
        table_row "$label, jobs/s" n0 1 "fg$size gearlock" "fg$size gearmand" ratio "≥ ${target}× gearmand" \
            "ratio ge $target"
        table_row "$label, p99 latency ms" ms 2 "fg$size gearlock" "fg$size gearmand" ratio "≤ ${TARGET_FG_P99}× gearmand" \
            "ratio le $TARGET_FG_P99"
        table_row "$label, server CPU µs per job" n1 3 "fg$size gearlock" "fg$size gearmand" ratio "– (lower is better)" -
    fi
    if wants tls; then
        if ((size <= 1024)); then
            table_row "TLS $label, jobs/s (ratio: TLS / plaintext)" n0 1 "fg$size gearlock-tls" "fg$size gearlock" ratio \
                "≥ ${TARGET_TLS_SMALL}× plaintext" "ratio ge $TARGET_TLS_SMALL"
        else
            table_row "TLS $label, jobs/s (ratio: TLS / plaintext)" n0 1 "fg$size gearlock-tls" "fg$size gearlock" ratio \
                "– (no TLS gearmand to compare with)" -
        fi
        table_row "TLS $label, p99 latency ms (ratio: TLS / plaintext)" ms 2 "fg$size gearlock-tls" "fg$size gearlock" ratio "–" -
    fi
done
if wants bg; then
    label="Gearlock memory"
    table_row "background enqueue jobs/s, $label" n0 1 "bg gearlock" "bg gearmand" ratio "–" -
    table_row "background drain jobs/s, $label" n0 2 "bg gearlock" "bg gearmand" ratio "≥ ${TARGET_DRAIN}× gearmand" \
        "ratio ge $TARGET_DRAIN"
    table_row "background drain server CPU µs per job, $label" n1 4 "bg gearlock" "bg gearmand" ratio \
        "– (lower is better)" -
    table_row "server RSS per queued 100 B job KiB, $label" kib 3 "bg gearlock" "bg gearmand" ratio \
        "≤ ${TARGET_RSS_PER_JOB}× gearmand" "ratio le $TARGET_RSS_PER_JOB"
    label="Gearlock SQLite FULL"
    table_row "background enqueue jobs/s, $label vs gearmand memory" n0 1 "bg gearlock-sqlite" "bg gearmand" ratio \
        "≥ ${TARGET_ENQUEUE}× gearmand memory" "ratio ge $TARGET_ENQUEUE"
    table_row "background drain jobs/s, $label vs gearmand memory" n0 2 "bg gearlock-sqlite" "bg gearmand" ratio "–" -
    table_row "server RSS per queued 100 B job KiB, $label" kib 3 "bg gearlock-sqlite" "bg gearmand" ratio \
        "≤ ${TARGET_RSS_PER_JOB}× gearmand" "ratio le $TARGET_RSS_PER_JOB"
fi
if wants idle; then
    label="$IDLE_CONNECTIONS idle connections"
    table_row "$label: jobs/s while they are open" n0 2 "idle gearlock" "idle gearmand" ratio "–" -
    table_row "$label: jobs/s with them / without" n2 1 "idle gearlock" "idle gearmand" - "≥ $TARGET_IDLE_LOAD (Gearlock)" \
        "value ge $TARGET_IDLE_LOAD"
    table_row "$label: server RSS per connection KiB" kib 3 "idle gearlock" "idle gearmand" ratio "–" -
    table_row "$label: still open at the end" n0 4 "idle gearlock" "idle gearmand" - "all $IDLE_CONNECTIONS (Gearlock)" \
        "value eq $IDLE_CONNECTIONS"
fi
if wants sleep; then
    label="$SLEEPERS sleeping workers, no jobs"
    table_row "$label: server CPU % of one core" n2 1 "sleep gearlock" "sleep gearmand" - "≤ $TARGET_IDLE_CPU % (Gearlock)" \
        "value le $TARGET_IDLE_CPU"
    table_row "$label: NOOPs sent to them" n0 2 "sleep gearlock" "sleep gearmand" - "0 (Gearlock)" "value eq 0"
fi
if wants huge; then
    label="one $(human_size "$HUGE_SIZE") payload"
    table_row "$label: round trip s" n2 1 "huge gearlock" "huge gearmand" ratio "–" -
    table_row "$label: payload MB/s" n0 2 "huge gearlock" "huge gearmand" ratio "–" -
    table_row "$label: server peak RSS MiB" mib 3 "huge gearlock" "huge gearmand" ratio "≤ $TARGET_HUGE_RSS_MIB MiB (Gearlock)" \
        "value le $((TARGET_HUGE_RSS_MIB * 1048576))"
fi
[[ -n $GEARMAND ]] || echo "(gearmand was not run: GEARMAND is empty, or gearmand is not installed)"

if ((bench_failures > 0)); then
    echo "$bench_failures run(s) failed" >&2
    exit 1
fi
