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
#   GEARLOCK=PATH        use this gearlock binary (no build)
#   JSON_OUT=FILE        also append every run's JSON line to FILE
set -euo pipefail

# shellcheck source=bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
bench_options "$@"
bench_quick_defaults JOBS=2000 RUNS=1 IN_FLIGHT=16 ENQUEUE_TIMEOUT=60 DRAIN_TIMEOUT=60
JOBS=${JOBS:-100000}
PAYLOAD=${PAYLOAD:-100}
IN_FLIGHT=${IN_FLIGHT:-64}
bench_load_settings
UNIQUE_KEYS=${UNIQUE_KEYS:-1}
SYNC_NORMAL=${SYNC_NORMAL:-1}
GEARMAND_SQLITE=${GEARMAND_SQLITE:-1}
GEARMAND_SQLITE_JOBS=${GEARMAND_SQLITE_JOBS:-$((JOBS < 10000 ? JOBS : 10000))}
ENQUEUE_TIMEOUT=${ENQUEUE_TIMEOUT:-600}
DRAIN_TIMEOUT=${DRAIN_TIMEOUT:-600}

bench_gearlock
bench_workdir gearlock-durable-bench
work=$bench_work
db_dir=${DB_DIR:-$work}
mkdir -p "$db_dir"
server_pid=
# Stops the server of the current run.
stop_server() {
    bench_stop "$server_pid"
    server_pid=
}

fs_type=$(findmnt -n -o FSTYPE --target "$db_dir" 2>/dev/null || stat -f -c %T "$db_dir" 2>/dev/null || echo unknown)
if [[ $fs_type == tmpfs || $fs_type == ramfs ]]; then
    echo "warning: $db_dir is on $fs_type: fsync costs nothing there; set DB_DIR to a directory on disk" >&2
fi

bench_check_gearmand
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
    port=$(bench_free_port)
    rm -f "$db_dir"/q.sqlite* "$db_dir"/gm.sqlite*
    case $target in
        gearlock-memory)
            bench_spawn "$log" "$gearlock" serve --log-level warning --listen "127.0.0.1:$port" --queue memory ;;
        gearlock-sqlite)
            bench_spawn "$log" "$gearlock" serve --log-level warning --listen "127.0.0.1:$port" \
                --queue "sqlite:$db_dir/q.sqlite" ;;
        gearlock-sqlite-normal)
            bench_spawn "$log" "$gearlock" serve --log-level warning --listen "127.0.0.1:$port" \
                --queue "sqlite:$db_dir/q.sqlite" --queue-sync-normal ;;
        gearmand-memory) bench_spawn_gearmand "$port" "$target" ;;
        gearmand-sqlite) bench_spawn_gearmand "$port" "$target" -q libsqlite3 "--libsqlite3-db=$db_dir/gm.sqlite" ;;
    esac
    server_pid=$bench_last_pid
    if ! bench_wait_answering "$server_pid" -s "127.0.0.1:$port" 2>/dev/null; then
        echo "$target did not start on 127.0.0.1:$port:" >&2
        tail -20 "$log" >&2 || true
        exit 1
    fi
}

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
        if ! bench_run "run $run, $target" "$bench_timeout" -s "127.0.0.1:$port" --mode background \
            --jobs "$jobs" "${unique[@]}" --payload-size "$PAYLOAD" --clients "$CLIENTS" --in-flight "$IN_FLIGHT" \
            --workers "$WORKERS" --worker-concurrency "$WORKER_CONCURRENCY" --enqueue-timeout "$ENQUEUE_TIMEOUT" --drain-timeout "$DRAIN_TIMEOUT" \
            --job-timeout "$ENQUEUE_TIMEOUT" --server-pid "$server_pid"; then
            stop_server
            tail -5 "$work/$target.log" >&2 || true
            continue
        fi
        stop_server
        line=$bench_line
        enq=$(field "$line" jobs_per_s)
        drain=$(field "$line" drain_per_s)
        echo "run $run, $target: $jobs jobs, enqueue $enq jobs/s, drain $drain jobs/s" >&2
        results[$target]+="$enq $drain $(field "$line" server_cpu_s) $(field "$line" drain_server_cpu_s) $(field "$line" server_peak_rss_bytes) $(field "$line" latency_p50_us) $(field "$line" latency_p99_us)"$'\n'
    done
done

# --- Table --------------------------------------------------------------------------------------

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

echo
echo "Background jobs on loopback: $JOBS jobs of $PAYLOAD B$([[ $GEARMAND_SQLITE_JOBS != "$JOBS" && " ${targets[*]} " == *" gearmand-sqlite "* ]] && echo " ($GEARMAND_SQLITE_JOBS for gearmand's libsqlite3)") enqueued by $CLIENTS clients x $IN_FLIGHT SUBMIT_JOB_BG in flight$([[ $UNIQUE_KEYS == 1 ]] && echo ", each with its own unique key"),"
echo "then drained by $WORKERS workers (concurrency $WORKER_CONCURRENCY); every job checked delivered exactly once. Median of $RUNS run(s), a fresh server and database each."
echo "$(bench_machine); databases on $fs_type."
echo "$(bench_versions). The load generator runs on the same machine."
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

if ((bench_failures > 0)); then
    echo "$bench_failures run(s) failed" >&2
    exit 1
fi
