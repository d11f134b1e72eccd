#!/usr/bin/env bats
# pr-shutdown against fake-runpod: the pod is stopped only when every
# produced final is uploaded, through REST, GraphQL or runpodctl, always
# confirmed; the watchdog; and the key nowhere.

load helper
load runpod

# rp [OPTIONS...]: fake-runpod with pod "pod1" and pr-shutdown pointed at it.
rp() {
	start_runpod --pod pod1 "$@"
	export RUNPOD_POD_ID=pod1 RUNPOD_API_KEY=$RP_KEY
	export RUNPOD_API_URL=$RP/v1 RUNPOD_GRAPHQL_URL=$RP/graphql
}

finals() {
	jq -nc '{video: "a", status: "success", path: "final/a_final.mp4", size: 100},
	        {video: "b", status: "failed", error: {message: "oom"}},
	        {video: "c", status: "success", path: "final/c_final.mp4", size: 200}' > finals.jsonl
}

uploads() {
	jq -nc '{video: "a", path: "final/a_final.mp4", status: "uploaded", verified: true, size: 100},
	        {video: "c", path: "final/c_final.mp4", status: "uploaded", verified: true, size: 200}'
}

shutdown() { pr-shutdown --timeout 2 --confirm-time 3 "$@"; }

@test "pr-shutdown: usage errors, and no pod id" {
	run pr-shutdown < /dev/null
	assert_failure 2
	assert_output --partial '--expect FINALS is required'
	run pr-shutdown --watchdog 5x
	assert_failure 2
	assert_output --partial 'expected a duration'
	run pr-shutdown --watchdog 1h --expect f
	assert_failure 2
	run env -u RUNPOD_POD_ID pr-shutdown --force
	assert_failure 2
	assert_output --partial 'RUNPOD_POD_ID is not set'
	run env RUNPOD_POD_ID='a/../b' pr-shutdown --force
	assert_failure 2
	assert_output --partial 'not a pod id'
}

@test "pr-shutdown: refused while a produced final has no verified upload; the pod keeps running" {
	rp
	finals
	# c's upload failed, and a's record is of another file (other size).
	jq -nc '{path: "final/a_final.mp4", verified: true, size: 99},
	        {path: "final/c_final.mp4", status: "failed", verified: false}' > up.jsonl
	run --separate-stderr shutdown --expect finals.jsonl < up.jsonl
	assert_failure 1
	[[ $stderr == *'not stopping pod pod1: 2 of 2 finals have no verified upload: final/a_final.mp4, final/c_final.mp4'* ]]
	echo "$output" | jq -e '.status == "refused" and .finals == 2'
	[ "$(pod_status pod1)" = RUNNING ]
	[ "$(state '.requests.rest_stop + .requests.graphql')" = 0 ]
	# A bad record is an error naming its line.
	printf '{"path": 3}\n' > bad.jsonl
	run shutdown --expect finals.jsonl < bad.jsonl
	assert_failure 2
	assert_output --partial '<stdin>:1: path: expected a string'
}

@test "pr-shutdown: every final uploaded: stopped through REST and confirmed" {
	rp --stop-delay 1 --price 0.44
	finals
	uploads > up.jsonl
	run --separate-stderr shutdown --expect finals.jsonl < up.jsonl
	assert_success
	echo "$output" | jq -e '.status == "stopped" and .via == "rest" and .desiredStatus == "EXITED"
	    and .cost_per_hr == 0.44 and .finals == 2 and .reason == "every final uploaded"'
	[ "$(pod_status pod1)" = EXITED ]
	# It waited for the state: GETs after the stop.
	[ "$(state .requests.rest_get)" -ge 2 ]
}

@test "pr-shutdown: REST fails, then GraphQL (errors under HTTP 200), then runpodctl" {
	rp
	finals
	uploads > up.jsonl
	ctl /fake/faults '{"kind":"status","code":500,"on":"rest_stop"}' > /dev/null
	run --separate-stderr shutdown --expect finals.jsonl < up.jsonl
	assert_success
	echo "$output" | jq -e '.via == "graphql"'
	[[ $stderr == *'REST: HTTP 500'* ]]
	[ "$(pod_status pod1)" = EXITED ]
	# Both APIs refuse: a runpodctl on PATH (here, one that asks the
	# stand-in itself) is the last way.
	ctl /fake/pods '{"id":"pod1","desiredStatus":"RUNNING"}' > /dev/null
	ctl /fake/faults '[{"kind":"status","code":503,"on":"rest_stop"},
	                   {"kind":"graphql_error","message":"Something went wrong"}]' > /dev/null
	mkdir -p fakebin
	cat > fakebin/runpodctl <<-EOF
	#!/bin/sh
	echo "\$@" > "$PWD/runpodctl.args"
	curl -sf -X POST -H @"$BATS_TEST_TMPDIR/auth.hdr" "$RP/v1/pods/\$3/stop" > /dev/null
	EOF
	chmod +x fakebin/runpodctl
	PATH=$PWD/fakebin:$PATH run --separate-stderr shutdown --expect finals.jsonl < up.jsonl
	assert_success
	echo "$output" | jq -e '.via == "runpodctl"'
	[[ $stderr == *'GraphQL: HTTP 200: Something went wrong'* ]]
	[ "$(cat runpodctl.args)" = 'stop pod pod1' ]
	[ "$(pod_status pod1)" = EXITED ]
}

@test "pr-shutdown: an API that says yes and does nothing is not believed" {
	rp
	finals
	uploads > up.jsonl
	ctl /fake/faults '{"kind":"ignore","on":"rest_stop"}' > /dev/null
	run --separate-stderr pr-shutdown --timeout 2 --confirm-time 1 --expect finals.jsonl < up.jsonl
	assert_success
	[[ $stderr == *'rest: answered, but the pod is still RUNNING after 1 s'* ]]
	echo "$output" | jq -e '.via == "graphql" and .desiredStatus == "EXITED"'
	# Nothing works at all: status 3, and the record says why.
	ctl /fake/pods '{"id":"pod1","desiredStatus":"RUNNING"}' > /dev/null
	ctl /fake/faults '{"kind":"status","code":500,"times":-1}' > /dev/null
	PATH=$BIN:/usr/bin:/bin run --separate-stderr shutdown --expect finals.jsonl < up.jsonl
	assert_failure 3
	echo "$output" | jq -e '.status == "failed" and (.error | test("could not stop pod pod1: .*runpodctl"))'
}

@test "pr-shutdown --status: the pod's state and price, through REST or GraphQL; nothing changes" {
	rp --price 0.69
	run --separate-stderr shutdown --status
	assert_success
	[ -z "$stderr" ]
	echo "$output" | jq -e '.pod == "pod1" and .action == "look" and .status == "seen"
	    and .desiredStatus == "RUNNING" and .cost_per_hr == 0.69 and .reason == "--status"'
	[ "$(state '.requests.rest_get')" = 1 ]
	# REST refuses: GraphQL answers the same.
	ctl /fake/faults '{"kind":"status","code":500,"on":"rest_get"}' > /dev/null
	run --separate-stderr shutdown --status
	assert_success
	echo "$output" | jq -e '.desiredStatus == "RUNNING" and .cost_per_hr == 0.69'
	[ "$(state '.requests.graphql')" = 1 ]
	# Only looked: no stop of any kind, the pod still runs.
	[ "$(state '.requests.rest_stop + .requests.rest_delete')" = 0 ]
	[ "$(pod_status pod1)" = RUNNING ]
	# A pod RunPod no longer knows.
	RUNPOD_POD_ID=gone run --separate-stderr shutdown --status
	assert_success
	echo "$output" | jq -e '.pod == "gone" and .desiredStatus == "TERMINATED" and (has("cost_per_hr") | not)'
	# Neither API answers, or no key: status 3 and why.
	ctl /fake/faults '{"kind":"status","code":500,"times":-1}' > /dev/null
	run --separate-stderr shutdown --status
	assert_failure 3
	[[ $stderr == *'cannot see pod pod1: neither RunPod API answered'* ]]
	echo "$output" | jq -e '.status == "failed" and .action == "look"'
	RUNPOD_API_KEY= run --separate-stderr shutdown --status
	assert_failure 3
	echo "$output" | jq -e '.error == "cannot see pod pod1: RUNPOD_API_KEY is not set"'
	# It only looks: with anything that acts, it is a usage error.
	for other in --force --dry-run --terminate '--expect f' '--watchdog 1h'; do
		# shellcheck disable=SC2086 # the option and its value are two words
		run shutdown --status $other < /dev/null
		assert_failure 2
		assert_output --partial '--status only looks at the pod'
	done
}

@test "pr-shutdown: a pod with a network volume: stop is refused clearly, --terminate works" {
	start_runpod --pod pod1:RUNNING:network
	export RUNPOD_POD_ID=pod1 RUNPOD_API_KEY=$RP_KEY RUNPOD_API_URL=$RP/v1 RUNPOD_GRAPHQL_URL=$RP/graphql
	finals
	uploads > up.jsonl
	run --separate-stderr shutdown --expect finals.jsonl < up.jsonl
	assert_failure 3
	[[ $stderr == *'pod pod1 has a network volume: it cannot be stopped, only terminated (--terminate)'* ]]
	[ "$(pod_status pod1)" = RUNNING ]
	run --separate-stderr shutdown --terminate --expect finals.jsonl < up.jsonl
	assert_success
	echo "$output" | jq -e '.status == "terminated" and .action == "terminate" and .via == "rest"'
	[ "$(pod_status pod1)" = TERMINATED ]
}

@test "pr-shutdown: --dry-run touches nothing; --force skips the check, loudly" {
	rp
	finals
	run --separate-stderr shutdown --dry-run --expect finals.jsonl < <(uploads)
	assert_success
	[[ $stderr == *'would stop pod pod1 (every final uploaded); it is now RUNNING'* ]]
	echo "$output" | jq -e '.status == "dry-run"'
	[ "$(pod_status pod1)" = RUNNING ]
	[ "$(state '.requests.rest_stop + .requests.graphql')" = 0 ]
	run --separate-stderr shutdown --force < /dev/null
	assert_success
	[[ $stderr == *'--force: stopping pod pod1 WITHOUT checking that the finals are uploaded'* ]]
	[ "$(pod_status pod1)" = EXITED ]
}

@test "pr-shutdown: the watchdog stops the pod at its deadline; killed before it, it does nothing" {
	rp
	pr-shutdown --watchdog 30s < /dev/null > wd1.jsonl 2> wd1.err &
	OTHER_PIDS+=($!)
	sleep 0.3
	kill "${OTHER_PIDS[0]}"
	wait "${OTHER_PIDS[0]}" || true
	[ "$(pod_status pod1)" = RUNNING ]
	# Not killed: at the deadline it stops the pod, whatever the run is
	# doing.
	run --separate-stderr pr-shutdown --watchdog 1s --timeout 2 < /dev/null
	assert_success
	[[ $stderr == *'watchdog: 1s passed and the run has not finished: stopping pod pod1 now'* ]]
	echo "$output" | jq -e '.reason == "watchdog" and .status == "stopped"'
	[ "$(pod_status pod1)" = EXITED ]
}

@test "pr-shutdown: the API key is in no argument, message, record or log" {
	rp
	finals
	uploads > up.jsonl
	ctl /fake/faults '{"kind":"status","code":500,"on":"rest_stop"}' > /dev/null
	shutdown --expect finals.jsonl < up.jsonl > rec.jsonl 2> rec.err &
	pid=$!
	# While it runs (or just after), its argv holds no key.
	tr '\0' ' ' < "/proc/$pid/cmdline" > cmdline 2>/dev/null || true
	wait "$pid"
	jq -e '.status == "stopped"' rec.jsonl
	ctl /fake/log > log.json
	cat rec.jsonl rec.err log.json cmdline "$BATS_TEST_TMPDIR"/rp.err > all.txt
	[ -s all.txt ]
	! grep -qF "$RP_KEY" all.txt
}
