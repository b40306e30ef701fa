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
#   JSON_OUT=FILE       also append every run's JSON line to FILE
set -euo pipefail

SIZES=${SIZES:-"100 65536"}
RUNS=${RUNS:-3}
DURATION=${DURATION:-10}
WARMUP=${WARMUP:-1}
WORKERS=${WORKERS:-4}
CLIENTS=${CLIENTS:-4}
IN_FLIGHT=${IN_FLIGHT:-16}
WORKER_CONCURRENCY=${WORKER_CONCURRENCY:-1}
GEARMAND=${GEARMAND-/usr/sbin/gearmand}
GEARMAND_THREADS=${GEARMAND_THREADS:-}
JSON_OUT=${JSON_OUT:-}

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

if [[ -z ${SKIP_BUILD:-} ]]; then
    echo "building: swift build -c release --product gearlock" >&2
    swift build -c release --product gearlock >&2
fi
gearlock="$(swift build -c release --show-bin-path)/gearlock"
[[ -x $gearlock ]] || { echo "no release build at $gearlock (run without SKIP_BUILD)" >&2; exit 1; }

work=$(mktemp -d "${TMPDIR:-/tmp}/gearlock-bench.XXXXXX")
pids=()
cleanup() {
    local pid
    for pid in "${pids[@]}"; do
        kill -TERM "$pid" 2>/dev/null || true
    done
    for pid in "${pids[@]}"; do
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

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

# Waits until `gearlock admin ARGS… version` answers (10 s at most).
wait_answering() {
    for _ in $(seq 100); do
        if "$gearlock" admin --timeout 1 "$@" version >/dev/null 2>&1; then return 0; fi
        sleep 0.1
    done
    echo "no server answered: gearlock admin $* version" >&2
    return 1
}

# --- PKI: a CA, a server certificate for 127.0.0.1/localhost, a client certificate -------------
pki="$work/pki"
"$gearlock" certs init --dir "$pki" --name "gearlock bench CA" >/dev/null
"$gearlock" certs issue server --dir "$pki" --name bench-server --dns localhost --ip 127.0.0.1 >/dev/null
"$gearlock" certs issue client --dir "$pki" --name bench-client >/dev/null
tls_client=(--tls-ca "$pki/ca.pem" --tls-cert "$pki/clients/bench-client.pem" --tls-key "$pki/clients/bench-client.key")

# --- Servers ----------------------------------------------------------------------------------
plain_port=$(free_port)
tls_port=$(free_port)
while [[ $tls_port == "$plain_port" ]]; do tls_port=$(free_port); done
"$gearlock" serve --log-level warning --queue memory \
    --listen "127.0.0.1:$plain_port" \
    --tls-listen "127.0.0.1:$tls_port" \
    --tls-cert "$pki/servers/bench-server.pem" --tls-key "$pki/servers/bench-server.key" \
    --tls-ca "$pki/ca.pem" \
    >"$work/gearlock.log" 2>&1 &
gearlock_pid=$!
pids+=("$gearlock_pid")
wait_answering -s "127.0.0.1:$plain_port"
wait_answering -s "127.0.0.1:$tls_port" "${tls_client[@]}"

gearmand_pid=
if [[ -n $GEARMAND ]]; then
    if [[ -x $GEARMAND ]]; then
        gearmand_port=$(free_port)
        while [[ $gearmand_port == "$plain_port" || $gearmand_port == "$tls_port" ]]; do gearmand_port=$(free_port); done
        threads=()
        [[ -n $GEARMAND_THREADS ]] && threads=(-t "$GEARMAND_THREADS")
        "$GEARMAND" -L 127.0.0.1 -p "$gearmand_port" "${threads[@]}" --verbose=ERROR -l "$work/gearmand.log" \
            >"$work/gearmand.out" 2>&1 &
        gearmand_pid=$!
        pids+=("$gearmand_pid")
        wait_answering -s "127.0.0.1:$gearmand_port"
    else
        echo "note: $GEARMAND not found; no gearmand rows (install gearman-job-server)" >&2
        GEARMAND=
    fi
fi

# --- Runs ---------------------------------------------------------------------------------------
targets=(gearlock-plain gearlock-tls)
[[ -n $GEARMAND ]] && targets+=(gearmand-plain)

field() { sed -n "s/.*\"$2\":\\([^,}]*\\).*/\\1/p" <<<"$1"; }

failures=0
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
            set +e
            line=$(timeout "$bench_timeout" "$gearlock" bench "${connect[@]}" --json --mode foreground \
                --workers "$WORKERS" --worker-concurrency "$WORKER_CONCURRENCY" --clients "$CLIENTS" \
                --in-flight "$IN_FLIGHT" --payload-size "$size" --duration "$DURATION" --warmup "$WARMUP" \
                --server-pid "$pid" 2>"$work/bench.err")
            status=$?
            set -e
            [[ -n $JSON_OUT && -n $line ]] && echo "$line" >>"$JSON_OUT"
            if [[ $status -ne 0 || -z $line ]]; then
                failures=$((failures + 1))
                echo "run $run, $target, $size B: FAILED (exit $status): $(head -c 500 "$work/bench.err")" >&2
                continue
            fi
            rate=$(field "$line" jobs_per_s)
            echo "run $run, $target, $size B: $rate jobs/s" >&2
            results["$target $size"]+="$rate $(field "$line" latency_p50_us) $(field "$line" latency_p99_us) $(field "$line" server_cpu_us_per_job) $(field "$line" server_peak_rss_bytes)"$'\n'
        done
    done
done

# --- Table --------------------------------------------------------------------------------------
# The median of column $1 of the lines on stdin (the lower middle for an even count).
median() { awk -v c="$1" '{print $c}' | sort -g | awk '{v[NR]=$1} END {if (NR) print v[int((NR+1)/2)]; else print "-"}'; }
# max of column $1
maximum() { awk -v c="$1" 'NR==1||$c>m{m=$c} END {if (NR) print m; else print "-"}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a+0 > 0 && b+0 > 0) printf "%.2f", a / b; else print "-" }'; }
human_size() { if (($1 >= 1024)); then echo "$(($1 / 1024)) KiB"; else echo "$1 B"; fi; }
mib() { awk -v b="$1" 'BEGIN { if (b+0 > 0) printf "%.1f", b / 1048576; else print "-" }'; }
us() { awk -v v="$1" 'BEGIN { if (v ~ /^[0-9.]+$/) printf "%.0f", v; else print "-" }'; }

cpu_model=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)
echo
echo "Foreground jobs, loopback, $WORKERS workers (concurrency $WORKER_CONCURRENCY), $CLIENTS clients x $IN_FLIGHT in flight,"
echo "${DURATION} s measured after ${WARMUP} s warm-up, median of $RUNS runs. $(nproc) CPUs: ${cpu_model:-unknown}; $(uname -sr)."
echo "gearlock $("$gearlock" --version)$([[ -n $GEARMAND ]] && echo "; $("$GEARMAND" --version 2>&1 | grep -m1 .)")"
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

if ((failures > 0)); then
    echo "$failures run(s) failed; server logs: gearlock.log / gearmand.log were in $work" >&2
    tail -20 "$work/gearlock.log" >&2 || true
    exit 1
fi
