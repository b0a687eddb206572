#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
#
# The one test command (README, .ci/run). From a fresh clone on Debian 12, as
# root: installs what is missing, builds svcgw as shipped and again with
# ASan/UBSan, runs every suite and ends with one line
# "N passed, N failed[, N skipped]". Exits non-zero on any failure.
#
# Suites: unit (cmocka, both builds), bench-smoke (each micro-benchmark
# once with --quick, shipped build only: it runs and it finishes, no timing
# is asserted; figures come from running the benchmarks by hand), then
# integration (svcgw between real clients and stand-in pods in network
# namespaces, and tools/svcgwctl; tests/integration), with the shipped
# daemon and again with the sanitized one.
set -uo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top" || exit 1

if [ "$(id -u)" -ne 0 ]; then
	echo "tools/test.sh: run as root: it installs packages with apt-get" >&2
	exit 1
fi

failed_stages=()
logs=()

# stage NAME COMMAND...: run it, remember its name if it fails.
stage() {
	local name=$1
	shift
	echo "== $name"
	if ! "$@"; then
		echo "== $name: FAILED" >&2
		failed_stages+=(--failed-stage "$name")
		return 1
	fi
}

configure() {
	local dir=$1
	shift
	if [ -f "$dir/build.ninja" ]; then
		meson setup --reconfigure "$dir" "$@"
	else
		meson setup "$dir" "$@"
	fi
}

# suite BUILD_DIR LABEL SUITE...: build, then run the suites, keep the log
# (one per label, so two runs in one build directory keep both).
suite() {
	local dir=$1 label=$2
	shift 2
	local args=()
	for s in "$@"; do
		args+=(--suite "$s")
	done
	stage "compile $label" meson compile -C "$dir" || return
	rm -f "$dir/meson-logs/testlog-$label.json"
	meson test -C "$dir" --no-rebuild --print-errorlogs \
		--logbase "testlog-$label" "${args[@]}"
	logs+=("$label=$dir/meson-logs/testlog-$label.json")
}

export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1

if stage "install dependencies" tools/install-deps.sh; then
	stage "configure build" configure build &&
		suite build release unit bench-smoke &&
		suite build integration integration
	# UBSan reports only print unless their checks are built not to recover.
	stage "configure build-asan" configure build-asan \
		-Db_sanitize=address,undefined -Db_lundef=false -Dbenchmarks=false \
		-Dc_args=-fno-sanitize-recover=all &&
		suite build-asan asan unit &&
		suite build-asan asan-integration integration
fi

python3 tools/test-summary.py "${failed_stages[@]}" "${logs[@]}"
