#!/usr/bin/env bash
# Background jobs: enqueue and drain rates of Gearlock with its SQLite queue (synchronous FULL, and
# NORMAL) and its memory queue, and of gearmand in memory and with its libsqlite3 queue, on
# loopback, with `gearlock bench --mode background --jobs N`. Prints a Markdown table of medians
# with the ratios to gearmand in memory and to Gearlock in memory. See bench/README.md.
#
#   bench/durable-queue.sh            # builds release first; the full run
#   bench/durable-queue.sh --quick    # tiny sizes, one run: a smoke test
#
# Settings (environment variables):
#   JOBS=100000          background jobs per run (each payload carries its index)
#   PAYLOAD=100          payload bytes (8 or more)
#   CLIENTS=4 IN_FLIGHT=64   client connections × SUBMIT_JOB_BG in flight on each
#   WORKERS=4            worker connections for the drain
#   WORKER_CONCURRENCY=1 jobs each worker connection runs at once
#   RUNS=3               runs per server (the table shows medians)
#   UNIQUE_KEYS=1        give every job its own unique key, as libgearman clients do (gearmand's
#                        sqlite queue keys its rows by unique: with empty uniques it keeps one row)
#   SYNC_NORMAL=1        also run Gearlock with --queue-sync-normal (0 to skip)
#   GEARMAND=/usr/sbin/gearmand   set to "" to skip the gearmand rows
#   GEARMAND_SQLITE=1    also run gearmand -q libsqlite3 (0 to skip)
#   GEARMAND_SQLITE_JOBS=         jobs per run for gearmand's libsqlite3 queue (default: JOBS, at
#                        most 10000: it commits every job on its own, ~500 jobs/s on a VM disk)
#   GEARMAND_THREADS=    gearmand -t N (default: gearmand's own, 4)
#   DB_DIR=              directory for the SQLite files (default: a temporary directory; it must
#                        be on a real disk, not tmpfs, for the fsyncs to mean anything)
#   ENQUEUE_TIMEOUT=600 DRAIN_TIMEOUT=600   seconds each phase of one run may take
#   SKIP_BUILD=1         use the existing release build
#   JSON_OUT=FILE        also append every run's JSON line to FILE
set -euo pipefail

quick=
for arg in "$@"; do
    case $arg in
        --quick) quick=1 ;;
        -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) echo "usage: $0 [--quick]" >&2; exit 64 ;;
    esac
done
if [[ -n $quick ]]; then
    JOBS=${JOBS:-2000}
    RUNS=${RUNS:-1}
    IN_FLIGHT=${IN_FLIGHT:-16}
    ENQUEUE_TIMEOUT=${ENQUEUE_TIMEOUT:-60}
    DRAIN_TIMEOUT=${DRAIN_TIMEOUT:-60}
fi
JOBS=${JOBS:-100000}
PAYLOAD=${PAYLOAD:-100}
CLIENTS=${CLIENTS:-4}
IN_FLIGHT=${IN_FLIGHT:-64}
WORKERS=${WORKERS:-4}
WORKER_CONCURRENCY=${WORKER_CONCURRENCY:-1}
RUNS=${RUNS:-3}
UNIQUE_KEYS=${UNIQUE_KEYS:-1}
SYNC_NORMAL=${SYNC_NORMAL:-1}
GEARMAND=${GEARMAND-/usr/sbin/gearmand}
GEARMAND_SQLITE=${GEARMAND_SQLITE:-1}
GEARMAND_SQLITE_JOBS=${GEARMAND_SQLITE_JOBS:-$((JOBS < 10000 ? JOBS : 10000))}
GEARMAND_THREADS=${GEARMAND_THREADS:-}
ENQUEUE_TIMEOUT=${ENQUEUE_TIMEOUT:-600}
DRAIN_TIMEOUT=${DRAIN_TIMEOUT:-600}
JSON_OUT=${JSON_OUT:-}

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

if [[ -z ${SKIP_BUILD:-} ]]; then
    echo "building: swift build -c release --product gearlock" >&2
    swift build -c release --product gearlock >&2
fi
gearlock="$(swift build -c release --show-bin-path)/gearlock"
[[ -x $gearlock ]] || { echo "no release build at $gearlock (run without SKIP_BUILD)" >&2; exit 1; }

work=$(mktemp -d "${TMPDIR:-/tmp}/gearlock-durable-bench.XXXXXX")
db_dir=${DB_DIR:-$work}
mkdir -p "$db_dir"
server_pid=
cleanup() {
    stop_server
    rm -rf "$work"
}
# Stops the server of the current run: SIGTERM, then SIGKILL after 5 s.
stop_server() {
    [[ -n $server_pid ]] || return 0
    kill -TERM "$server_pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$server_pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
    server_pid=
}
trap cleanup EXIT
trap 'exit 130' INT TERM

fs_type=$(findmnt -n -o FSTYPE --target "$db_dir" 2>/dev/null || stat -f -c %T "$db_dir" 2>/dev/null || echo unknown)
if [[ $fs_type == tmpfs || $fs_type == ramfs ]]; then
    echo "warning: $db_dir is on $fs_type: fsync costs nothing there; set DB_DIR to a directory on disk" >&2
fi

# A loopback port nobody listens on (a TCP connect to it is refused).
free_port() {
    local port
    while true; do
        port=$((20000 + RANDOM % 40000))
        if ! (: <"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            echo "$port"
            return
        fi
    done
}

# Waits until `gearlock admin -s ADDRESS version` answers (10 s at most) and the server lives.
wait_answering() {
    for _ in $(seq 100); do
        kill -0 "$server_pid" 2>/dev/null || return 1
        if "$gearlock" admin --timeout 1 -s "$1" version >/dev/null 2>&1; then return 0; fi
        sleep 0.1
    done
    return 1
}

if [[ -n $GEARMAND && ! -x $GEARMAND ]]; then
    echo "note: $GEARMAND not found; no gearmand rows (install gearman-job-server)" >&2
    GEARMAND=
fi
targets=(gearlock-memory gearlock-sqlite)
[[ $SYNC_NORMAL == 1 ]] && targets+=(gearlock-sqlite-normal)
if [[ -n $GEARMAND ]]; then
    targets+=(gearmand-memory)
    [[ $GEARMAND_SQLITE == 1 ]] && targets+=(gearmand-sqlite)
fi

# Starts the server of a target on a free loopback port with a fresh database; sets server_pid
# and port.
start_server() {
    local target=$1 log="$work/$1.log"
    port=$(free_port)
    rm -f "$db_dir"/q.sqlite* "$db_dir"/gm.sqlite*
    case $target in
        gearlock-memory)
            "$gearlock" serve --log-level warning --listen "127.0.0.1:$port" --queue memory >"$log" 2>&1 & ;;
        gearlock-sqlite)
            "$gearlock" serve --log-level warning --listen "127.0.0.1:$port" --queue "sqlite:$db_dir/q.sqlite" \
                >"$log" 2>&1 & ;;
        gearlock-sqlite-normal)
            "$gearlock" serve --log-level warning --listen "127.0.0.1:$port" --queue "sqlite:$db_dir/q.sqlite" \
                --queue-sync-normal >"$log" 2>&1 & ;;
        gearmand-memory | gearmand-sqlite)
            local extra=()
            [[ -n $GEARMAND_THREADS ]] && extra+=(-t "$GEARMAND_THREADS")
            [[ $target == gearmand-sqlite ]] && extra+=(-q libsqlite3 "--libsqlite3-db=$db_dir/gm.sqlite")
            "$GEARMAND" -L 127.0.0.1 -p "$port" "${extra[@]}" --verbose=ERROR -l "$work/$target.gearmand-log" \
                >"$log" 2>&1 & ;;
    esac
    server_pid=$!
    if ! wait_answering "127.0.0.1:$port"; then
        echo "$target did not start on 127.0.0.1:$port:" >&2
        tail -20 "$log" >&2 || true
        exit 1
    fi
}

field() { sed -n "s/.*\"$2\":\\([^,}]*\\).*/\\1/p" <<<"$1"; }

failures=0
declare -A results # target -> lines "enqueue/s drain/s enq_cpu_s drain_cpu_s peak_rss p50_us p99_us"
unique=()
[[ $UNIQUE_KEYS == 1 ]] && unique=(--unique-keys)
bench_timeout=$((${ENQUEUE_TIMEOUT%.*} + ${DRAIN_TIMEOUT%.*} + 60))
echo "running $((RUNS * ${#targets[@]})) benchmarks: $JOBS background jobs of $PAYLOAD B each ($CLIENTS clients x $IN_FLIGHT in flight), drained by $WORKERS workers" >&2
for run in $(seq "$RUNS"); do
    for target in "${targets[@]}"; do
        jobs=$JOBS
        [[ $target == gearmand-sqlite ]] && jobs=$GEARMAND_SQLITE_JOBS
        start_server "$target"
        set +e
        line=$(timeout "$bench_timeout" "$gearlock" bench -s "127.0.0.1:$port" --json --mode background \
            --jobs "$jobs" "${unique[@]}" --payload-size "$PAYLOAD" --clients "$CLIENTS" --in-flight "$IN_FLIGHT" \
            --workers "$WORKERS" --worker-concurrency "$WORKER_CONCURRENCY" --enqueue-timeout "$ENQUEUE_TIMEOUT" --drain-timeout "$DRAIN_TIMEOUT" \
            --job-timeout "$ENQUEUE_TIMEOUT" --server-pid "$server_pid" 2>"$work/bench.err")
        status=$?
        set -e
        stop_server
        [[ -n $JSON_OUT && -n $line ]] && echo "$line" >>"$JSON_OUT"
        if [[ $status -ne 0 || -z $line ]]; then
            failures=$((failures + 1))
            echo "run $run, $target: FAILED (exit $status): $(head -c 500 "$work/bench.err")" >&2
            tail -5 "$work/$target.log" >&2 || true
            continue
        fi
        enq=$(field "$line" jobs_per_s)
        drain=$(field "$line" drain_per_s)
        echo "run $run, $target: $jobs jobs, enqueue $enq jobs/s, drain $drain jobs/s" >&2
        results[$target]+="$enq $drain $(field "$line" server_cpu_s) $(field "$line" drain_server_cpu_s) $(field "$line" server_peak_rss_bytes) $(field "$line" latency_p50_us) $(field "$line" latency_p99_us)"$'\n'
    done
done

# --- Table --------------------------------------------------------------------------------------
# The median of column $1 of the lines on stdin (the lower middle for an even count).
median() { awk -v c="$1" '{print $c}' | sort -g | awk '{v[NR]=$1} END {if (NR) print v[int((NR+1)/2)]; else print "-"}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a+0 > 0 && b+0 > 0) printf (a / b < 0.1 ? "%.3f" : "%.2f"), a / b; else print "-" }'; }
mib() { awk -v b="$1" 'BEGIN { if (b+0 > 0) printf "%.1f", b / 1048576; else print "-" }'; }
num() { awk -v v="$1" -v d="$2" 'BEGIN { if (v ~ /^[0-9.]+$/) printf "%.*f", d, v; else print "-" }'; }
ms() { awk -v v="$1" 'BEGIN { if (v ~ /^[0-9.]+$/) printf "%.1f", v / 1000; else print "-" }'; }

declare -A enq_median drain_median
for target in "${targets[@]}"; do
    lines=${results[$target]:-}
    [[ -n $lines ]] || continue
    enq_median[$target]=$(median 1 <<<"${lines%$'\n'}")
    drain_median[$target]=$(median 2 <<<"${lines%$'\n'}")
done

describe() {
    case $1 in
        gearlock-memory) echo "Gearlock, memory" ;;
        gearlock-sqlite) echo "Gearlock, SQLite (synchronous FULL)" ;;
        gearlock-sqlite-normal) echo "Gearlock, SQLite (synchronous NORMAL)" ;;
        gearmand-memory) echo "gearmand, memory" ;;
        gearmand-sqlite) echo "gearmand, libsqlite3" ;;
    esac
}

cpu_model=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)
echo
echo "Background jobs on loopback: $JOBS jobs of $PAYLOAD B$([[ $GEARMAND_SQLITE_JOBS != "$JOBS" && " ${targets[*]} " == *" gearmand-sqlite "* ]] && echo " ($GEARMAND_SQLITE_JOBS for gearmand's libsqlite3)") enqueued by $CLIENTS clients x $IN_FLIGHT SUBMIT_JOB_BG in flight$([[ $UNIQUE_KEYS == 1 ]] && echo ", each with its own unique key"),"
echo "then drained by $WORKERS workers (concurrency $WORKER_CONCURRENCY); every job checked delivered exactly once. Median of $RUNS run(s), a fresh server and database each."
echo "$(nproc) CPUs: ${cpu_model:-unknown}; $(uname -sr); databases on $fs_type."
echo "gearlock $("$gearlock" --version)$([[ -n $GEARMAND ]] && echo "; $("$GEARMAND" --version 2>&1 | grep -m1 .)"). The load generator runs on the same machine."
echo
echo "| server | enqueue jobs/s | vs gearmand mem | vs Gearlock mem | drain jobs/s | vs gearmand mem | vs Gearlock mem | server CPU s (enqueue + drain) | enqueue p50 / p99 ms | server peak RSS MiB |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
for target in "${targets[@]}"; do
    lines=${results[$target]:-}
    if [[ -z $lines ]]; then
        echo "| $(describe "$target") | FAILED | | | | | | | | |"
        continue
    fi
    lines=${lines%$'\n'}
    enq=${enq_median[$target]}
    drain=${drain_median[$target]}
    p50=$(ms "$(median 6 <<<"$lines")")
    p99=$(ms "$(median 7 <<<"$lines")")
    printf '| %s | %s | %s | %s | %s | %s | %s | %s + %s | %s / %s | %s |\n' "$(describe "$target")" \
        "$(num "$enq" 0)" "$(ratio "$enq" "${enq_median[gearmand-memory]:-}")" \
        "$(ratio "$enq" "${enq_median[gearlock-memory]:-}")" \
        "$(num "$drain" 0)" "$(ratio "$drain" "${drain_median[gearmand-memory]:-}")" \
        "$(ratio "$drain" "${drain_median[gearlock-memory]:-}")" \
        "$(num "$(median 3 <<<"$lines")" 2)" "$(num "$(median 4 <<<"$lines")" 2)" "$p50" "$p99" \
        "$(mib "$(median 5 <<<"$lines")")"
done

if ((failures > 0)); then
    echo "$failures run(s) failed" >&2
    exit 1
fi
