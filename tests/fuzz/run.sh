#!/bin/sh
# run.sh [SECONDS]: fuzz each libFuzzer target of a --enable-fuzzing build
# for SECONDS (default 60), one after the other, with its seed corpus
# tests/fuzz/corpus/<target>/ and one dictionary made of tests/fuzz/mqtt.dict
# plus every other tests/fuzz/*.dict (libFuzzer takes a single -dict; an
# entry a parser does not care about costs little).  `make fuzz
# FUZZ_SECONDS=N` runs it from the top build directory.
#
# libFuzzer adds the inputs it finds to the first corpus directory it is
# given, so each target works on a scratch copy (tests/fuzz/scratch/<target>
# in the build directory) and the repository's corpus is never modified.
# Crashing inputs are kept as tests/fuzz/artifacts/<target>-crash-*; copy
# one into tests/fuzz/corpus/<target>/ once the bug is fixed.
# Exit status: 0 when no target crashed, 1 otherwise.

seconds=${1:-60}
: "${FUZZ_TARGETS:=fuzz_packet fuzz_props fuzz_topic fuzz_utf8 fuzz_passwd fuzz_scram}"
srcdir=$(cd "$(dirname "$0")/../.." && pwd)
dict=tests/fuzz/scratch/all.dict

case "$seconds" in
''|*[!0-9]*) echo "usage: $0 [SECONDS]" >&2; exit 2 ;;
esac

status=0
mkdir -p tests/fuzz/artifacts tests/fuzz/scratch
cat "$srcdir"/tests/fuzz/*.dict >"$dict" 2>/dev/null
for name in $FUZZ_TARGETS; do
	target="tests/fuzz/$name"
	seeds="$srcdir/tests/fuzz/corpus/$name"
	scratch="tests/fuzz/scratch/$name"
	log="tests/fuzz/$name.fuzz.log"

	if [ ! -x "$target" ]; then
		echo "FAIL $target: not built (configure CC=clang --enable-fuzzing)" >&2
		status=1
		continue
	fi
	rm -rf "$scratch"
	mkdir -p "$scratch"
	if [ -d "$seeds" ]; then
		cp -R "$seeds"/. "$scratch"/
	fi
	set -- -max_total_time="$seconds" -timeout=10 -print_final_stats=1 \
		-artifact_prefix="tests/fuzz/artifacts/$name-"
	[ -s "$dict" ] && set -- "$@" -dict="$dict"

	echo "fuzzing $target for ${seconds}s (log: $log)"
	"$target" "$@" "$scratch" >"$log" 2>&1
	rc=$?
	runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
	cov=$(grep -o 'cov: [0-9]*' "$log" | tail -n 1)
	if [ "$rc" -eq 0 ]; then
		echo "ok   $target: ${runs:-?} runs, ${cov:-cov: ?}"
	else
		echo "FAIL $target: exit status $rc; last lines of $log:" >&2
		tail -n 60 "$log" >&2
		ls -l tests/fuzz/artifacts/"$name"-* 2>/dev/null >&2
		status=1
	fi
done
exit $status
