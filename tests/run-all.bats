#!/usr/bin/env bats
# The whole pipeline on the stand-ins, as a user runs it on a pod: render,
# combine, upload, shut down; make demo; a video that fails; an upload that
# does not verify; a run that hangs.

load helper
load submit
load gcs
load runpod
load stand-ins

teardown() {
	local p
	# Pipelines run in their own process group: all of it goes.
	for p in "${OTHER_PIDS[@]}"; do kill -- "-$p" 2>/dev/null || kill "$p" 2>/dev/null || true; done
	stop_comfy
	stop_gcs
	stop_runpod
}

pipeline() {
	"$REPO/pipeline.sh" --server "$COMFY" --dest gs://bkt/v --run r "$@"
}

object() { echo "$GCS_ROOT/bkt/v/r/$1"; }

@test "make demo: rendered, combined, uploaded, the pod stopped, the stand-ins gone" {
	run "$REPO/tools/demo.sh" "$BATS_TEST_TMPDIR/demo"
	assert_success
	assert_output --partial 'pod demo-pod: stopped'
	assert_output --partial 'demo: the pod is now EXITED'
	d=$BATS_TEST_TMPDIR/demo
	[ "$(jq -s 'map(select(.status == "success")) | length' "$d/state/finals.jsonl")" = 3 ]
	[ "$(jq -s 'map(select(.verified)) | length' "$d/state/uploads.jsonl")" = 3 ]
	for v in city-walk dancer short; do
		cmp "$d/out/final/${v}_final.mp4" "$d/gcs/demo-bucket/videos/demo/final/${v}_final.mp4"
	done
	# The dancer's final holds the source's 500 frames, in order.
	[ "$(fake-frameid "$d/out/final/dancer_final.mp4" | jq -c .runs)" = '[[0,499]]' ]
	[ -s "$d/gcs/demo-bucket/videos/demo/state/results.jsonl" ]
	# The report: printed, made, and uploaded beside the finals.
	assert_output --partial "demo: the report (seam sheets, GPU timeline): $d/out/report/index.html"
	cmp "$d/out/report/index.html" "$d/gcs/demo-bucket/videos/demo/report/index.html"
	[ "$(jq -s 'map(select(.video == "dancer"))[0].seams | length' "$d/state/reports.jsonl")" = 5 ]
	# Nothing of the demo is left running.
	for name in comfy gcs runpod; do
		port=$(sed -n 's/^listening on 127.0.0.1://p' "$d/$name.out")
		! curl -s -o /dev/null "http://127.0.0.1:$port/"
	done
}

@test "one video fails: the other is combined and uploaded, the state too, and the pod stops" {
	stand_ins
	# The first prompt executed fails for good (not out of memory: no
	# retry), so its video fails; the other one goes on.
	curl -sf -X POST "$COMFY/fake/faults" -d '{"kind":"exec_error","prompt":1,
	    "exception_type":"RuntimeError","message":"bad input"}' > /dev/null
	run --separate-stderr pipeline --shutdown --watchdog 5m p
	assert_failure 1
	good=$(jq -r 'select(.status == "success") | .video' state/finals.jsonl)
	bad=$(jq -r 'select(.status == "failed") | .video' state/finals.jsonl)
	[ "$(echo $good $bad | tr ' ' '\n' | sort | tr '\n' ' ')" = 'one two ' ]
	jq -se --arg p "final/${good}_final.mp4" 'length == 1 and .[0].verified and .[0].path == $p' state/uploads.jsonl
	cmp "out/final/${good}_final.mp4" "$(object "final/${good}_final.mp4")"
	[ -s "$(object state/results.jsonl)" ]
	[ -s "$(object state/finals.jsonl)" ]
	[ "$(pod_status pod1)" = EXITED ]
	jq -e '.status == "stopped" and .finals == 1' state/shutdown.jsonl
	[[ $output == *'pod pod1: stopped'* ]]
}

@test "a final whose upload does not verify: the pod is not stopped" {
	stand_ins
	curl -sf -X POST "$GCS/fake/faults" -d '{"kind":"corrupt","times":-1}' > /dev/null
	run --separate-stderr pipeline --shutdown p
	assert_failure 1
	jq -se 'map(select(.verified | not)) | length == 2' state/uploads.jsonl
	jq -e '.status == "refused"' state/shutdown.jsonl
	[ "$(pod_status pod1)" = RUNNING ]
	[[ $stderr == *'not stopping pod pod1: 2 of 2 finals have no verified upload'* ]]
	# Fixed, run again: nothing is rendered again, the uploads go, the pod stops.
	curl -sf -X POST "$GCS/fake/faults/clear" > /dev/null
	run --separate-stderr pipeline --shutdown p
	assert_success
	[[ $stderr == *'0 prompts executed'* ]]
	[ "$(pod_status pod1)" = EXITED ]
}

@test "the watchdog stops the pod when the run hangs" {
	stand_ins
	curl -sf -X POST "$COMFY/fake/faults" -d '{"kind":"hang","node":"WanVideoSampler"}' > /dev/null
	setsid "$REPO/pipeline.sh" --server "$COMFY" --dest gs://bkt/v --run r --shutdown \
	    --watchdog 2s --job-timeout 600 p > run.out 2> run.err &
	OTHER_PIDS+=($!)
	wait_for '[ "$(pod_status pod1)" = EXITED ]' 30
	grep -q 'watchdog: 2s passed and the run has not finished: stopping pod pod1 now' state/watchdog.log
	jq -e '.reason == "watchdog" and .status == "stopped"' state/watchdog.jsonl
}

# The jobs the stand-in executed, one line per execution, by job id.
executed() {
	curl -sf "$COMFY/fake/state" > fake-state.json
	jq -s -c '[.[] | select(.ev == "submit") | {key: .prompt_id, value: .job}] | from_entries' \
	    state/journal.jsonl > prompt-jobs.json
	jq -r --slurpfile m prompt-jobs.json '.runs[] | $m[0][.prompt_id] // "unknown"' fake-state.json | sort
}

@test "kill -9 of pipeline.sh mid-run: the orphaned pr-submit and a rerun never overlap, nothing runs twice" {
	stand_ins --node-time 0.15
	setsid "$REPO/pipeline.sh" --server "$COMFY" p > first.out 2> first.err &
	pg=$!
	OTHER_PIDS+=("$pg")
	wait_for 'grep -q "\"ev\":\"done\"" state/journal.jsonl 2>/dev/null' 30
	kill -9 "$pg"
	# Its pr-submit goes on, orphaned, holding the state folder's lock.
	pgrep -g "$pg" pr-submit > /dev/null
	run --separate-stderr "$REPO/pipeline.sh" --server "$COMFY" p
	assert_failure 3
	[[ $stderr == *'held by pid'* ]]
	wait_for "! pgrep -g $pg > /dev/null" 60
	run --separate-stderr "$REPO/pipeline.sh" --server "$COMFY" p
	assert_success
	jq -se 'map(select(.status == "success")) | length == 2' state/finals.jsonl
	executed > runs
	jq -r .id state/*/jobs.jsonl | sort > expected
	diff expected runs
}

@test "--background: returns at once, the run goes on in its own session, output in the state folder" {
	stand_ins
	run "$REPO/pipeline.sh" --background --server "$COMFY" --state st p
	assert_success
	assert_output --regexp '^pipeline.sh: running in the background \(pid [0-9]+\); its output goes to st/pipeline.log$'
	pid=$(sed -n 's/.*(pid \([0-9]*\)).*/\1/p' <<< "$output")
	OTHER_PIDS+=("$pid")
	# Its own session: a hangup of ours never reaches it.
	[ "$(ps -o sid= -p "$pid" | tr -d ' ')" = "$pid" ]
	wait_for "! kill -0 $pid 2>/dev/null" 60
	jq -se 'map(select(.status == "success")) | length == 2' st/finals.jsonl
	grep -q 'final/two_final.mp4' st/pipeline.log
}

@test "make finals: per video; after editing one prompt file only that video renders again" {
	stand_ins
	mk() {
		make -s -C "$REPO" --no-print-directory PROMPTS="$PWD/p" STATE="$PWD/state" OUT="$PWD/out" \
		    SERVER="$COMFY" PR_TOOLS="$BIN" "$@"
	}
	run mk finals
	assert_success
	jq -e '.status == "success"' state/one/finals.jsonl state/two/finals.jsonl
	executed > runs1
	[ "$(grep -c '^one/' runs1)" = 2 ] && [ "$(grep -c '^two/' runs1)" = 4 ]
	before=$(stat -c %Y state/two/finals.jsonl)
	write_prompt p/one.txt src.mp4 41 'a slower walk' -
	run mk finals
	assert_success
	executed > runs2
	# Two more executions, both of one's jobs; two's record untouched.
	diff runs1 runs2 | grep '^>' | sed 's/^> //' | sort > new
	printf 'one/job_001\none/job_002\n' | diff - new
	[ "$(stat -c %Y state/two/finals.jsonl)" = "$before" ]
	run mk upload
	assert_failure
	assert_output --partial 'set DEST=gs://BUCKET/PREFIX'
}

@test "prompt text is data: quotes, backslashes, \${...}, \$(...) and backticks reach the workflow byte for byte and run nothing" {
	stand_ins
	rm p/one.txt p/two.txt
	# shellcheck disable=SC2016 # every $ here is meant literally
	text='a "quoted" \back\slash $(touch PWNED1) `touch PWNED2` ${PWNED3:=x} $HOME %s %n '"'"'; touch PWNED4; '"'"' ;touch PWNED5'
	write_prompt p/evil.txt src.mp4 41 "$text" 'no $(touch PWNED6)'
	run --separate-stderr pipeline p
	assert_success
	[ -z "$(find "$BATS_TEST_TMPDIR" /tmp -maxdepth 3 -name 'PWNED*' 2> /dev/null)" ]
	# the prompt record, every job's workflow and the server all have it as written
	[ "$(jq -r .positive state/evil/prompt.jsonl)" = "$text" ]
	for wf in state/evil/workflows/*.json; do
		jq -e --arg t "$text" '[.. | strings | select(. == $t)] | length == 1' "$wf" > /dev/null
	done
	curl -sf "$COMFY/fake/state" | jq -e --arg t "$text" \
	    '[.posts[] | select(.path == "/prompt") | [.body.prompt[] | .inputs[]? | strings | select(. == $t)] | length == 1] | length > 0 and all' > /dev/null
	jq -e -s 'length == 1 and .[0].status == "success"' state/finals.jsonl
}
