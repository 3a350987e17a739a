#!/bin/sh
# replay.sh: the `make check` test that replays every seed corpus
# tests/fuzz/corpus/<target>/ through its fuzz target tests/fuzz/<target>.
# Run by the automake harness from the top build directory, with $srcdir,
# FUZZ_TARGETS (e.g. "fuzz_packet fuzz_utf8") and FUZZ_MODE set:
#   replay     targets linked with tests/fuzz/replay.c: given the directory
#   libfuzzer  real libFuzzer binaries: given the files, so that libFuzzer
#              only runs them and never writes into the source corpus
# A missing corpus directory or target, a failing or crashing target fails
# the test.

: "${srcdir:=.}"
: "${FUZZ_MODE:=replay}"
: "${FUZZ_TARGETS:?FUZZ_TARGETS is not set (run through make check)}"

status=0
for name in $FUZZ_TARGETS; do
	target="tests/fuzz/$name"
	corpus="$srcdir/tests/fuzz/corpus/$name"

	if [ ! -x "$target" ]; then
		echo "FAIL $target: not built" >&2
		status=1
		continue
	fi
	if [ ! -d "$corpus" ]; then
		echo "FAIL $target: corpus directory $corpus is missing" >&2
		status=1
		continue
	fi

	case "$FUZZ_MODE" in
	replay)
		"$target" "$corpus"
		rc=$?
		;;
	libfuzzer)
		set --
		for f in "$corpus"/*; do
			[ -f "$f" ] && set -- "$@" "$f"
		done
		if [ $# -eq 0 ]; then
			echo "$target: corpus $corpus is empty"
			rc=0
		else
			"$target" "$@"
			rc=$?
			echo "$target: replayed $# inputs"
		fi
		;;
	*)
		echo "replay.sh: unknown FUZZ_MODE '$FUZZ_MODE'" >&2
		exit 99
		;;
	esac

	if [ "$rc" -eq 0 ]; then
		echo "ok   $target"
	else
		echo "FAIL $target: exit status $rc" >&2
		status=1
	fi
done
exit $status
