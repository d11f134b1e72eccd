#!/usr/bin/env bats
# The whole pipeline on the stand-ins, as a user runs it on a pod: render,
# combine, upload, shut down; make demo; a video that fails; an upload that
# does not verify; a run that hangs.

load helper
load submit
load gcs
load runpod

teardown() {
	local p
	# Pipelines run in their own process group: all of it goes.
	for p in "${OTHER_PIDS[@]}"; do kill -- "-$p" 2>/dev/null || kill "$p" 2>/dev/null || true; done
	stop_comfy
	stop_gcs
	stop_runpod
}

# stand_ins [FAKE-COMFYUI OPTIONS...]: all three, pipeline.sh pointed at
# them, and the bundled prompt files beside their source videos in p/.
stand_ins() {
	start_fast_comfy "$@"
	start_gcs --bucket bkt
	start_runpod --pod pod1
	export STORAGE_EMULATOR_HOST=127.0.0.1:$GCS_PORT
	export RUNPOD_POD_ID=pod1 RUNPOD_API_KEY=$RP_KEY
	export RUNPOD_API_URL=$RP/v1 RUNPOD_GRAPHQL_URL=$RP/graphql
	mkdir -p p
	write_prompt p/one.txt src.mp4 41 'a walk' -
	write_prompt p/two.txt src.mp4 150 'a run' -
	submit_source p/src.mp4 150
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
