#!/usr/bin/env bats
# The fuzz targets (tests/fuzz/): every one replays the inputs that once
# made it fail, then runs FUZZ_CHECK_SECONDS (default 5) from its
# committed seeds without a finding. The long runs are make fuzz
# FUZZ_SECONDS=N. The targets are built by make check (make fuzz-build,
# clang's libFuzzer, already under ASan/UBSan), so this runs in the plain
# pass only.

load helper

@test "every fuzz target replays its regressions and runs from its seeds without a finding" {
	plain_pass_only
	local fb=$REPO/build/fuzz/bin t n=0
	[ -d "$fb" ] || skip "no fuzz targets built (make fuzz-build needs clang and libclang-rt-dev)"
	targets=()
	for t in "$REPO"/tests/fuzz/fuzz-*.c; do
		t=${t##*/fuzz-}
		targets+=("${t%.c}")
	done
	[ "${#targets[@]}" -ge 4 ]
	run "$REPO/tests/fuzz/run" --bin "$fb" --seconds "${FUZZ_CHECK_SECONDS:-5}" "${targets[@]}"
	assert_success
	for t in "${targets[@]}"; do
		assert_line --regexp "^fuzz $t: [0-9]+ runs in [0-9]+ s .*: no finding$"
		n=$((n + 1))
	done
	[ "$n" = "${#targets[@]}" ]
}
