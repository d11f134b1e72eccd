#!/usr/bin/env bats
# The build, the install, and what every tool owes its user: --help,
# --version, a man page, the exit status convention, honest stdout.

load helper

# Every tool: tools/NAME.c or the folder tools/NAME/.
mapfile -t TOOLS < <(cd "$REPO/tools" && for f in pr-* fake-*; do echo "${f%.c}"; done)

# Builds the whole project into this test's temp dir with CC=$1 and
# prints everything make and the compiler said.
build_with() {
	make -C "$REPO" --no-print-directory V=1 CC="$1" \
	    O="$BATS_TEST_TMPDIR/obj" B="$BATS_TEST_TMPDIR/bin" all 2>&1
}

@test "make builds every tool without a warning under gcc" {
	plain_pass_only
	run build_with gcc
	assert_success
	refute_output --partial 'warning'
	for t in "${TOOLS[@]}"; do [ -x "$BATS_TEST_TMPDIR/bin/$t" ]; done
	# and with the strict flags on
	assert_output --partial '-std=c17 -Wall -Wextra -Werror'
}

@test "make builds every tool without a warning under clang" {
	plain_pass_only
	command -v clang >/dev/null || skip "clang is not installed"
	run build_with clang
	assert_success
	refute_output --partial 'warning'
	for t in "${TOOLS[@]}"; do [ -x "$BATS_TEST_TMPDIR/bin/$t" ]; done
}

@test "make install puts tools, pipeline and man pages under DESTDIR/PREFIX" {
	plain_pass_only
	run make -C "$REPO" --no-print-directory O="$BATS_TEST_TMPDIR/obj" \
	    B="$BATS_TEST_TMPDIR/bin" PREFIX=/opt/pr DESTDIR="$BATS_TEST_TMPDIR/root" install
	assert_success
	for t in "${TOOLS[@]}"; do
		[ -x "root/opt/pr/bin/$t" ]
		[ -f "root/opt/pr/share/man/man1/$t.1" ]
	done
	[ -x root/opt/pr/bin/pr-pipeline ]
	run root/opt/pr/bin/pr-plan --version
	assert_output 'pr-plan (prompt-runner) 0.1.0'
	run make -C "$REPO" --no-print-directory O="$BATS_TEST_TMPDIR/obj" \
	    B="$BATS_TEST_TMPDIR/bin" PREFIX=/opt/pr DESTDIR="$BATS_TEST_TMPDIR/root" uninstall
	assert_success
	[ -z "$(find root -type f)" ]
}

@test "every tool has --help, --version and a man page that lints clean" {
	for t in "${TOOLS[@]}"; do
		run "$t" --help
		assert_success
		assert_line --index 0 --partial "usage: $t"
		run "$t" --version
		assert_success
		assert_output "$t (prompt-runner) 0.1.0"
		[ -f "$REPO/man/$t.1" ]
		for section in NAME SYNOPSIS DESCRIPTION 'EXIT STATUS' EXAMPLES; do
			grep -q "^\.Sh $section" "$REPO/man/$t.1" || { echo "$t.1: no $section"; return 1; }
		done
	done
	command -v mandoc >/dev/null || skip "mandoc is not installed"
	for t in "${TOOLS[@]}"; do
		run mandoc -T lint -W warning "$REPO/man/$t.1"
		assert_success
		assert_output ''
	done
}

@test "an unknown option is a usage error: exit 2, a hint, nothing on stdout" {
	for t in "${TOOLS[@]}"; do
		run --separate-stderr "$t" --no-such-option
		assert_failure 2
		[ -z "$output" ]
		[[ "$stderr" == *"usage: $t"* ]]
		[[ "$stderr" == *"Try '$t --help'"* ]]
	done
}

@test "a reader that goes away is an error (exit 3), not a silent success" {
	printf 'v.mp4\n\n5\n\np\n\nn\n' > v.txt
	run_closed_pipe pr-parse v.txt
	assert_failure 3
	assert_output --partial 'error writing standard output: Broken pipe'
	pr-parse v.txt > prompt.jsonl
	run_closed_pipe sh -c 'exec pr-plan < prompt.jsonl'
	assert_failure 3
	assert_output --partial 'Broken pipe'
	pr-plan < prompt.jsonl > plan.jsonl
	run_closed_pipe sh -c 'exec pr-patch --workflows "$1" --no-state < plan.jsonl' sh "$REPO/workflows"
	assert_failure 3
	assert_output --partial 'Broken pipe'
}

@test "shell scripts pass shellcheck" {
	plain_pass_only
	command -v shellcheck >/dev/null || skip "shellcheck is not installed"
	run shellcheck "$REPO/pipeline.sh" "$REPO/setup" "$REPO/tests/run" "$REPO/.ci/run" \
	    "$REPO/tools/demo.sh" "$REPO/bench/run" "$REPO/bench/schedule" "$REPO/bench/combine" "$REPO/tests/fuzz/run"
	assert_success
	assert_output ''
}

@test "setup finds everything installed and changes nothing" {
	plain_pass_only
	run "$REPO/setup"
	assert_success
	assert_output 'setup: all packages present'
}
