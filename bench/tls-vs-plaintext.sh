#!/usr/bin/env bash
# Foreground jobs/s with Gearlock over plaintext and over mutual TLS, and gearmand (plaintext), on
# loopback, with `gearlock bench`. Prints a table of medians and the TLS/plaintext and
# Gearlock/gearmand ratios. See bench/README.md.
#
# Settings (environment variables):
#   SIZES="100 65536"   payload sizes in bytes
#   RUNS=3              runs per row (the table shows medians)
#   DURATION=10         measured seconds per run
#   WARMUP=1            warm-up seconds per run
#   WORKERS=4 CLIENTS=4 IN_FLIGHT=16 WORKER_CONCURRENCY=1
#   GEARMAND=/usr/sbin/gearmand   set to "" to skip gearmand
#   GEARMAND_THREADS=             gearmand -t N (default: gearmand's own default)
#   SKIP_BUILD=1        use the existing release build
#   GEARLOCK=PATH       use this gearlock binary (no build)
#   JSON_OUT=FILE       also append every run's JSON line to FILE
set -euo pipefail

# shellcheck source=bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$bench_root"

SIZES=${SIZES:-"100 65536"}
bench_load_settings


bench_gearlock
bench_workdir gearlock-bench
work=$bench_work

# --- PKI: a CA, a server certificate for 127.0.0.1/localhost, a client certificate -------------
bench_pki "$work/pki"

# --- Servers ----------------------------------------------------------------------------------
plain_port=$(bench_free_port)
tls_port=$(bench_free_port)
bench_spawn "$work/gearlock.log" "$gearlock" serve --log-level warning --queue memory \
    --listen "127.0.0.1:$plain_port" --tls-listen "127.0.0.1:$tls_port" "${tls_server[@]}"
gearlock_pid=$bench_last_pid
bench_wait_answering "$gearlock_pid" -s "127.0.0.1:$plain_port"
bench_wait_answering "$gearlock_pid" -s "127.0.0.1:$tls_port" "${tls_client[@]}"

gearmand_pid=
bench_check_gearmand
if [[ -n $GEARMAND ]]; then
    gearmand_port=$(bench_free_port)
    bench_spawn_gearmand "$gearmand_port" gearmand
    gearmand_pid=$bench_last_pid
    bench_wait_answering "$gearmand_pid" -s "127.0.0.1:$gearmand_port"
fi

# --- Runs ---------------------------------------------------------------------------------------
targets=(gearlock-plain gearlock-tls)
[[ -n $GEARMAND ]] && targets+=(gearmand-plain)

declare -A results # "$target $size" -> lines "jobs_per_s p50 p99 cpu_us_per_job peak_rss"
bench_timeout=$((${DURATION%.*} + ${WARMUP%.*} + 60))
total_runs=$((RUNS * $(wc -w <<<"$SIZES") * ${#targets[@]}))
echo "running $total_runs benchmarks of ${WARMUP}+${DURATION} s each" >&2
for run in $(seq "$RUNS"); do
    for size in $SIZES; do
        for target in "${targets[@]}"; do
            case $target in
                gearlock-plain) connect=(-s "127.0.0.1:$plain_port"); pid=$gearlock_pid ;;
                gearlock-tls) connect=(-s "127.0.0.1:$tls_port" "${tls_client[@]}"); pid=$gearlock_pid ;;
                gearmand-plain) connect=(-s "127.0.0.1:$gearmand_port"); pid=$gearmand_pid ;;
            esac
            bench_run "run $run, $target, $size B" "$bench_timeout" "${connect[@]}" --mode foreground \
                --workers "$WORKERS" --worker-concurrency "$WORKER_CONCURRENCY" --clients "$CLIENTS" \
                --in-flight "$IN_FLIGHT" --payload-size "$size" --duration "$DURATION" --warmup "$WARMUP" \
                --server-pid "$pid" || continue
            line=$bench_line
            rate=$(field "$line" jobs_per_s)
            echo "run $run, $target, $size B: $rate jobs/s" >&2
            results["$target $size"]+="$rate $(field "$line" latency_p50_us) $(field "$line" latency_p99_us) $(field "$line" server_cpu_us_per_job) $(field "$line" server_peak_rss_bytes)"$'\n'
        done
    done
done

# --- Table --------------------------------------------------------------------------------------
echo
echo "Foreground jobs, loopback, $WORKERS workers (concurrency $WORKER_CONCURRENCY), $CLIENTS clients x $IN_FLIGHT in flight,"
echo "${DURATION} s measured after ${WARMUP} s warm-up, median of $RUNS runs. $(bench_machine)."
bench_versions
echo "The load generator (gearlock bench, release) runs on the same machine as the server."
echo
printf '%-8s  %-16s  %10s  %9s  %9s  %12s  %13s\n' payload server jobs/s "p50 us" "p99 us" "srv us/job" "srv peak MiB"
declare -A medians
for size in $SIZES; do
    for target in "${targets[@]}"; do
        lines=${results["$target $size"]:-}
        if [[ -z $lines ]]; then
            printf '%-8s  %-16s  %10s\n' "$(human_size "$size")" "$target" FAILED
            continue
        fi
        rate=$(median 1 <<<"${lines%$'\n'}")
        medians["$target $size"]=$rate
        printf '%-8s  %-16s  %10.0f  %9s  %9s  %12s  %13s\n' "$(human_size "$size")" "$target" "$rate" \
            "$(us "$(median 2 <<<"${lines%$'\n'}")")" "$(us "$(median 3 <<<"${lines%$'\n'}")")" \
            "$(median 4 <<<"${lines%$'\n'}")" "$(mib "$(maximum 5 <<<"${lines%$'\n'}")")"
    done
done
echo
printf '%-8s  %20s  %28s\n' payload "TLS / plaintext" "gearlock / gearmand (plain)"
for size in $SIZES; do
    printf '%-8s  %20s  %28s\n' "$(human_size "$size")" \
        "$(ratio "${medians["gearlock-tls $size"]:-}" "${medians["gearlock-plain $size"]:-}")" \
        "$(ratio "${medians["gearlock-plain $size"]:-}" "${medians["gearmand-plain $size"]:-}")"
done

if ((bench_failures > 0)); then
    echo "$bench_failures run(s) failed; server logs: gearlock.log / gearmand.log were in $work" >&2
    tail -20 "$work/gearlock.log" >&2 || true
    exit 1
fi
