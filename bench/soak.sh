#!/usr/bin/env bash
# Soak run: mixed load with faults against `gearlock serve`, then checks that nothing was lost or
# duplicated and that the server's file descriptors and RSS came back to their baseline.
#
#   bench/soak.sh [--seconds N] [--rss-tolerance-mib M] [--seed S]
#
# --seconds is the length of the soak after a warm-up (default 600, the documented long run; CI runs
# 50 with the debug build). The load: 3 foreground clients, a paced background submitter on the
# SQLite queue, 3 + 2 `gearlock work` workers (the foreground ones SIGKILLed at random every 0.5-2 s
# and replaced, --job-retries 3), connection churn (FIN, RST, half a header) and garbage connections
# (seeded random bytes, --packet-timeout 2). bench/soak.py holds the driver and lists every check.
# The binary: $GEARLOCK when set (e.g. GEARLOCK=.build/debug/gearlock), else the release build
# (built first unless SKIP_BUILD is set). Exit 1 when a check fails.
set -euo pipefail

# shellcheck source=bench/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
for arg in "$@"; do
    case $arg in
        -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    esac
done
cd "$bench_root"
bench_gearlock
exec python3 bench/soak.py --gearlock "$gearlock" "$@"
