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

# Render job record. Args: VIDEO N PASS CHUNK [JSON object of extra vars].
render_job() {
	jq -nc --arg v "$1" --argjson n "$2" --arg pass "$3" --argjson chunk "$4" \
	    --argjson extra "${5:-{\}}" '
	  def pad3: tostring | ("00" + .)[-3:];
	  ($n | pad3) as $n3
	  | (if $pass == "high" then $n3 else ($n - 1 | pad3) end) as $hi
	  | {id: "\($v)/job_\($n3)", video: $v, kind: "render", n: $n, pass: $pass,
	     chunk: $chunk, start: ($chunk * 97), frames: 97, model: "\($pass).gguf", deps: [],
	     vars: ({video: $v, id: "\($v)/job_\($n3)", n: $n, n3: $n3, pass: $pass,
	             chunk: $chunk, start: ($chunk * 97), frames: 97, model: "\($pass).gguf",
	             lora: "\($pass).safetensors", positive: "pos", negative: "neg",
	             input_video: "src.mp4", latent: "latents/\($v)/job_\($hi).latent"}
	            + (if $pass == "low" then {segment: "videos/\($v)/job_\($n3).mp4",
	                                       keep_from: 0, keep_to: 97} else {} end)
	            + $extra)}'
}

# wait_for 'CONDITION' [SECONDS]: polls a shell condition every 20 ms.
wait_for() {
	local cond=$1 limit=${2:-10} i
	for ((i = 0; i < limit * 50; i++)); do
		eval "$cond" && return 0
		sleep 0.02
	done
	echo "timed out waiting for: $cond" >&2
	return 1
}
