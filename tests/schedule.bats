#!/usr/bin/env bats
# pr-submit's scheduling against stand-ins: the next job is queued before
# the running one ends, jobs of the loaded model go first without starving
# the others, two servers with HIGH/LOW affinity (on different "pods":
# each has only its own model), and a server killed mid-run whose jobs
# finish on the other. Every test also checks exactly once: no job's
# prompt ran to success twice, every result names a run that succeeded.

load helper
load submit

SERVER_PIDS=()

# start_server NAME [OPTIONS...]: a stand-in with every model in
# $BATS_TEST_TMPDIR/NAME; sets NAME_URL and NAME_PID.
start_server() {
	local name=$1 root=$BATS_TEST_TMPDIR/$1 pid port
	shift
	submit_models "$root"
	fake-comfyui --listen 127.0.0.1 --port 0 --root "$root" --node-time 0.005 "$@" \
	    > "$root.out" 2> "$root.err" &
	pid=$!
	SERVER_PIDS+=("$pid")
	wait_for 'grep -q "^listening on 127.0.0.1:" "$root.out"' 10 || {
		cat "$root.err" >&2
		return 1
	}
	port=$(sed -n 's/^listening on 127.0.0.1://p' "$root.out")
	printf -v "${name}_URL" 'http://127.0.0.1:%s' "$port"
	printf -v "${name}_PID" '%s' "$pid"
}

teardown() {
	local p
	for p in "${SUBMIT_PIDS[@]}"; do kill -9 "$p" 2> /dev/null || true; done
	for p in "${SERVER_PIDS[@]}"; do kill -9 "$p" 2> /dev/null || true; done
	for p in "${SUBMIT_PIDS[@]}" "${SERVER_PIDS[@]}"; do wait "$p" 2> /dev/null || true; done
}

# state_of URL FILE: the stand-in's /fake/state in FILE.
state_of() {
	curl -sf "$1/fake/state" > "$2"
}

# run_submit [OPTIONS...]: pr-submit on jobs.jsonl (bats' run, stderr
# apart), results in results.jsonl.
run_submit() {
	run --separate-stderr timeout 120 pr-submit --state state --out out --wait-server 10 "$@" \
	    < jobs.jsonl
	printf '%s\n' "$output" > results.jsonl
}

# submit_bg_to [OPTIONS...]: pr-submit in the background on jobs.jsonl,
# stdout in run.out, stderr in run.err, its pid in SUBMIT_PID.
submit_bg_to() {
	pr-submit --state state --out out --wait-server 10 "$@" < jobs.jsonl \
	    > "$BATS_TEST_TMPDIR/run.out" 2> "$BATS_TEST_TMPDIR/run.err" &
	SUBMIT_PID=$!
	SUBMIT_PIDS+=("$SUBMIT_PID")
}

# exactly_once STATE...: every job succeeded; no prompt ran to success
# twice on the servers whose states are given; every result's prompt is
# one of those successes; there are as many successes as jobs.
exactly_once() {
	jq -e -s 'length > 0 and all(.status == "success")' results.jsonl > /dev/null || {
		jq -c '{id, status, error}' results.jsonl >&2
		return 1
	}
	jq -e -n --slurpfile r results.jsonl '
	  [inputs | .runs[] | select(.status == "success") | .prompt_id] as $ok
	  | ($ok | length) == ($ok | unique | length)
	    and ($ok | length) == ($r | length)
	    and all($r[]; .prompt_id as $p | $ok | index([$p]) != null)' "$@" > /dev/null
}

# again FILE [OPTIONS...]: a fresh run on server a (state, outputs and
# the stand-in's log forgotten), asserted successful and exactly once;
# the stand-in's state in FILE.
again() {
	local file=$1
	shift
	rm -rf state out
	curl -sf -X POST "$a_URL/fake/log/clear" > /dev/null
	run_submit --server "$a_URL" "$@"
	assert_success
	state_of "$a_URL" "$file"
	exactly_once "$file"
}

# The prompt ids of the jobs whose pass is $1, sorted, one a line.
prompts_of_pass() {
	jq -r --arg p "$1" 'select(.pass == $p) | .prompt_id' results.jsonl | sort
}

# The prompt ids a stand-in ran (state file $1), sorted, one a line.
prompts_run() {
	jq -r '.runs[].prompt_id' "$1" | sort
}

@test "look-ahead: the next ready job is queued before the running one ends (and not with --queue-depth 1)" {
	submit_videos 50 50 50
	start_server a --step-time 0.25
	again a.json
	# For every run after the first whose dependencies had ended before
	# the run ahead of it started (so it was ready while that one ran):
	# its POST came before that run ended.
	check() {
		jq -e -n --slurpfile r results.jsonl --slurpfile s "$1" --arg want "$2" '
		  ($r | map({key: .prompt_id, value: .}) | from_entries) as $job
		  | ($r | map({key: .id, value: .prompt_id}) | from_entries) as $pid
		  | $s[0] as $st
		  | ($st.runs | map({key: .prompt_id, value: .}) | from_entries) as $run
		  | [range(1; $st.runs | length) as $k | $st.runs[$k - 1] as $prev | $st.runs[$k] as $cur
		     | select(all($job[$cur.prompt_id].deps[]; $run[$pid[.]].end < $prev.start))
		     | ([$st.posts[] | select(.path == "/prompt" and .body.prompt_id == $cur.prompt_id) | .t][0]
		        < $prev.end)]
		  | length >= 3 and (if $want == "ahead" then all else all(not) end)' > /dev/null
	}
	check a.json ahead

	again a1.json --queue-depth 1
	check a1.json after
}

@test "model-aware order: HIGH jobs of every video back to back, then their LOW jobs; every video finishes" {
	submit_videos 75 75 75
	start_server a --load-time 0.05
	again a.json
	[ "$(jq -s 'map(.video) | unique | length' results.jsonl)" = 3 ]
	# 3 chunks: at most 2 x 3 + 1 loads, against 18 in plan order
	loads=$(jq '.model_loads | length' a.json)
	[ "$loads" -le 7 ]
	# the passes ran in runs of one pass each, as many as there were loads
	runs=$(jq -n -r --slurpfile r results.jsonl --slurpfile s a.json '
	  ($r | map({key: .prompt_id, value: .pass}) | from_entries) as $pass
	  | [$s[0].runs[] | $pass[.prompt_id]] | reduce .[] as $p ([]; if .[-1] == $p then . else . + [$p] end)
	  | length')
	[ "$runs" = "$loads" ]

	# the same jobs in plan order, one server: a load for every job
	again b.json --model-batch 0 --queue-depth 1
	[ "$(jq '.model_loads | length' b.json)" = 18 ]
}

@test "no starvation: with --model-batch 2 a ready job waits for at most 2 jobs of the other model" {
	# six videos of one chunk: six HIGH jobs ready at once, each LOW job
	# ready after its HIGH one
	submit_videos 25 25 25 25 25 25
	start_server a
	# for each job with dependencies: the runs of another model that
	# started after its dependencies ended and before it
	waited() {
		jq -n -r --slurpfile r results.jsonl --slurpfile s "$1" '
		  ($r | map({key: .id, value: .prompt_id}) | from_entries) as $pid
		  | ($r | map({key: .prompt_id, value: .model}) | from_entries) as $model
		  | ($s[0].runs | map({key: .prompt_id, value: .}) | from_entries) as $run
		  | $r[] | select(.deps | length > 0) | .model as $m | $run[.prompt_id].start as $start
		  | ([.deps[] | $run[$pid[.]].end] | max) as $ready
		  | [$s[0].runs[] | select(.start > $ready and .start < $start and $model[.prompt_id] != $m)]
		  | length'
	}
	again a.json --queue-depth 1 --model-batch 2
	waited a.json > waits
	[ "$(wc -l < waits)" = 6 ]
	[ "$(sort -n waits | tail -1)" -le 2 ]

	# without the bound the first LOW job waits for all five other HIGH jobs
	again b.json --queue-depth 1
	waited b.json > waits
	[ "$(sort -n waits | tail -1)" = 5 ]
	[ "$(jq '.model_loads | length' b.json)" = 2 ]
}

@test "two servers with HIGH/LOW affinity, each with only its own model: one load each, latents and references moved" {
	submit_videos 50 50
	start_server hi --load-time 0.05
	start_server lo --load-time 0.05
	# different pods: neither has the other's model
	rm "$BATS_TEST_TMPDIR/hi/models/diffusion_models/$SUBMIT_LOW" "$BATS_TEST_TMPDIR/lo/models/diffusion_models/$SUBMIT_HIGH"
	run_submit --server "$hi_URL#high" --server "$lo_URL#low"
	assert_success
	state_of "$hi_URL" hi.json
	state_of "$lo_URL" lo.json
	exactly_once hi.json lo.json
	# each server ran exactly its pass, with one model load
	[ "$(prompts_run hi.json)" = "$(prompts_of_pass high)" ]
	[ "$(prompts_run lo.json)" = "$(prompts_of_pass low)" ]
	jq -e '[.model_loads[].model] == ["'"$SUBMIT_HIGH"'"]' hi.json
	jq -e '[.model_loads[].model] == ["'"$SUBMIT_LOW"'"]' lo.json
	jq -e -s 'all(.server | test("#") | not)' results.jsonl
	# each latent went to the LOW server, each reference to the HIGH one
	jq -e '[.posts[] | select(.path == "/upload/image") | .upload] | map(select(endswith(".latent"))) | length == 4' lo.json
	jq -e '[.posts[] | select(.path == "/upload/image") | .upload] | map(select(endswith("_ref.png"))) | length == 2' hi.json
	jq -e '[.posts[] | select(.path == "/upload/image") | .upload] | map(select(endswith(".latent"))) | length == 0' hi.json
}

@test "a server killed mid-job: its jobs finish on the other, each exactly once" {
	submit_videos 50 50
	start_server a
	# b is slow, so it is surely mid-job when it is killed
	start_server b --step-time 0.5
	# one job a server, so b gets one too
	submit_bg_to --server "$a_URL" --server "$b_URL" --queue-depth 1 --move-after 1 --wait-server 3
	wait_for 'curl -sf "$b_URL/fake/state" > b.json && jq -e ".running != null" b.json > /dev/null' 30
	killed=$(jq -r .running.prompt_id b.json)
	kill -9 "$b_PID"
	rc=0
	submit_wait "$SUBMIT_PID" || rc=$?
	[ "$rc" = 0 ] || { cat "$BATS_TEST_TMPDIR/run.err" >&2; false; }
	cp "$BATS_TEST_TMPDIR/run.out" results.jsonl
	state_of "$a_URL" a.json
	# b.json: b's runs up to the moment it was seen running the killed one
	exactly_once a.json b.json
	job=$(jq -r --arg p "$killed" 'select(.ev == "lost" and .prompt_id == $p) | .job' state/journal.jsonl)
	[ -n "$job" ]
	jq -e -s --arg p "$killed" 'map(select(.ev == "lost" and .prompt_id == $p) | .why) == ["server down: moved"]' state/journal.jsonl
	jq -e -s --arg j "$job" --arg a "$a_URL" 'map(select(.id == $j) | .server == $a and .attempts == 2) == [true]' results.jsonl
	grep -q "$job: $b_URL is down" "$BATS_TEST_TMPDIR/run.err"
	# a rerun has nothing left to do
	run_submit --server "$a_URL"
	assert_success
	jq -e -s 'length == 8 and all(.cached)' results.jsonl
}

@test "scheduling options: bad values and an affinity no job has are usage errors, nothing written" {
	submit_videos 25
	for bad in '--queue-depth 0' '--queue-depth 17' '--model-batch x' '--move-after -1' \
	    '--server http://127.0.0.1:1#hihg' '--server http://127.0.0.1:1 --server http://127.0.0.1:1'; do
		# shellcheck disable=SC2086 # the options are words
		run --separate-stderr pr-submit --state state --out out $bad < jobs.jsonl
		[ "$status" = 2 ] || { echo "$bad: exit $status" >&2; false; }
		[ -z "$output" ]
		[ ! -e state ]
	done
	run --separate-stderr pr-submit --state state --server 'http://127.0.0.1:1#hihg' < jobs.jsonl
	assert_stderr_has 'no job has the pass or model "hihg"'
}
