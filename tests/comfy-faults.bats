#!/usr/bin/env bats
# Every fault fake-comfyui injects, and what a client sees of it.

load helper
load comfy

CHAIN='{"prompt": {"1": {"class_type": "EmptyImage", "inputs": {"width": 64, "height": 48, "batch_size": 1, "color": 0}},
 "2": {"class_type": "ImageScaleBy", "inputs": {"image": ["1", 0], "upscale_method": "nearest-exact", "scale_by": 1.0}},
 "3": {"class_type": "ImageScaleBy", "inputs": {"image": ["2", 0], "upscale_method": "nearest-exact", "scale_by": 1.0}},
 "4": {"class_type": "SaveImage", "inputs": {"images": ["3", 0], "filename_prefix": "f/img"}}}, "client_id": "c"}'

# The chain, with prompt_id $1 and the EmptyImage colour $2 (no caching).
chain() {
	jq -c --arg id "$1" --argjson c "${2:-0}" '. + {prompt_id: $id} | .prompt["1"].inputs.color = $c' <<< "$CHAIN"
}

history_status() {
	curl -s "$COMFY/history/$1" | jq -r --arg id "$1" '.[$id].status.status_str // "none"'
}

@test "http: a route answers 500 once, then normally again" {
	start_comfy --fault '{"kind": "http", "route": "/prompt", "method": "POST", "status": 500}'
	run post /prompt "$(chain a)"
	[ "$(last_status)" = 500 ]
	assert_output --partial 'Server got itself in trouble'
	# nothing was queued
	[ "$(curl -s "$COMFY/queue" | jq '.queue_pending | length')" = 0 ]
	post /prompt "$(chain a)" > /dev/null
	[ "$(last_status)" = 200 ]
	# GET /prompt was never affected (method given)
	[ "$(curl -s -o /dev/null -w '%{http_code}' "$COMFY/prompt")" = 200 ]
}

@test "http: a connection closed without an answer, for a number of times" {
	start_comfy
	post /fake/faults '{"kind": "http", "route": "/history", "close": true, "times": 2}' > /dev/null
	run curl -s "$COMFY/history"
	[ "$status" = 52 ]    # empty reply from server
	run curl -s "$COMFY/history"
	[ "$status" = 52 ]
	run curl -s "$COMFY/history"
	assert_success
	assert_output '{}'
}

@test "http: a slow answer comes, late" {
	start_comfy --fault '{"kind": "http", "route": "/queue", "delay": 1.5}'
	run curl -s --max-time 0.5 "$COMFY/queue"
	[ "$status" = 28 ]    # timed out
	post /fake/faults '{"kind": "http", "route": "/queue", "delay": 0.3}' > /dev/null
	run curl -s --max-time 20 "$COMFY/queue"
	assert_success
	assert_output '{"queue_running": [], "queue_pending": []}'
}

@test "ws_drop at a node: the socket ends without a close frame; the prompt still finishes" {
	start_comfy --fault '{"kind": "ws_drop", "node": "3"}'
	record a --client-id c
	post /prompt "$(chain d)" > /dev/null
	finish a
	tail -1 "$BATS_TEST_TMPDIR/a.jsonl" | jq -e .closed
	! grep -q close_frame "$BATS_TEST_TMPDIR/a.jsonl"
	grep -q '"node":"2","display_node"' "$BATS_TEST_TMPDIR/a.jsonl"
	wait_for '[ "$(history_status d)" = success ]'
}

@test "ws_drop by time, for one client only" {
	start_comfy --fault '{"kind": "ws_drop", "at": 0.5, "client_id": "x"}'
	record x --client-id x --timeout 20
	record y --client-id y --timeout 3
	finish x
	tail -1 "$BATS_TEST_TMPDIR/x.jsonl" | jq -e .closed
	# y stayed connected until its own timeout
	rc=0
	finish y || rc=$?
	[ "$rc" = 1 ]
	! grep -q closed "$BATS_TEST_TMPDIR/y.jsonl"
}

@test "restart at a node: memory lost, files kept, the counter back at 0, connections refused a while" {
	start_comfy --class-time ImageScaleBy=0.2
	post /prompt "$(chain r1)" > /dev/null
	wait_for '[ "$(history_status r1)" = success ]'
	post /prompt "$(chain r2 1)" > /dev/null
	post /prompt "$(chain r3 2)" > /dev/null
	record a --client-id c
	post /fake/faults '{"kind": "restart", "node": "3", "down": 1}' > /dev/null
	finish a
	tail -1 "$BATS_TEST_TMPDIR/a.jsonl" | jq -e .closed
	! grep -q close_frame "$BATS_TEST_TMPDIR/a.jsonl"
	# while it is "down", connections fail; then it answers again
	run curl -s "$COMFY/prompt"
	[ "$status" != 0 ]
	wait_for 'curl -s "$COMFY/prompt" > /dev/null' 10
	# nothing of before: no history, no queue (r3 was pending), no cache
	[ "$(curl -s "$COMFY/history")" = '{}' ]
	[ "$(curl -s "$COMFY/queue")" = '{"queue_running": [], "queue_pending": []}' ]
	[ -f "$COMFY_ROOT/output/f/img_00001_.png" ]
	[ "$(post /prompt "$(chain r1)" | jq .number)" = 0 ]
	wait_for '[ "$(history_status r1)" = success ]'
	# the same prompt as before the restart runs again: the cache is gone
	[ "$(curl -s "$COMFY/history/r1" | jq -c '.r1.status.messages[1][1].nodes')" = '[]' ]
}

@test "exec_error: an out-of-memory error at the sampler-like node, as ComfyUI reports it" {
	start_comfy --fault '{"kind": "exec_error", "node": "ImageScaleBy", "prompt": 1}'
	record a --client-id c --until-end e1
	post /prompt "$(chain e1)" > /dev/null
	finish a
	jq -e -s 'map(select(.text.type == "execution_error"))[0].text.data
	          | .node_id == "2" and .node_type == "ImageScaleBy" and .exception_type == "torch.OutOfMemoryError"
	            and .executed == ["1"] and (.exception_message | test("out of memory"))' "$BATS_TEST_TMPDIR/a.jsonl"
	! grep -q execution_success "$BATS_TEST_TMPDIR/a.jsonl"
	[ "$(history_status e1)" = error ]
	# prompt 2 is not affected
	post /prompt "$(chain e2 3)" > /dev/null
	wait_for '[ "$(history_status e2)" = success ]'
	post /fake/faults '{"kind": "exec_error", "node": "4", "exception_type": "RuntimeError", "message": "disk full"}' > /dev/null
	post /prompt "$(chain err3 4)" > /dev/null
	wait_for '[ "$(history_status err3)" = error ]'
	[ "$(curl -s "$COMFY/history/err3" | jq -r '.err3.status.messages[-1][1] | "\(.exception_type): \(.exception_message)"')" = 'RuntimeError: disk full' ]
}

@test "hang: a node runs until interrupted" {
	start_comfy --fault '{"kind": "hang", "node": "3"}'
	record a --client-id c --until-end h1
	post /prompt "$(chain h1)" > /dev/null
	wait_for '[ "$(curl -s "$COMFY/fake/state" | jq -r .running.node)" = 3 ]'
	# it stays there
	! wait_for '[ "$(history_status h1)" != none ]' 1 2>/dev/null
	post /interrupt '{}' > /dev/null
	finish a
	jq -e -s 'map(select(.text.type == "execution_interrupted"))[0].text.data | .node_id == "3" and .executed == ["1", "2"]' "$BATS_TEST_TMPDIR/a.jsonl"
	[ "$(history_status h1)" = error ]
}

@test "truncate, empty and size: the output files are cut, emptied, or as big as asked" {
	start_comfy
	post /fake/faults '[{"kind": "truncate", "node": "4", "prompt": 1, "bytes": 10},
	                     {"kind": "empty", "node": "SaveImage", "prompt": 2},
	                     {"kind": "size", "node": "4", "prompt": 3, "bytes": 3000000000}]' > /dev/null
	for id in t1 t2 t3; do
		post /prompt "$(chain "$id" "${#id}$id" 2>/dev/null || chain "$id" $RANDOM)" > /dev/null
	done
	wait_for '[ "$(history_status t3)" = success ]'
	size() {
		local f
		f=$(curl -s "$COMFY/history/$1" | jq -r --arg id "$1" '.[$id].outputs["4"].images[0].filename')
		curl -s -o /dev/null -w '%{size_download}' "$COMFY/view?filename=$f&subfolder=f"
	}
	[ "$(size t1)" = 10 ]
	[ "$(size t2)" = 0 ]
	# a sparse file: its size, not its blocks
	f=$(curl -s "$COMFY/history/t3" | jq -r '.t3.outputs["4"].images[0].filename')
	[ "$(stat -c %s "$COMFY_ROOT/output/f/$f")" = 3000000000 ]
	[ "$(curl -s -I "$COMFY/view?filename=$f&subfolder=f" | tr -d '\r' | sed -n 's/^content-length: //Ip')" = 3000000000 ]
}

@test "faults are checked when armed; the state endpoint lists them" {
	start_comfy
	post /fake/faults '{"kind": "http"}' > /dev/null
	[ "$(last_status)" = 400 ]
	run post /fake/faults '{"kind": "hang", "nod": "3"}'
	[ "$(last_status)" = 400 ]
	assert_output --partial 'unknown fault field \"nod\"'
	post /fake/faults '{"kind": "hang", "node": "3", "times": 0}' > /dev/null
	[ "$(curl -s "$COMFY/fake/state" | jq -c '.faults')" = '[{"kind":"hang","node":"3","times":0}]' ]
	post /fake/faults/clear '' > /dev/null
	[ "$(curl -s "$COMFY/fake/state" | jq -c '.faults')" = '[]' ]
}
