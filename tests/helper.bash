# Loaded by every suite: where the tools and the shared fixtures are, and
# small helpers. Tools come from $PR_BIN (tests/run sets it) or bin/.

bats_require_minimum_version 1.5.0
bats_load_library bats-support
bats_load_library bats-assert

REPO=$(cd "$BATS_TEST_DIRNAME/.." && pwd)
BIN=${PR_BIN:-$REPO/bin}
PATH=$BIN:$PATH
export PR_BIN=$BIN
SHARED=${PR_SHARED:-$REPO/../shared/reference}
FIXTURES=$SHARED/fixtures

# Skips the test when the user's reference material is not beside the repo.
need_fixtures() {
	[ -d "$FIXTURES" ] || skip "no ../shared/reference/fixtures beside the repository"
}

# Every test runs in its own empty directory.
setup() {
	cd "$BATS_TEST_TMPDIR" || return 1
	if declare -F suite_setup >/dev/null; then suite_setup; fi
}

# Writes a prompt file: name, source video, frames, positive, negative.
write_prompt() {
	printf '%s\n\n%s\n\n%s\n\n%s\n' "$2" "$3" "$4" "$5" > "$1"
}

# Checks of the build itself run once, in the plain pass.
plain_pass_only() {
	[ -z "${PR_SANITIZED:-}" ] || skip "checks the build, done in the plain pass"
}

# Runs a tool with stdout on a pipe whose reader is already gone, so the
# first write fails with EPIPE, every time.
run_closed_pipe() {
	run perl -e 'pipe(R, W) or die; close R; open(STDOUT, ">&W") or die; exec @ARGV' "$@"
}
