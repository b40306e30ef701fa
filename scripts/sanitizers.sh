#!/usr/bin/env bash
# Runs the test suite under a sanitizer, in a build directory of its own.
#
#   scripts/sanitizers.sh address|thread [FILTER…]
#
# address  swift test --sanitize=address  (AddressSanitizer; build in .build-asan/)
# thread   swift test --sanitize=thread   (ThreadSanitizer; build in .build-tsan/)
# FILTER   optional --filter expressions (suite or test names, regular expressions); without one the
#          whole suite runs. E.g. `scripts/sanitizers.sh address GearmanProtocolTests GearmanServerTests`.
# SERIAL=1 runs the tests one at a time (`--no-parallel`): under ThreadSanitizer everything is 5-15
#          times slower, and in parallel on a small machine the tests' deadlines expire.
#
# The integration tests start the `gearlock` binary from .build/debug, which this script builds
# with the same sanitizer and places there for the run (the plain binary is put back afterwards).
# A sanitizer report fails the run: ASAN_OPTIONS/TSAN_OPTIONS make
# every report fatal, with exit code 66. Expect a build of 10-20 minutes on two cores and a run
# several times slower than the plain suite; not part of CI (SECURITY.md, "How we test it").
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

kind=${1:-}
case $kind in
    address) scratch=.build-asan ;;
    thread) scratch=.build-tsan ;;
    -h | --help | "") sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; [[ -n $kind ]]; exit $? ;;
    *) echo "usage: $0 address|thread [FILTER…]" >&2; exit 64 ;;
esac
shift

# scripts/asan-suppressions.txt: a heap overflow inside Foundation's Process.run (see there).
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=0:halt_on_error=1:exitcode=66:suppressions=$PWD/scripts/asan-suppressions.txt}
# scripts/tsan-suppressions.txt: ThreadSanitizer cannot see Synchronization.Mutex on Linux (see there).
export TSAN_OPTIONS=${TSAN_OPTIONS:-halt_on_error=1:exitcode=66:suppressions=$PWD/scripts/tsan-suppressions.txt}

filters=()
for filter in "$@"; do filters+=(--filter "$filter"); done

echo "==> swift build --build-tests --sanitize=$kind --scratch-path $scratch" >&2
swift build --build-tests --sanitize="$kind" --scratch-path "$scratch"

# The integration tests run .build/debug/gearlock: put the instrumented one there for this run.
bin=$(swift build --sanitize="$kind" --scratch-path "$scratch" --show-bin-path)
mkdir -p .build/debug
if [[ -e .build/debug/gearlock && ! -e .build/debug/gearlock.uninstrumented ]]; then
    mv .build/debug/gearlock .build/debug/gearlock.uninstrumented
fi
restore() {
    if [[ -e .build/debug/gearlock.uninstrumented ]]; then
        mv -f .build/debug/gearlock.uninstrumented .build/debug/gearlock
    else
        rm -f .build/debug/gearlock
    fi
}
trap restore EXIT
cp "$bin/gearlock" .build/debug/gearlock

echo "==> swift test --sanitize=$kind ${filters[*]}" >&2
serial=()
[[ -n ${SERIAL:-} ]] && serial=(--no-parallel)
swift test --skip-build --sanitize="$kind" --scratch-path "$scratch" "${serial[@]}" "${filters[@]}"
