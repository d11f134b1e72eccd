#!/usr/bin/env bats
# pr-submit killed with SIGKILL at every kind of moment, then run again:
# every job succeeds, the stand-in executed exactly one prompt per job,
# the collected files are whole, no temporary file is left, and a second
# rerun executes nothing.
#
# Deterministic points come from PR_CRASH_AT (pr-submit kills itself);
# timed kills come from a seeded plan (bash RANDOM). KILL_SEEDS sets how
# many seeds the timed test runs (default 3; make check-slow runs 25), and
# KILL_SEED_BASE where they start (default 1), to replay one seed:
#   KILL_SEEDS=1 KILL_SEED_BASE=17 tests/run tests/submit-kill.bats

load helper
load comfy
# Model files and source videos; this suite keeps its own runners.
load submit

# Small but nonzero timings, so that kills land mid-execution too.
SK_TIMES=(--step-time 0.01 --node-time 0.005 --load-time 0.02)
SK_PIDS=()

# Two videos of 50 frames, --chunk 25: two chunks each, HIGH and LOW per
# chunk, 8 jobs, each but the first of a video depending on the one before.
suite_setup() {
	mkdir -p p
	submit_prompt p/a.txt 50 'a dancer'
	submit_prompt p/b.txt 50 'scene b'
	JOBS=$BATS_TEST_TMPDIR/jobs.jsonl
	submit_plan "$JOBS" 25 p/a.txt p/b.txt
	NJOBS=$(wc -l < "$JOBS")
	[ "$NJOBS" -eq 8 ] || { echo "expected 8 jobs, planned $NJOBS" >&2; return 1; }
}

teardown() {
	local p
	for p in "${SK_PIDS[@]}"; do kill -9 "$p" 2> /dev/null || true; done
	for p in "${SK_PIDS[@]}"; do wait "$p" 2> /dev/null || true; done
	stop_comfy
}

# scenario NAME: a fresh directory (state/, out/) and a fresh stand-in (no
# cache, no history, no runs) for one kill scenario; cd's into it.
scenario() {
	SK_NAME=$1
	SK_STEP=0
	stop_comfy
	cd "$BATS_TEST_TMPDIR" || return 1
	mkdir "$SK_NAME"
	cd "$SK_NAME" || return 1
	COMFY_ROOT=$PWD/comfy
	submit_models "$COMFY_ROOT"
	start_comfy "${SK_TIMES[@]}"
}

# sk_submit LOG [VAR=VALUE...]: pr-submit on the jobs with the scenario's
# state/ and out/, results in LOG.out, stderr in LOG.err, status in SK_RC
# (137: killed by SIGKILL; 124: took longer than 120 s).
sk_submit() {
	local log=$1
	shift
	local t0=$SECONDS
	SK_RC=0
	env "$@" timeout -k 5 120 pr-submit --server "$COMFY" --state state --out out \
	    --wait-server 10 < "$JOBS" > "$log.out" 2> "$log.err" || SK_RC=$?
	[ -z "${SK_DEBUG:-}" ] || echo "# $SK_NAME: $log $* exit $SK_RC in $((SECONDS - t0)) s: $(tail -1 "$log.err")" >&3
}

# crash SPEC: one run with PR_CRASH_AT=SPEC, which must die by SIGKILL.
crash() {
	SK_STEP=$((SK_STEP + 1))
	sk_submit "crash-$SK_STEP" PR_CRASH_AT="$1"
	[ "$SK_RC" -eq 137 ] ||
	    fail "$SK_NAME: PR_CRASH_AT=$1 should have killed pr-submit, it exited $SK_RC: $(tail -3 "crash-$SK_STEP.err")"
}

# The runs of the stand-in, each as the job whose journaled submit has its
# prompt id ("unknown <id>" when none has), sorted.
ran_jobs() {
	curl -sf -m 10 "$COMFY/fake/state" > fake-state.json
	jq -s -c '[.[] | select(.ev == "submit") | {key: .prompt_id, value: .job}] | from_entries' \
	    state/journal.jsonl > prompt-jobs.json
	jq -r --slurpfile m prompt-jobs.json '.runs[] | $m[0][.prompt_id] // "unknown \(.prompt_id)"' \
	    fake-state.json | sort
}

# The final rerun and a second one, and everything they must show.
check_once() {
	local what="$SK_NAME (after $SK_STEP kills)" diff files temps f size

	curl -sf -m 10 -X POST -d "{}" "$COMFY/fake/faults/clear" > /dev/null
	sk_submit final
	[ "$SK_RC" -eq 0 ] || fail "$what: the rerun exited $SK_RC: $(tail -5 final.err)"
	[ "$(jq -s length final.out)" -eq "$NJOBS" ] || fail "$what: $(jq -s length final.out) results"
	jq -s -e 'all(.status == "success")' final.out > /dev/null ||
	    fail "$what: not all succeeded: $(jq -c 'select(.status != "success") | {id, status, error}' final.out)"

	# exactly one execution per job, none of an unknown prompt
	jq -r .id "$JOBS" | sort > expected-runs
	ran_jobs > runs
	diff=$(diff expected-runs runs) ||
	    fail "$what: the stand-in's runs are not one per job (< missing, > extra):"$'\n'"$diff"
	# each result names the prompt that ran for its job
	jq -r '"\(.id) \(.prompt_id)"' final.out | sort > result-prompts
	jq -r --slurpfile m prompt-jobs.json '.runs[] | "\($m[0][.prompt_id]) \(.prompt_id)"' \
	    fake-state.json | sort > run-prompts
	diff=$(diff run-prompts result-prompts) ||
	    fail "$what: results name other prompts than the ones that ran:"$'\n'"$diff"

	# the files are whole: what each result says is what is on disk
	jq -s -e 'all(.files | length > 0)' final.out > /dev/null || fail "$what: a result without files"
	jq -r '.files[] | "\(.sha256)  out/\(.path)"' final.out > sums
	files=$(sha256sum -c --quiet sums 2>&1) || fail "$what: collected files differ from their results:"$'\n'"$files"
	while read -r f size; do
		[ "$(stat -c %s "$f")" -eq "$size" ] || fail "$what: $f is $(stat -c %s "$f") bytes, its result says $size"
	done < <(jq -r '.files[] | "out/\(.path) \(.size)"' final.out)
	# a second rerun executes nothing and finds every job cached
	sk_submit again
	[ "$SK_RC" -eq 0 ] || fail "$what: the second rerun exited $SK_RC: $(tail -5 again.err)"
	ran_jobs > runs-again
	diff=$(diff runs runs-again) || fail "$what: the second rerun executed prompts:"$'\n'"$diff"
	jq -s -e --argjson n "$NJOBS" 'length == $n and all(.status == "success" and .cached == true)' \
	    again.out > /dev/null || fail "$what: the second rerun did not find every job cached: $(jq -c '{id, status, cached}' again.out)"
	grep -q "^pr-submit: $NJOBS done ($NJOBS cached, 0 prompts executed), 0 failed, 0 skipped$" again.err ||
	    fail "$what: second rerun summary: $(tail -1 again.err)"

	# nothing else under out/: no download (*.part.*) or write (*.tmp.*)
	# left over. Noted in SK_LEFTOVERS, which no_leftovers checks at the
	# end of the test, so that the checks above run for every scenario.
	temps=$(find out -type f \( -name '*.part.*' -o -name '*.tmp.*' \))
	[ -z "$temps" ] || SK_LEFTOVERS+="$what: temporary files left under out/:"$'\n'"$temps"$'\n'
	jq -r '.files[] | "out/\(.path)"' final.out | sort > result-files
	find out -type f | sort > out-files
	diff=$(diff result-files out-files) ||
	    SK_LEFTOVERS+="$what: out/ holds other files than the results (> extra):"$'\n'"$diff"$'\n'
}

# Fails when a scenario of the test left files under out/.
no_leftovers() {
	[ -z "${SK_LEFTOVERS:-}" ] || fail "${SK_LEFTOVERS%$'\n'}"
}

# crash_point NAME N1 N2: a run killed the N1-th time it passes NAME, its
# rerun killed the N2-th time, then the checks.
crash_point() {
	scenario "$1"
	crash "$1:$2"
	crash "$1:$3"
	check_once
	no_leftovers
}

@test "kill -9 after the journal write, before the POST (submitted:1, then :4), then a rerun: one execution per job" {
	scenario submitted
	crash submitted:1
	# the prompt id journaled but never posted is posted by a rerun
	first=$(jq -r 'select(.ev == "submit") | .prompt_id' state/journal.jsonl | tail -1)
	[ -n "$first" ]
	crash submitted:4
	check_once
	jq -e --arg id "$first" 'any(.runs[]; .prompt_id == $id)' fake-state.json > /dev/null ||
	    fail "the prompt journaled before the first kill ($first) never ran"
	no_leftovers
}

@test "kill -9 right after the POST was accepted (accepted:1, then :5), then a rerun: one execution per job" {
	crash_point accepted 1 5
}

@test "kill -9 after an upload (staged:1, then :4), then a rerun: one execution per job" {
	crash_point staged 1 4
}

@test "kill -9 after a download, before its verification (downloaded:1, then :5), then a rerun: one execution per job" {
	crash_point downloaded 1 5
}

@test "kill -9 with the outputs verified, before the journal's done (collected:1, then :6), then a rerun: one execution per job" {
	crash_point collected 1 6
	# a job collected but not journaled is collected again, journaled once
	[ "$(jq -s '[.[] | select(.ev == "done")] | length' state/journal.jsonl)" -eq "$NJOBS" ]
}

@test "kill -9 at every crash point in a row (five runs killed), then a rerun: one execution per job" {
	scenario chain
	crash submitted:2
	crash accepted:1
	crash staged:2
	crash downloaded:1
	crash collected:1
	check_once
	no_leftovers
}

# --- kills at a moment, not at a crash point ---

# sk_alive PID: whether that pr-submit still runs.
sk_alive() {
	kill -0 "$1" 2> /dev/null
}

# sk_state JQ: something of /fake/state.
sk_state() {
	curl -sf -m 10 "$COMFY/fake/state" | jq -c "$1"
}

# sk_delay ROUTE SECONDS: the stand-in answers ROUTE that much later, once.
sk_delay() {
	curl -sf -m 10 -X POST "$COMFY/fake/faults" \
	    -d "{\"kind\": \"http\", \"route\": \"$1\", \"delay\": $2}" > /dev/null
}

# sk_start: pr-submit in the background (timed-STEP.out, .err), its pid in
# SK_PID.
sk_start() {
	SK_STEP=$((SK_STEP + 1))
	pr-submit --server "$COMFY" --state state --out out --wait-server 10 < "$JOBS" \
	    > "timed-$SK_STEP.out" 2> "timed-$SK_STEP.err" &
	SK_PID=$!
	SK_PIDS+=("$SK_PID")
}

# sk_kill HOW [STRICT]: SIGKILL for SK_PID. It must have been killed
# (137) with STRICT, else it may also have finished first (0).
sk_kill() {
	local rc=0
	kill -9 "$SK_PID" 2> /dev/null || true
	{ wait "$SK_PID"; } 2> /dev/null || rc=$?
	curl -sf -m 10 -X POST -d "{}" "$COMFY/fake/faults/clear" > /dev/null
	echo "# $SK_NAME: kill $SK_STEP $1: exit $rc" >&3
	if [ -n "${2:-}" ]; then
		[ "$rc" -eq 137 ] || fail "$SK_NAME: pr-submit exited $rc before the kill $1: $(tail -3 "timed-$SK_STEP.err")"
	else
		[ "$rc" -eq 137 ] || [ "$rc" -eq 0 ] ||
		    fail "$SK_NAME: pr-submit exited $rc before the kill $1: $(tail -3 "timed-$SK_STEP.err")"
	fi
}

# Kills with an upload sent and not answered yet (/upload/image delayed).
kill_uploading() {
	local base
	base=$(sk_state '[.posts[] | select(.path == "/upload/image")] | length')
	sk_delay /upload/image 2
	sk_start
	wait_for "! sk_alive $SK_PID || [ \"\$(sk_state '[.posts[] | select(.path == \"/upload/image\")] | length')\" -gt $base ]" 30
	sleep 0.1
	sk_kill "while uploading" "${1:-}"
}

# Kills with a download's temporary file open (/view delayed).
kill_downloading() {
	sk_delay /view 2
	sk_start
	wait_for "! sk_alive $SK_PID || [ -n \"\$(find out -name '*.part.*' 2> /dev/null)\" ]" 30
	sk_kill "while downloading" "${1:-}"
}

# Kills with a prompt in the stand-in's queue and at least MIN runs done,
# MS milliseconds after it sees that.
kill_executing() {
	local min=$1 ms=$2
	sk_start
	wait_for "! sk_alive $SK_PID || [ \"\$(sk_state '.queue_remaining > 0 and (.runs | length) >= $min')\" = true ]" 30
	sleep "$(printf '0.%03d' "$ms")"
	sk_kill "mid-execution (>= $min runs done, +$ms ms)" "${3:-}"
}

# Kills after MS milliseconds (sooner when it finished by itself).
kill_after() {
	local ms=$1 i
	sk_start
	for ((i = 0; i < ms / 20; i++)); do
		sk_alive "$SK_PID" || break
		sleep 0.02
	done
	sk_kill "after $ms ms"
}

@test "kill -9 while an upload is unanswered, then a rerun: one execution per job" {
	scenario uploading
	kill_uploading strict
	check_once
	no_leftovers
}

@test "kill -9 mid-execution (the first prompt, then the rerun's third), then a rerun: one execution per job" {
	scenario executing
	kill_executing 0 100 strict
	kill_executing 3 50 strict
	check_once
	no_leftovers
}

@test "kill -9 while downloading, then a rerun: one execution per job, no partial download left" {
	scenario downloading
	kill_downloading strict
	check_once
	no_leftovers
}

# The seeded plan: 1 to 3 kills, each after 0.1-2 s (a whole run takes
# 2-4 s), mid-execution, while uploading or while downloading; then the
# checks.
@test "kill -9 at seeded random moments, then a rerun: one execution per job (KILL_SEEDS seeds)" {
	local seeds=${KILL_SEEDS:-3} first=${KILL_SEED_BASE:-1} seed k kills
	for ((seed = first; seed < first + seeds; seed++)); do
		scenario "seed-$seed"
		RANDOM=$seed
		kills=$((1 + RANDOM % 3))
		for ((k = 0; k < kills; k++)); do
			case $((RANDOM % 5)) in
			0 | 1) kill_after $((100 + RANDOM % 1900)) ;;
			2) kill_executing $(($(sk_state '.runs | length') + RANDOM % 3)) $((RANDOM % 300)) ;;
			3) kill_uploading ;;
			4) kill_downloading ;;
			esac
		done
		check_once
	done
	no_leftovers
}
