# shellcheck shell=bash
# Shell functions shared by the bench/ scripts (sourced, not run). See bench/README.md.
#
# The scripts set `set -euo pipefail`, source this file, call bench_options (which also moves to
# the repository's root, $bench_root), read their settings (bench_load_settings) and then call, in
# this order:
#   bench_gearlock          find or build the gearlock binary: sets $gearlock
#   bench_workdir PREFIX    a temporary directory ($bench_work), deleted on exit with every
#                           process bench_spawn started
# and then use the rest as they need.

# --- Options and settings ---------------------------------------------------------------------------

bench_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

# The command line of a script that takes only --quick: sets quick to 1 with --quick; prints the
# script's header comment for -h/--help. Then moves to the repository's root.
bench_options() {
    local arg
    # shellcheck disable=SC2034 # quick is for the caller
    quick=
    # shellcheck disable=SC2034
    for arg in "$@"; do
        case $arg in
            --quick) quick=1 ;;
            -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
            *) echo "usage: $0 [--quick]" >&2; exit 64 ;;
        esac
    done
    cd "$bench_root" || exit 1
}

# With --quick: each NAME=VALUE argument sets NAME to VALUE unless NAME is set already.
bench_quick_defaults() {
    [[ -n $quick ]] || return 0
    local pair name
    for pair in "$@"; do
        name=${pair%%=*}
        [[ -n ${!name:-} ]] || printf -v "$name" '%s' "${pair#*=}"
    done
}

# The load's settings with their defaults (set ones are kept): RUNS=3, DURATION=10, WARMUP=1,
# WORKERS=4, CLIENTS=4, IN_FLIGHT=16, WORKER_CONCURRENCY=1; and GEARMAND (empty: none),
# GEARMAND_THREADS, JSON_OUT.
bench_load_settings() {
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
}

# --- The binary -----------------------------------------------------------------------------------

# Sets $gearlock: $GEARLOCK when given (any build, used as is), else the release build, built first
# unless SKIP_BUILD is set.
bench_gearlock() {
    if [[ -n ${GEARLOCK:-} ]]; then
        gearlock=$GEARLOCK
        [[ -x $gearlock ]] || { echo "GEARLOCK=$gearlock is not an executable" >&2; exit 1; }
        return 0
    fi
    if [[ -z ${SKIP_BUILD:-} ]]; then
        echo "building: swift build -c release --product gearlock" >&2
        swift build -c release --product gearlock >&2
    fi
    gearlock="$(swift build -c release --show-bin-path)/gearlock"
    [[ -x $gearlock ]] || { echo "no release build at $gearlock (run without SKIP_BUILD)" >&2; exit 1; }
}

# --- Processes and the work directory ---------------------------------------------------------------

bench_pids=()
bench_work=

# Creates the temporary directory $bench_work (named after PREFIX) and the EXIT trap that stops
# every process bench_spawn started and deletes the directory.
bench_workdir() {
    bench_work=$(mktemp -d "${TMPDIR:-/tmp}/$1.XXXXXX")
    trap bench_cleanup EXIT
    trap 'exit 130' INT TERM
}

bench_cleanup() {
    local pid
    for pid in "${bench_pids[@]}"; do
        kill -TERM "$pid" 2>/dev/null || true
    done
    for pid in "${bench_pids[@]}"; do
        bench_stop "$pid"
    done
    [[ -n $bench_work ]] && rm -rf "$bench_work"
    return 0
}

# Runs COMMAND… in the background with its stdout and stderr in LOG; sets $bench_last_pid.
bench_spawn() {
    local log=$1
    shift
    "$@" >"$log" 2>&1 &
    bench_last_pid=$!
    bench_pids+=("$bench_last_pid")
}

# Stops PID: SIGTERM, then SIGKILL after 5 s; waits for it and forgets it.
bench_stop() {
    local pid=$1 kept=() other
    [[ -n $pid ]] || return 0
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    for other in "${bench_pids[@]}"; do
        [[ $other == "$pid" ]] || kept+=("$other")
    done
    bench_pids=("${kept[@]}")
}

# --- Ports and servers ----------------------------------------------------------------------------

# Prints a loopback port nobody listens on (a TCP connect to it is refused) and that no earlier call
# handed out (they are listed in $bench_work/ports, so calls in command substitutions see each other).
# It is below the kernel's range of ephemeral ports when that leaves room, so no client connection
# (nor one in TIME_WAIT after thousands of idle connections closed) holds it.
bench_free_port() {
    local port low span=40000
    low=$(awk '{print $1}' /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || echo 0)
    ((low > 21000)) && span=$((low - 20000))
    while true; do
        port=$((20000 + RANDOM % span))
        grep -qx "$port" "$bench_work/ports" 2>/dev/null && continue
        if ! (: <"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            echo "$port" >>"$bench_work/ports"
            echo "$port"
            return
        fi
    done
}

# Waits (10 s at most) until `gearlock admin ARGS… version` answers. With a PID other than "-",
# gives up as soon as that process has exited.
bench_wait_answering() {
    local pid=$1
    shift
    for _ in $(seq 100); do
        if [[ $pid != - ]] && ! kill -0 "$pid" 2>/dev/null; then break; fi
        if "$gearlock" admin --timeout 1 "$@" version >/dev/null 2>&1; then return 0; fi
        sleep 0.1
    done
    echo "no server answered: gearlock admin $* version" >&2
    return 1
}

# Clears GEARMAND (no gearmand rows) when it is set but not an executable.
bench_check_gearmand() {
    if [[ -n $GEARMAND && ! -x $GEARMAND ]]; then
        echo "note: $GEARMAND not found; no gearmand rows (install gearman-job-server)" >&2
        GEARMAND=
    fi
}

# Starts `$GEARMAND -L 127.0.0.1 -p PORT` (with -t $GEARMAND_THREADS when set) and EXTRA… options,
# its output in $bench_work/NAME.log and its own log in $bench_work/NAME.gearmand-log; sets
# $bench_last_pid.
bench_spawn_gearmand() {
    local port=$1 name=$2 threads=()
    shift 2
    [[ -n ${GEARMAND_THREADS:-} ]] && threads=(-t "$GEARMAND_THREADS")
    bench_spawn "$bench_work/$name.log" "$GEARMAND" -L 127.0.0.1 -p "$port" "${threads[@]}" "$@" \
        --verbose=ERROR -l "$bench_work/$name.gearmand-log"
}

# A throwaway PKI in DIR with `gearlock certs`: a CA, a server certificate for 127.0.0.1 and
# localhost, a client certificate. Sets the arrays tls_server (for `gearlock serve`, client
# certificates required) and tls_client (for the client commands).
bench_pki() {
    local pki=$1
    "$gearlock" certs init --dir "$pki" --name "gearlock bench CA" >/dev/null
    "$gearlock" certs issue server --dir "$pki" --name bench-server --dns localhost --ip 127.0.0.1 >/dev/null
    "$gearlock" certs issue client --dir "$pki" --name bench-client >/dev/null
    # shellcheck disable=SC2034 # for the caller
    tls_server=(--tls-cert "$pki/servers/bench-server.pem" --tls-key "$pki/servers/bench-server.key" --tls-ca "$pki/ca.pem")
    # shellcheck disable=SC2034 # for the caller
    tls_client=(--tls-ca "$pki/ca.pem" --tls-cert "$pki/clients/bench-client.pem" --tls-key "$pki/clients/bench-client.key")
}

# --- Runs -----------------------------------------------------------------------------------------

bench_failures=0
bench_line=

# Runs `gearlock bench --json ARGS…`, bounded by LIMIT seconds, and sets bench_line to its JSON
# line (appended to $JSON_OUT when that is set). A run that fails (a non-zero exit, a timeout, no
# output) is counted in bench_failures and reported on stderr as NAME: FAILED; bench_line is then
# empty and the status 1.
bench_run() {
    local name=$1 limit=$2 status
    shift 2
    set +e
    bench_line=$(timeout "$limit" "$gearlock" bench --json "$@" 2>"$bench_work/bench.err")
    status=$?
    set -e
    [[ -n ${JSON_OUT:-} && -n $bench_line ]] && echo "$bench_line" >>"$JSON_OUT"
    if [[ $status -ne 0 || -z $bench_line ]]; then
        bench_failures=$((bench_failures + 1))
        echo "$name: FAILED (exit $status): $(head -c 500 "$bench_work/bench.err")" >&2
        bench_line=
        return 1
    fi
}

# --- Numbers ----------------------------------------------------------------------------------------

# The value of KEY in the one-line JSON object LINE (numbers, true/false/null; strings with quotes).
field() { sed -n "s/.*\"$2\":\\([^,}]*\\).*/\\1/p" <<<"$1"; }
# The median of column $1 of the lines on stdin (the lower middle for an even count), "-" if none.
median() { awk -v c="$1" '{print $c}' | sort -g | awk '{v[NR]=$1} END {if (NR) print v[int((NR+1)/2)]; else print "-"}'; }
# The largest value of column $1 of the lines on stdin, "-" if none.
maximum() { awk -v c="$1" 'NR==1||$c>m{m=$c} END {if (NR) print m; else print "-"}'; }
# $1 / $2 with two decimals (three below 0.1), "-" unless both are positive numbers.
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a+0 > 0 && b+0 > 0) printf (a / b < 0.1 ? "%.3f" : "%.2f"), a / b; else print "-" }'; }
# Bytes as MiB with one decimal, "-" for no number.
mib() { awk -v b="$1" 'BEGIN { if (b+0 > 0) printf "%.1f", b / 1048576; else print "-" }'; }
# $1 with $2 decimals, "-" for no number.
num() { awk -v v="$1" -v d="$2" 'BEGIN { if (v ~ /^-?[0-9.]+$/) printf "%.*f", d, v; else print "-" }'; }
# Microseconds as whole µs, "-" for no number.
us() { num "$1" 0; }
# Microseconds as ms with one decimal, "-" for no number.
ms() { awk -v v="$1" 'BEGIN { if (v ~ /^[0-9.]+$/) printf "%.1f", v / 1000; else print "-" }'; }
# Bytes as "N B", "N KiB", "N MiB" or "N GiB" (whole units).
human_size() {
    if (($1 >= 1 << 30)); then echo "$(($1 >> 30)) GiB"
    elif (($1 >= 1 << 20)); then echo "$(($1 >> 20)) MiB"
    elif (($1 >= 1024)); then echo "$(($1 >> 10)) KiB"
    else echo "$1 B"; fi
}

# One line on the machine: CPUs, CPU model, kernel.
bench_machine() {
    local model
    model=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)
    echo "$(nproc) CPUs: ${model:-unknown}; $(uname -sr)"
}

# One line on the software: gearlock's version and, with $GEARMAND, gearmand's.
bench_versions() {
    echo "gearlock $("$gearlock" --version)$([[ -n $GEARMAND ]] && echo "; $("$GEARMAND" --version 2>&1 | grep -m1 .)")"
}
