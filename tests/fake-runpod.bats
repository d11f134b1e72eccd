#!/usr/bin/env bats
# fake-runpod: the RunPod REST and GraphQL stand-in, driven with curl and
# jq as pr-shutdown will see it: reading, stopping and terminating pods,
# delayed state changes, network volumes, the API key, GraphQL's errors
# with HTTP 200, every fault kind, the control endpoint, and a key that
# never shows up anywhere.

load helper
load runpod

# --- options and the socket ---

@test "usage: --help, --version, unknown options, bad values; only loopback addresses" {
	run fake-runpod --help
	assert_success
	assert_line --index 0 --partial 'usage: fake-runpod --listen'
	run fake-runpod --version
	assert_output 'fake-runpod (prompt-runner) 0.1.0'
	run --separate-stderr fake-runpod --no-such-option
	[ "$status" = 2 ]
	[ -z "$output" ]
	run fake-runpod --port 0
	[ "$status" = 2 ]
	assert_output --partial '--listen is required'
	for a in 0.0.0.0 10.1.2.3 192.168.0.1 128.0.0.1 ::1 localhost; do
		run --separate-stderr fake-runpod --listen "$a" --port 0
		[ "$status" = 2 ]
	[ -z "$output" ]
		[[ "$stderr" == *'only loopback addresses'* ]]
	done
	for bad in --pod=a/b --pod=a:STOPPED --pod=a:RUNNING:disk --price=-1 --price=x \
	    --stop-delay=-1 --stop-delay=x '--fault={"kind":"melt"}' \
	    '--fault={"kind":"graphql_error","on":"rest_get"}' '--fault={"kind":"drop","times":0}'; do
		run fake-runpod --listen 127.0.0.1 "$bad"
		[ "$status" = 2 ] || { echo "accepted: $bad"; return 1; }
	done
	run fake-runpod --listen 127.0.0.1 '--fault={"kind":"melt"}'
	assert_output --partial 'unknown fault kind "melt"'
}

@test "ready line: exactly 'listening on 127.0.0.1:PORT'; SIGTERM exits 0 at once with a request held" {
	start_runpod --pod abc --fault '{"kind": "timeout", "seconds": -1, "on": "rest_stop"}'
	run cat rp.out
	assert_output "listening on 127.0.0.1:$RP_PORT"
	exec 5<>"/dev/tcp/127.0.0.1/$RP_PORT"    # idle: no request on it
	curl -s -X POST -H @auth.hdr "$RP/v1/pods/abc/stop" -o /dev/null &
	OTHER_PIDS+=($!)
	wait_for '[ "$(state .requests.rest_stop)" = 1 ]'
	SECONDS=0
	kill -TERM "$RP_PID"
	rc=0
	wait "$RP_PID" || rc=$?
	RP_PID=
	exec 5>&-
	[ "$rc" = 0 ]
	[ "$SECONDS" -lt 5 ]
}

# --- REST ---

@test "REST GET: the Pod JSON; unknown and terminated pods are 404" {
	start_runpod --pod abc123 --pod gone:TERMINATED --pod vol:EXITED:network --price 1.29
	[ "$(rest GET /v1/pods/abc123)" = 200 ]
	run jq -c '[.id, .name, .desiredStatus, .costPerHr, .gpuCount, .imageName, .networkVolumeId]' body.out
	assert_output '["abc123","pod-abc123","RUNNING",1.29,1,"runpod/pytorch",null]'
	run jq -r .lastStatusChange body.out
	assert_output --regexp '^Rented by User: [A-Z][a-z]{2} [A-Z][a-z]{2} [0-9]{2} [0-9]{4} [0-9:]{8} GMT\+0000'
	[ "$(rest GET /v1/pods/vol)" = 200 ]
	[ "$(body '[.desiredStatus, .networkVolumeId]')" = '["EXITED","vol-vol"]' ]
	for p in nope gone; do
		[ "$(rest GET /v1/pods/$p)" = 404 ]
		[ "$(body .)" = '{"error":"pod not found"}' ]
	done
	[ "$(rest GET /v1/pods)" = 404 ]
	[ "$(rest PUT /v1/pods/abc123)" = 405 ]
	[ "$(rest POST /v1/pods/abc123/restart)" = 404 ]
}

@test "REST stop with --stop-delay: answers EXITED at once, GET shows RUNNING, then EXITED; start brings it back" {
	start_runpod --pod abc --stop-delay 0.6
	[ "$(rest POST /v1/pods/abc/stop)" = 200 ]
	[ "$(body '[.id, .desiredStatus]')" = '["abc","EXITED"]' ]
	[ "$(rest GET /v1/pods/abc)" = 200 ]
	[ "$(body .desiredStatus)" = '"RUNNING"' ]
	[ "$(state '.pods[0].pending')" = EXITED ]
	wait_for '[ "$(rest GET /v1/pods/abc)" = 200 ] && [ "$(body .desiredStatus)" = "\"EXITED\"" ]' 5
	run jq -r .lastStatusChange body.out
	assert_output --partial 'Exited by User: '
	[ "$(state '[.stops, .terminations, .requests.rest_stop]|@csv')" = '1,0,1' ]
	# stopping a stopped pod is fine
	[ "$(rest POST /v1/pods/abc/stop)" = 200 ]
	[ "$(rest POST /v1/pods/abc/start)" = 200 ]
	[ "$(body .desiredStatus)" = '"RUNNING"' ]
	wait_for '[ "$(pod_status abc)" = RUNNING ]' 5
	[ "$(rest POST /v1/pods/nope/stop)" = 404 ]
}

@test "REST DELETE: 204, then the pod is TERMINATED and answers 404; a terminate is final" {
	start_runpod --pod abc --pod keep
	[ "$(rest DELETE /v1/pods/abc)" = 204 ]
	[ ! -s body.out ]
	[ "$(pod_status abc)" = TERMINATED ]
	[ "$(pod_status keep)" = RUNNING ]
	[ "$(rest GET /v1/pods/abc)" = 404 ]
	[ "$(rest POST /v1/pods/abc/stop)" = 404 ]
	[ "$(rest DELETE /v1/pods/abc)" = 404 ]
	[ "$(state '[.stops, .terminations]|@csv')" = '0,1' ]
}

@test "network volume: stop refused (REST 400, GraphQL 200 + errors), state unchanged; terminate works" {
	start_runpod --pod vol:RUNNING:network
	[ "$(rest POST /v1/pods/vol/stop)" = 400 ]
	run jq -r .error body.out
	assert_output --partial 'network volume'
	[ "$(gql 'mutation { podStop(input: {podId: "vol"}) { id desiredStatus } }')" = 200 ]
	[ "$(body .data)" = null ]
	[ "$(body '.errors[0].path')" = '["podStop"]' ]
	run jq -r '.errors[0].message' body.out
	assert_output --partial 'only terminated'
	[ "$(pod_status vol)" = RUNNING ]
	[ "$(state .stops)" = 0 ]
	[ "$(gql 'mutation { podTerminate(input: {podId: "vol"}) }')" = 200 ]
	[ "$(body .)" = '{"data":{"podTerminate":null}}' ]
	[ "$(pod_status vol)" = TERMINATED ]
}

@test "auth: 401 without the key or with a wrong one, on both APIs; the key comes from the environment" {
	start_runpod --pod abc
	# it was not on the command line
	run grep -qF "$RP_KEY" "/proc/$RP_PID/cmdline"
	assert_failure
	[ "$(rest_noauth GET /v1/pods/abc)" = 401 ]
	[ "$(body .error)" = '"an API key is required (Authorization: Bearer KEY)"' ]
	[ "$(rest_noauth GET /v1/pods/abc -H 'Authorization: Bearer wrong')" = 401 ]
	[ "$(rest_noauth GET /v1/pods/abc -H "Authorization: Basic $RP_KEY")" = 401 ]
	[ "$(rest_noauth POST /v1/pods/abc/stop -H 'Authorization: Bearer wrong')" = 401 ]
	[ "$(rest_noauth DELETE /v1/pods/abc)" = 401 ]
	# REST does not take ?api_key=
	[ "$(rest_noauth GET "/v1/pods/abc?api_key=$RP_KEY")" = 401 ]
	gql_body 'query { pod(input: {podId: "abc"}) { id } }' > q.json
	[ "$(curl -s -o body.out -w '%{http_code}' --data-binary @q.json "$RP/graphql")" = 401 ]
	[ "$(body '.errors[0].message')" = '"Unauthorized: an API key is required"' ]
	[ "$(curl -s -o body.out -w '%{http_code}' -H 'Authorization: Bearer nope' \
	    --data-binary @q.json "$RP/graphql")" = 401 ]
	[ "$(pod_status abc)" = RUNNING ]
	[ "$(state .unauthorized)" = 8 ]
	[ "$(rest GET /v1/pods/abc)" = 200 ]
	# unknown paths outside the APIs: 404, no key needed
	[ "$(rest_noauth GET /nope)" = 404 ]
}

@test "auth: ?api_key= on GraphQL; a wrong one, or a wrong header beside a right one, is 401" {
	start_runpod --pod abc
	q='query { pod(input: {podId: "abc"}) { id } }'
	[ "$(gql_url "?api_key=$RP_KEY" "$q")" = 200 ]
	[ "$(body .data.pod.id)" = '"abc"' ]
	[ "$(gql_url '?api_key=wrong' "$q")" = 401 ]
	gql_body "$q" > q.json
	[ "$(curl -s -o /dev/null -w '%{http_code}' -H 'Authorization: Bearer wrong' \
	    --data-binary @q.json "$RP/graphql?api_key=$RP_KEY")" = 401 ]
	[ "$(curl -s -o /dev/null -w '%{http_code}' -H @auth.hdr \
	    --data-binary @q.json "$RP/graphql?x=1&api_key=$RP_KEY")" = 200 ]
}

@test "without a key configured, nothing is checked" {
	RP_KEY= start_runpod --pod abc
	[ "$(rest_noauth GET /v1/pods/abc)" = 200 ]
}

# --- GraphQL ---

@test "GraphQL podStop: inline arguments, \$input, a \$podId variable, an alias; the state changes" {
	start_runpod --pod a1 --pod a2 --pod a3 --pod a4
	[ "$(gql 'mutation { podStop(input: {podId: "a1"}) { id desiredStatus } }')" = 200 ]
	[ "$(body .)" = '{"data":{"podStop":{"id":"a1","desiredStatus":"EXITED"}}}' ]
	[ "$(gql 'mutation Stop($input: PodStopInput!) { podStop(input: $input) { id desiredStatus } }' \
	    '{"input": {"podId": "a2"}}')" = 200 ]
	[ "$(body .)" = '{"data":{"podStop":{"id":"a2","desiredStatus":"EXITED"}}}' ]
	[ "$(gql 'mutation($id: String!) {
	    # a comment, and commas, and newlines
	    podStop(input: {podId: $id}) { id, desiredStatus }
	  }' '{"id": "a3"}')" = 200 ]
	[ "$(body .data.podStop.id)" = '"a3"' ]
	[ "$(gql 'mutation { stopped: podStop(input: {podId: "a4"}) { id } }')" = 200 ]
	[ "$(body .)" = '{"data":{"stopped":{"id":"a4","desiredStatus":"EXITED"}}}' ]
	[ "$(state '[.pods[].desiredStatus] | unique | @csv')" = '"EXITED"' ]
	[ "$(state '[.stops, .requests.graphql]|@csv')" = '4,4' ]
}

@test "GraphQL pod query: every field whatever the selection; podTerminate answers null, then the pod is gone" {
	start_runpod --pod abc
	[ "$(gql '{ pod(input: {podId: "abc"}) { id } }')" = 200 ]
	[ "$(body '.data.pod | [.id, .desiredStatus, .costPerHr, .gpuCount, .networkVolumeId]')" = \
	    '["abc","RUNNING",0.69,1,null]' ]
	[ "$(gql 'query Q($input: PodFilter) { pod(input: $input) { id desiredStatus costPerHr } }' \
	    '{"input": {"podId": "abc"}}')" = 200 ]
	[ "$(body .data.pod.name)" = '"pod-abc"' ]
	[ "$(gql 'mutation { podTerminate(input: {podId: "abc"}) }')" = 200 ]
	[ "$(body .)" = '{"data":{"podTerminate":null}}' ]
	[ "$(gql 'query { pod(input: {podId: "abc"}) { id } }')" = 200 ]
	[ "$(body .)" = '{"errors":[{"message":"pod not found","path":["pod"]}],"data":null}' ]
	[ "$(state .terminations)" = 1 ]
}

@test "GraphQL errors come with HTTP 200: unknown pod, unknown field, wrong operation type, syntax, no podId" {
	start_runpod --pod abc
	[ "$(gql 'mutation { podStop(input: {podId: "nope"}) { id } }')" = 200 ]
	[ "$(body .)" = '{"errors":[{"message":"pod not found","path":["podStop"]}],"data":null}' ]
	[ "$(gql 'mutation { podTerminate(input: {podId: "nope"}) }')" = 200 ]
	[ "$(body '[.data, .errors[0].path[0]]')" = '[null,"podTerminate"]' ]
	[ "$(gql 'mutation { podResume(input: {podId: "abc"}) { id } }')" = 200 ]
	[ "$(body .)" = '{"errors":[{"message":"Cannot query field \"podResume\" on type \"Mutation\"."}],"data":null}' ]
	[ "$(gql 'query { podStop(input: {podId: "abc"}) { id } }')" = 200 ]
	[ "$(body '.errors[0].message')" = '"Cannot query field \"podStop\" on type \"Query\"."' ]
	for q in 'mutation { podStop(input: {podId: "abc"}) { id }' 'mutation { podStop(input: {podId: abc}) }' \
	    'mutation { podStop(input: {podId: "abc"}) { id } podTerminate(input: {podId: "abc"}) }' \
	    'mutation { podStop(input: {podId: "abc"}) { id } } mutation { x }' 'subscription { x }' \
	    'mutation { podStop(input: {podId: "ab\' '{ pod(input: {podId: "a"}) { id # x' ''; do
		[ "$(gql "$q")" = 200 ]
		[ "$(body '.data')" = null ]
		[ "$(body '.errors | length')" = 1 ]
	done
	[ "$(gql 'mutation { podStop(input: {}) { id } }')" = 200 ]
	[ "$(body '.errors[0].message')" = '"Field \"podId\" of required type \"String!\" was not provided."' ]
	[ "$(gql 'mutation($input: PodStopInput!) { podStop(input: $input) { id } }')" = 200 ]
	[ "$(body '.errors[0].message')" = '"Variable \"$input\" of required type \"PodStopInput!\" was not provided."' ]
	[ "$(pod_status abc)" = RUNNING ]
	# not GraphQL at all: 400; not POST: 405
	[ "$(curl -s -o body.out -w '%{http_code}' -H @auth.hdr --data-binary 'nope' "$RP/graphql")" = 400 ]
	[ "$(body '.errors | length')" = 1 ]
	[ "$(curl -s -o body.out -w '%{http_code}' -H @auth.hdr --data-binary '{"q":1}' "$RP/graphql")" = 400 ]
	[ "$(curl -s -o /dev/null -w '%{http_code}' -H @auth.hdr "$RP/graphql")" = 405 ]
	[ "$(state .stops)" = 0 ]
}

# --- faults ---

@test "fault status: REST and GraphQL answered with the code, nothing changed; 'on' chooses the request" {
	start_runpod --pod abc --fault '{"kind": "status", "code": 500, "on": "rest_stop"}'
	[ "$(rest GET /v1/pods/abc)" = 200 ]
	[ "$(rest POST /v1/pods/abc/stop)" = 500 ]
	[ "$(body .error)" = '"injected fault: HTTP 500"' ]
	[ "$(pod_status abc)" = RUNNING ]
	ctl /fake/faults '{"kind": "status", "code": 503, "on": "graphql"}' > /dev/null
	[ "$(gql 'mutation { podStop(input: {podId: "abc"}) { id } }')" = 503 ]
	[ "$(body '.errors | length')" = 1 ]
	[ "$(pod_status abc)" = RUNNING ]
	[ "$(rest POST /v1/pods/abc/stop)" = 200 ]
	[ "$(pod_status abc)" = EXITED ]
	[ "$(state .faults_fired)" = 2 ]
	run jq -c '[.[] | select(.fault) | [.kind, .status, .fault]]' <<< "$(ctl /fake/log)"
	assert_output '[["rest_stop",500,"status"],["graphql",503,"status"]]'
}

@test "fault graphql_error: HTTP 200, errors and data null, the pod untouched" {
	start_runpod --pod abc --fault '{"kind": "graphql_error", "message": "Something went wrong"}'
	[ "$(gql 'mutation { podStop(input: {podId: "abc"}) { id } }')" = 200 ]
	[ "$(body .)" = '{"errors":[{"message":"Something went wrong","path":["podStop"]}],"data":null}' ]
	[ "$(pod_status abc)" = RUNNING ]
	[ "$(state .stops)" = 0 ]
	[ "$(gql 'mutation { podStop(input: {podId: "abc"}) { id } }')" = 200 ]
	[ "$(body .data.podStop.desiredStatus)" = '"EXITED"' ]
	[ "$(pod_status abc)" = EXITED ]
}

@test "fault timeout: the answer is held so a client's timeout fires; held for ever, nothing changes" {
	start_runpod --pod abc --pod def \
	    --fault '[{"kind": "timeout", "seconds": 1.5, "on": "rest_get"}, {"kind": "timeout", "seconds": -1, "on": "graphql"}]'
	rc=0
	curl -s -m 0.4 -H @auth.hdr "$RP/v1/pods/abc" > /dev/null || rc=$?
	[ "$rc" = 28 ]
	gql_body 'mutation { podStop(input: {podId: "def"}) { id } }' > q.json
	rc=0
	curl -s -m 0.4 -H @auth.hdr --data-binary @q.json "$RP/graphql" > /dev/null || rc=$?
	[ "$rc" = 28 ]
	[ "$(pod_status def)" = RUNNING ]
	# once the hold is over, requests are answered again
	[ "$(rest GET /v1/pods/abc -m 5)" = 200 ]
	[ "$(state '[.faults_fired, (.requests | .rest_get + .graphql)]|@csv')" = '2,3' ]
}

@test "fault drop: the connection closes with no answer" {
	start_runpod --pod abc --fault '{"kind": "drop", "on": "rest_delete"}'
	rc=0
	curl -s -X DELETE -H @auth.hdr "$RP/v1/pods/abc" > /dev/null || rc=$?
	[ "$rc" = 52 ]
	[ "$(pod_status abc)" = RUNNING ]
	[ "$(ctl /fake/log | jq -c '.[0] | [.status, .fault]')" = '[null,"drop"]' ]
	[ "$(rest DELETE /v1/pods/abc)" = 204 ]
}

@test "fault ignore: stop and delete answer success and change nothing (runpod-python #450), REST and GraphQL" {
	start_runpod --pod abc --stop-delay 0.1 --fault '{"kind": "ignore", "times": 3}'
	# GETs are not struck
	[ "$(rest GET /v1/pods/abc)" = 200 ]
	[ "$(rest POST /v1/pods/abc/stop)" = 200 ]
	[ "$(body .desiredStatus)" = '"EXITED"' ]
	[ "$(rest DELETE /v1/pods/abc)" = 204 ]
	[ "$(gql 'mutation { podTerminate(input: {podId: "abc"}) }')" = 200 ]
	[ "$(body .)" = '{"data":{"podTerminate":null}}' ]
	sleep 0.3
	[ "$(rest GET /v1/pods/abc)" = 200 ]
	[ "$(body .desiredStatus)" = '"RUNNING"' ]
	[ "$(state '[.stops, .terminations, .faults_fired, (.pods[0].pending // "none")]|@csv')" = '0,0,3,"none"' ]
	[ "$(ctl /fake/faults)" = '[]' ]
	[ "$(rest POST /v1/pods/abc/stop)" = 200 ]
	wait_for '[ "$(pod_status abc)" = EXITED ]' 5
}

@test "faults: listed with defaults, counted down, for ever with times -1, cleared; bad ones refused with 400" {
	start_runpod --pod abc
	run ctl /fake/faults '[{"kind": "status", "times": 2}, {"kind": "timeout"}, {"kind": "drop", "times": -1, "on": ["rest_start", "other"]}]'
	assert_output '[{"kind":"status","times":2,"on":"any","code":500},{"kind":"timeout","on":"any","times":1,"seconds":30},{"kind":"drop","times":-1,"on":["rest_start","other"]}]'
	[ "$(rest GET /v1/pods/abc)" = 500 ]
	[ "$(ctl /fake/faults | jq -c '.[0].times')" = 1 ]
	[ "$(ctl /fake/faults/clear '')" = '[]' ]
	for bad in '{"kind": "melt"}' '{"kind": "status", "code": 99}' '{"kind": "drop", "on": "pods"}' \
	    '{"kind": "ignore", "on": "rest_get"}' '{"kind": "timeout", "seconds": -2}' \
	    '[{"kind": "drop"}, {"kind": "drop", "extra": 1}]' '[]' 'nope'; do
		[ "$(curl -s -o body.out -w '%{http_code}' --data-binary "$bad" "$RP/fake/faults")" = 400 ]
		[ "$(body '.error | type')" = '"string"' ]
	done
	[ "$(ctl /fake/faults)" = '[]' ]
	ctl /fake/faults '{"kind": "status", "code": 429, "times": -1, "on": "rest_get"}' > /dev/null
	for _ in 1 2 3; do [ "$(rest GET /v1/pods/abc)" = 429 ]; done
	[ "$(ctl /fake/faults | jq -c '.[0].times')" = -1 ]
}

# --- control ---

@test "control: /fake/pods adds and resets pods; /fake/state counts; /fake/log has one entry per request" {
	start_runpod
	[ "$(state '.pods')" = '[]' ]
	run ctl /fake/pods '{"id": "p1", "desiredStatus": "EXITED", "volume": "network"}'
	assert_output '[{"id":"p1","desiredStatus":"EXITED","volume":"network","pending":null}]'
	ctl /fake/pods '{"id": "p2"}' > /dev/null
	[ "$(rest POST /v1/pods/p1/start)" = 200 ]
	[ "$(rest DELETE /v1/pods/p2)" = 204 ]
	ctl /fake/pods '{"id": "p2"}' > /dev/null
	[ "$(pod_status p2)" = RUNNING ]
	[ "$(curl -s -o body.out -w '%{http_code}' --data-binary '{"id": "a b"}' "$RP/fake/pods")" = 400 ]
	[ "$(curl -s -o body.out -w '%{http_code}' --data-binary '{"id": "x", "desiredStatus": "GONE"}' "$RP/fake/pods")" = 400 ]
	[ "$(rest GET /nope)" = 404 ]
	run state '[.requests | .rest_get, .rest_stop, .rest_delete, .rest_start, .graphql, .other] | @csv'
	assert_output '0,0,1,1,0,1'
	run jq -c '.[] | [.method, .path, .kind, .operation, .pod, .status, .fault]' <<< "$(ctl /fake/log)"
	assert_line --index 0 '["POST","/v1/pods/p1/start","rest_start","start","p1",200,null]'
	assert_line --index 1 '["DELETE","/v1/pods/p2","rest_delete","terminate","p2",204,null]'
	assert_line --index 2 '["GET","/nope","other",null,null,404,null]'
	[ "$(ctl /fake/log | jq '.[0].t | type')" = '"number"' ]
	[ "$(curl -s -o /dev/null -w '%{http_code}' -X DELETE "$RP/fake/state")" = 405 ]
	ctl /fake/state/clear '' > /dev/null
	[ "$(ctl /fake/log)" = '[]' ]
	[ "$(state .requests.other)" = 0 ]
}

@test "the key never appears in the log, on stderr (--verbose) or on stdout, whichever way it was sent" {
	start_runpod --pod abc --verbose --fault '{"kind": "status", "code": 502, "on": "graphql"}'
	q='mutation { podStop(input: {podId: "abc"}) { id } }'
	gql_url "?api_key=$RP_KEY" "$q" > /dev/null
	gql_url "?x=1&api_key=$RP_KEY&y=2" "$q" > /dev/null
	gql_url "?api_key=wrong$RP_KEY" "$q" > /dev/null
	gql "$q" > /dev/null
	rest GET /v1/pods/abc > /dev/null
	rest_noauth GET "/v1/pods/abc?api_key=$RP_KEY" > /dev/null
	ctl /fake/log > log.json
	[ "$(jq length log.json)" = 6 ]
	[ "$(jq -r '.[1].path' log.json)" = '/graphql?x=1&api_key=…&y=2' ]
	wait_for 'grep -c "^fake-runpod: " rp.err | grep -qx 6'
	run grep -F "$RP_KEY" log.json rp.err rp.out
	assert_failure
	grep -qF 'api_key=…' rp.err
}
