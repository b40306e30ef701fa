#!/usr/bin/env bash
# Builds the libFuzzer targets (Fuzz/Package.swift) with -sanitize=fuzzer,address and runs them.
#
#   Fuzz/run.sh [--smoke | --seconds N] [--jobs N] [--build-only] [TARGET...]
#
# TARGET: PacketDecoderFuzzer (alias: decoder) and/or ACLParserFuzzer (alias: acl); default both.
# Default run: 3600 s per target (the long run). --smoke: 60 s per target (CI uses --seconds 30).
# --jobs N runs N fuzzing processes per target (libFuzzer -fork=N); default 1.
# SWIFT_BUILD_JOBS (default 1) is the build's parallelism.
#
# The committed seeds in Fuzz/corpus/TARGET are read, never written: new inputs go to
# .build-fuzz/corpus/TARGET (git-ignored, kept between runs, so a long run resumes where the last
# one stopped). A crash, timeout or out-of-memory input is written to Fuzz/crashes/TARGET/
# (git-ignored) and the script exits 1 after the other targets have run. Reproduce one with
#   .build-fuzz/TARGET/release/TARGET Fuzz/crashes/TARGET/crash-…
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
if ! command -v swift >/dev/null 2>&1; then
    export PATH="/opt/swift/usr/bin:${PATH}"
fi

ALL_TARGETS=(PacketDecoderFuzzer ACLParserFuzzer)
seconds=3600
jobs=1
build_only=0
targets=()
while [ $# -gt 0 ]; do
    case "$1" in
        --smoke) seconds=60 ;;
        --seconds) seconds="$2"; shift ;;
        --jobs) jobs="$2"; shift ;;
        --build-only) build_only=1 ;;
        -h|--help) sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        decoder|PacketDecoderFuzzer) targets+=(PacketDecoderFuzzer) ;;
        acl|ACLParserFuzzer) targets+=(ACLParserFuzzer) ;;
        *) echo "error: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
    shift
done
[ ${#targets[@]} -gt 0 ] || targets=("${ALL_TARGETS[@]}")

# Per target: the longest input libFuzzer makes up (a few packets or a small ACL file is enough to
# reach every branch; longer inputs only run slower).
max_len() {
    case "$1" in
        PacketDecoderFuzzer) echo 4096 ;;
        ACLParserFuzzer) echo 8192 ;;
    esac
}

# One build path per target: SwiftPM rebuilds everything when one build path alternates between
# products, and a build of the whole Fuzz package would build every product of the root package's
# dependencies. The two targets share no module but the Swift runtime, so nothing is built twice.
build_path() { echo ".build-fuzz/$1"; }
# The targets build side by side (each a serial whole-module compile of NIOCore or Yams).
mkdir -p .build-fuzz
pids=()
for target in "${targets[@]}"; do
    echo "==> Building ${target} (log: .build-fuzz/build-${target}.log)"
    # `--sanitize=fuzzer --sanitize=address` alone reach swiftc as two options, and the last one
    # wins: Swift code would get AddressSanitizer but no coverage. `-sanitize=fuzzer,address`,
    # passed last, gives it both.
    swift build --package-path Fuzz --build-path "$(build_path "${target}")" -c release \
        --sanitize=fuzzer --sanitize=address -Xswiftc -sanitize=fuzzer,address \
        --product "${target}" -j "${SWIFT_BUILD_JOBS:-1}" >".build-fuzz/build-${target}.log" 2>&1 &
    pids+=($!)
done
for index in "${!targets[@]}"; do
    if ! wait "${pids[${index}]}"; then
        cat ".build-fuzz/build-${targets[${index}]}.log" >&2
        echo "error: building ${targets[${index}]} failed" >&2
        exit 1
    fi
    tail -n 1 ".build-fuzz/build-${targets[${index}]}.log"
done
# A build whose Swift code lacks coverage instrumentation still runs, blind; refuse it.
for target in "${targets[@]}"; do
    counters="$("$(build_path "${target}")/release/${target}" -runs=0 2>&1 |
        sed -n 's/.*(\([0-9]*\) inline 8-bit counters).*/\1/p' | head -n 1)"
    if [ "${counters:-0}" -lt 10000 ]; then
        echo "error: ${target} has ${counters:-no} coverage counters: the Swift code is not instrumented" >&2
        exit 1
    fi
done
[ "${build_only}" -eq 0 ] || exit 0

failed=()
for target in "${targets[@]}"; do
    corpus=".build-fuzz/corpus/${target}"
    crashes="Fuzz/crashes/${target}"
    mkdir -p "${corpus}" "${crashes}"
    echo "==> Fuzzing ${target} for ${seconds} s (new inputs: ${corpus}, crashes: ${crashes})"
    fork=()
    [ "${jobs}" -le 1 ] || fork=("-fork=${jobs}")
    if "$(build_path "${target}")/release/${target}" "${fork[@]}" \
        -max_total_time="${seconds}" -max_len="$(max_len "${target}")" -timeout=10 -rss_limit_mb=2048 \
        -dict="Fuzz/dict/${target}.dict" -artifact_prefix="${crashes}/" -print_final_stats=1 \
        "${corpus}" "Fuzz/corpus/${target}"; then
        echo "==> ${target}: no crash in ${seconds} s"
    else
        echo "==> ${target}: FAILED; the input is in ${crashes}/" >&2
        failed+=("${target}")
    fi
done
if [ ${#failed[@]} -gt 0 ]; then
    echo "error: fuzzing found a problem in: ${failed[*]}" >&2
    exit 1
fi
