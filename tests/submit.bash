# Shared setup for the pr-submit suites: a stand-in root holding every
# model the shipped workflows name, prompt files beside an identity-coded
# source video, planned and patched jobs, a fast stand-in and pr-submit
# runs (in the foreground with bats' run, or in the background). Load it
# after helper (it loads comfy itself when that is not loaded yet).
# Everything started here is stopped in teardown.
#
# shellcheck shell=bash
# SC2016: wait_for conditions are expanded when evaluated; SC2034: the
# variables set here are read by comfy.bash and the suites; SC2154: stderr
# is set by bats' run.
# shellcheck disable=SC2016,SC2034,SC2154

declare -F start_comfy > /dev/null || load comfy

SUBMIT_HIGH=Wan2.2_T2V_High_Noise_14B_VACE-Q8_0.gguf
SUBMIT_LOW=Wan2.2_T2V_Low_Noise_14B_VACE-Q8_0.gguf
SUBMIT_HIGH_LORA=wan2.2_high_t2v.safetensors
SUBMIT_LOW_LORA=wan2.2_low_t2v.safetensors
SUBMIT_PIDS=()

# submit_models [ROOT]: the model files the shipped workflows name, in
# ROOT (default $COMFY_ROOT, else $BATS_TEST_TMPDIR/comfy).
submit_models() {
	local root=${1:-${COMFY_ROOT:-$BATS_TEST_TMPDIR/comfy}} m
	while read -r m; do
		case $m in '#'*|'') continue ;; esac
		mkdir -p "$root/models/$(dirname "$m")"
		: > "$root/models/$m"
	done < "$REPO/workflows/models.txt"
}

# submit_source FILE [FRAMES]: an identity-coded source video (default
# 300 frames): frame k carries the code k.
submit_source() {
	mkdir -p "$(dirname "$1")"
	fake-frameid --make "$1" --frames "${2:-300}" --size 64x48 > /dev/null
}

# submit_prompt FILE FRAMES [POSITIVE]: a prompt file asking FRAMES frames
# of the src.mp4 beside it (made, 300 frames, when not there yet).
submit_prompt() {
	local dir
	dir=$(dirname "$1")
	mkdir -p "$dir"
	[ -e "$dir/src.mp4" ] || submit_source "$dir/src.mp4"
	write_prompt "$1" src.mp4 "$2" "${3:-a dancer}" 'blurry'
}

# submit_plan OUT CHUNK PROMPT...: the patched jobs of the prompt files,
# planned with --chunk CHUNK, in OUT.
submit_plan() {
	local out=$1 chunk=$2
	shift 2
	pr-parse "$@" | pr-plan --chunk "$chunk" |
	    pr-patch --workflows "$REPO/workflows" --no-state > "$out"
}

# submit_videos FRAMES...: p/a.txt, p/b.txt, ... asking FRAMES each (one
# source p/src.mp4 for all), planned with --chunk ${SUBMIT_CHUNK:-25}
# into ${JOBS:-jobs.jsonl}.
submit_videos() {
	local names=(a b c d e f g h) prompts=() i=0 t
	for t in "$@"; do
		submit_prompt "p/${names[i]}.txt" "$t" "scene ${names[i]}"
		prompts+=("p/${names[i]}.txt")
		i=$((i + 1))
	done
	submit_plan "${JOBS:-jobs.jsonl}" "${SUBMIT_CHUNK:-25}" "${prompts[@]}"
}

# start_fast_comfy [OPTIONS...]: the stand-in with the models and fast
# timings (options given later win).
start_fast_comfy() {
	COMFY_ROOT=${COMFY_ROOT:-$BATS_TEST_TMPDIR/comfy}
	submit_models "$COMFY_ROOT"
	start_comfy --step-time 0.01 --node-time 0.01 "$@"
}

# free_port: a loopback port nobody listens on (the stand-in's own choice
# with --port 0, stopped again).
free_port() {
	local d=$BATS_TEST_TMPDIR/.free-port pid port
	mkdir -p "$d"
	fake-comfyui --listen 127.0.0.1 --port 0 --root "$d/root" > "$d/out" 2> "$d/err" &
	pid=$!
	wait_for 'grep -q "^listening on 127.0.0.1:" "$d/out"' 10 || { kill "$pid"; return 1; }
	port=$(sed -n 's/^listening on 127.0.0.1://p' "$d/out")
	kill "$pid"
	wait "$pid" 2> /dev/null || true
	echo "$port"
}

# start_comfy_on PORT [OPTIONS...]: start_comfy on a given port (with the
# models and fast timings); sets what start_comfy sets.
start_comfy_on() {
	local port=$1
	shift
	COMFY_ROOT=${COMFY_ROOT:-$BATS_TEST_TMPDIR/comfy}
	submit_models "$COMFY_ROOT"
	fake-comfyui --listen 127.0.0.1 --port "$port" --root "$COMFY_ROOT" \
	    --step-time 0.01 --node-time 0.01 "$@" \
	    > "$BATS_TEST_TMPDIR/comfy.out" 2> "$BATS_TEST_TMPDIR/comfy.err" &
	COMFY_PID=$!
	wait_for 'grep -q "^listening on 127.0.0.1:" "$BATS_TEST_TMPDIR/comfy.out"' 10 || {
		cat "$BATS_TEST_TMPDIR/comfy.err" >&2
		return 1
	}
	COMFY_PORT=$port
	COMFY=http://127.0.0.1:$COMFY_PORT
}

# submit [OPTIONS...]: runs pr-submit (bats' run, stderr apart) on
# ${JOBS:-jobs.jsonl} against $COMFY with --state state --out out
# --wait-server 10, bounded by ${SUBMIT_TIMEOUT:-90} seconds.
submit() {
	run --separate-stderr timeout "${SUBMIT_TIMEOUT:-90}" \
	    pr-submit --server "$COMFY" --state state --out out --wait-server 10 "$@" \
	    < "${JOBS:-jobs.jsonl}"
}

# submit_bg NAME [OPTIONS...]: pr-submit in the background as submit runs
# it, stdout in NAME.out, stderr in NAME.err, its pid in SUBMIT_PID (and
# NAME_PID); stopped in teardown if still running.
submit_bg() {
	local name=$1
	shift
	pr-submit --server "$COMFY" --state state --out out --wait-server 10 "$@" \
	    < "${JOBS:-jobs.jsonl}" > "$BATS_TEST_TMPDIR/$name.out" 2> "$BATS_TEST_TMPDIR/$name.err" &
	SUBMIT_PID=$!
	SUBMIT_PIDS+=("$SUBMIT_PID")
	eval "${name}_PID=$SUBMIT_PID"
}

# submit_wait PID: its exit status, in the shell's $? (never fails the
# test by itself: use `submit_wait "$pid" || rc=$?`).
submit_wait() {
	wait "$1"
}

# fake_state [FILE]: the stand-in's /fake/state, in FILE (default
# fake-state.json).
fake_state() {
	curl -sf "$COMFY/fake/state" > "${1:-fake-state.json}"
}

# Checks of $stderr after submit (this bats-assert has no --stderr): a
# whole line, a line containing a string, a line matching an extended
# regex; refute_stderr: no line contains the string. They print stderr
# when they fail.
_stderr_check() {
	if ! grep "$@" <<< "$stderr" > /dev/null; then
		printf 'no stderr line (grep %s)\n-- stderr --\n%s\n--\n' "$*" "$stderr" >&2
		return 1
	fi
}
assert_stderr_line() { _stderr_check -qxF -- "$1"; }
assert_stderr_has() { _stderr_check -qF -- "$1"; }
assert_stderr_match() { _stderr_check -qE -- "$1"; }
refute_stderr() {
	if grep -qF -- "$1" <<< "$stderr"; then
		printf 'stderr has %s\n-- stderr --\n%s\n--\n' "$1" "$stderr" >&2
		return 1
	fi
}

# fake_clear_log: the stand-in forgets its posts, runs and model loads.
fake_clear_log() {
	post /fake/log/clear '' > /dev/null
	[ "$(last_status)" = 200 ]
}

# journal_has EV [JOB]: whether state/journal.jsonl has such an event.
journal_has() {
	[ -f state/journal.jsonl ] &&
	    jq -e --arg ev "$1" --arg job "${2:-}" \
	        'select(.ev == $ev and ($job == "" or .job == $job))' state/journal.jsonl > /dev/null
}

teardown() {
	local p
	for p in "${SUBMIT_PIDS[@]}"; do kill -9 "$p" 2> /dev/null || true; done
	for p in "${SUBMIT_PIDS[@]}"; do wait "$p" 2> /dev/null || true; done
	for p in "${RECORDERS[@]}"; do kill "$p" 2> /dev/null || true; done
	stop_comfy
}
