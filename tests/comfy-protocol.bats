#!/usr/bin/env bats
# fake-comfyui against the WebSocket recordings of the real ComfyUI 0.3.64:
# each scenario replayed, the messages compared by type, order and fields
# (ids and times aside).

load helper
load comfy

# Compares a recorder's messages with a recording, both normalized.
same_as_recording() {
	diff <(normalize "$CAPTURES/$2") <(normalize "$BATS_TEST_TMPDIR/$1.jsonl")
}

@test "ws-01: a fresh run, message for message" {
	need_captures
	start_comfy
	record a --client-id cap1 --until-end p1
	post /prompt "$(request p_img p1)"
	[ "$(last_status)" = 200 ]
	finish a
	same_as_recording a ws-01-fresh-emptyimage-saveimage.jsonl
	[ -f "$COMFY_ROOT/output/probe/img_00001_.png" ] && [ -f "$COMFY_ROOT/output/probe/img_00002_.png" ]
}

@test "ws-02: an identical resubmission is served from the cache, writing nothing" {
	need_captures
	start_comfy
	record a --client-id cap1 --until-end p1
	post /prompt "$(request p_img p1)" > /dev/null
	finish a
	before=$(find "$COMFY_ROOT/output" -type f | sort)
	record b --client-id cap1 --until-end p2
	post /prompt "$(request p_img2 p2)" > /dev/null
	finish b
	same_as_recording b ws-02-fully-cached-resubmit.jsonl
	[ "$(find "$COMFY_ROOT/output" -type f | sort)" = "$before" ]
	# history lists the old files
	run curl -s "$COMFY/history/p2"
	[ "$(jq -c '.p2.outputs["2"].images | map(.filename)' <<< "$output")" = '["img_00001_.png","img_00002_.png"]' ]
}

@test "ws-03: SaveLatent, and the .latent file it writes" {
	need_captures
	start_comfy
	record a --client-id cap1 --until-end p3
	post /prompt "$(request p_lat p3)" > /dev/null
	finish a
	same_as_recording a ws-03-savelatent.jsonl
	f=$COMFY_ROOT/output/latents/probe_00001_.latent
	[ -f "$f" ]
	# safetensors: an 8-byte little-endian header length, then the header
	n=$(od -An -tu8 -N8 "$f" | tr -d ' ')
	dd if="$f" bs=1 skip=8 count="$n" 2>/dev/null | jq -e '.latent_tensor.dtype == "F32" and (.latent_format_version_0.shape == [0]) and (.__metadata__.prompt | fromjson | has("9"))'
}

@test "ws-04: an execution error ends the prompt: no success, the error in history" {
	need_captures
	start_comfy
	record a --client-id cap1 --until-end p4
	post /prompt "$(request p_err p4)" > /dev/null
	finish a
	diff <(normalize "$CAPTURES/ws-04-runtime-execution-error.jsonl" | jq -c 'if .type == "execution_error" then .data.current_outputs |= sort else . end') \
	    <(normalize "$BATS_TEST_TMPDIR/a.jsonl" | jq -c 'if .type == "execution_error" then .data.current_outputs |= sort else . end')
	grep -q 'Saving image outside the output folder is not allowed' "$BATS_TEST_TMPDIR/a.jsonl"
	run curl -s "$COMFY/history/p4"
	[ "$(jq -c '.p4.status | [.status_str, .completed, (.messages | map(.[0]))]' <<< "$output")" = '["error",false,["execution_start","execution_cached","execution_error"]]' ]
}

@test "ws-05: a 12-node chain runs node after node" {
	need_captures
	start_comfy
	record a --client-id cap1 --until-end p5
	post /prompt "$(request p_slow p5)" > /dev/null
	finish a
	same_as_recording a ws-05-slow-chain-12-nodes.jsonl
}

@test "ws-09: subgraph ids like 309:298 are ordinary ids" {
	need_captures
	start_comfy
	record a --client-id cap1 --until-end p9
	post /prompt "$(request p_sub p9)" > /dev/null
	finish a
	same_as_recording a ws-09-colon-node-ids.jsonl
}

@test "ws-07 and ws-07b: legacy previews and progress text; a socket without clientId gets broadcasts only" {
	need_captures
	start_comfy
	record a --client-id cap1 --until-end p7
	record b --until-type nothing --timeout 30
	post /prompt "$(request p_wsimg p7)" > /dev/null
	finish a
	same_as_recording a ws-07-binary-preview-legacy-and-text.jsonl
	# b saw: its own greeting (a made-up 32-hex sid), status, status,
	# the broadcast text frame, status
	wait_for '[ "$(wc -l < "$BATS_TEST_TMPDIR/b.jsonl")" -ge 5 ]'
	kill "$b_PID"
	jq -e '.text.data.sid | test("^[0-9a-f]{32}$")' <(head -1 "$BATS_TEST_TMPDIR/b.jsonl")
	diff <(normalize "$CAPTURES/ws-07b-same-period-socket-without-clientId.jsonl") \
	    <(normalize "$BATS_TEST_TMPDIR/b.jsonl")
}

@test "ws-08: previews with metadata after feature_flags; a partly cached prompt" {
	need_captures
	start_comfy
	record a --client-id cap1 --until-end p7
	post /prompt "$(request p_wsimg p7)" > /dev/null
	finish a
	record b --client-id cap1 --until-end p8 --send '{"type":"feature_flags","data":{"supports_preview_metadata":true}}'
	post /prompt "$(request p_wsimg p8)" > /dev/null
	finish b
	# the text messages as recorded; the previews are event 4 with metadata
	diff <(normalize "$CAPTURES/ws-08-binary-preview-with-metadata.jsonl" | grep -v '"binary"') \
	    <(normalize "$BATS_TEST_TMPDIR/b.jsonl" | grep -v '"binary"')
	[ "$(jq -c 'select(.binary) | [.binary.event, .binary.meta.node_id, .binary.meta.image_type]' "$BATS_TEST_TMPDIR/b.jsonl" | sort -u)" = '[4,"save_image_websocket_node","image/png"]' ]
	[ "$(grep -c '"binary"' "$BATS_TEST_TMPDIR/b.jsonl")" = 2 ]
}

@test "ws-10: a server that dies drops the socket without a close frame" {
	need_captures
	start_comfy
	record a --client-id cap9
	post /fake/restart '{}' > /dev/null
	finish a
	normalize "$BATS_TEST_TMPDIR/a.jsonl" > ours
	diff <(normalize "$CAPTURES/ws-10-server-killed.jsonl") ours
	! grep -q close_frame "$BATS_TEST_TMPDIR/a.jsonl"
}

@test "ws-11: a second socket with the same clientId, then the first one closes: the rest is lost" {
	need_captures
	start_comfy --class-time ImageScaleBy=0.15
	record a --client-id rc
	post /prompt "$(request p_slow cccc0011 | jq -c '.client_id = "rc"')" > /dev/null
	wait_for "grep -q '\"node\":\"4\"' '$BATS_TEST_TMPDIR/a.jsonl'"
	record b --client-id rc --timeout 30 --until-end cccc0011
	# the newcomer learns the running node: no prompt_id, no display_node
	jq -e -s '.[1].text == {"type": "executing", "data": {"node": .[1].text.data.node}}' "$BATS_TEST_TMPDIR/b.jsonl"
	wait_for "grep -q '\"node\":\"8\"' '$BATS_TEST_TMPDIR/b.jsonl'"
	kill "$a_PID"
	wait_for '[ "$(curl -s "$COMFY/history/cccc0011" | jq -r ".cccc0011.status.status_str")" = success ]'
	# a got nothing after b connected; b got nothing after a went away
	! grep -q '"node":"99"' "$BATS_TEST_TMPDIR/a.jsonl" "$BATS_TEST_TMPDIR/b.jsonl"
	! grep -q execution_success "$BATS_TEST_TMPDIR/b.jsonl"
	kill "$b_PID"
}

@test "ws-11: messages sent while no socket is open are lost, not buffered" {
	need_captures
	start_comfy --class-time ImageScaleBy=0.15
	record a --client-id rc2
	post /prompt "$(request p_slow dddd0012 | jq -c '.client_id = "rc2"')" > /dev/null
	wait_for "grep -q '\"node\":\"3\"' '$BATS_TEST_TMPDIR/a.jsonl'"
	kill "$a_PID"
	wait_for '[ "$(curl -s "$COMFY/fake/state" | jq .sockets)" = 0 ]'
	# nodes 4 and on start while nobody listens
	wait_for '[ "$(curl -s "$COMFY/fake/state" | jq -r ".running.node // 0")" -ge 5 ]' 20
	record b --client-id rc2 --until-end dddd0012
	finish b
	# b: greeting, the running node (no prompt_id), the rest with ids
	jq -e -s '.[1].text.type == "executing" and (.[1].text.data | has("prompt_id") | not)' "$BATS_TEST_TMPDIR/b.jsonl"
	grep -q execution_success "$BATS_TEST_TMPDIR/b.jsonl"
	# the nodes that ran in the gap were announced to nobody
	! grep -q '"node":"4","display_node"' "$BATS_TEST_TMPDIR/b.jsonl"
}

@test "ws-06: priorities, front, a targeted and a global interrupt, queue delete and clear" {
	need_captures
	start_comfy --class-time ImageScaleBy=0.25
	record a --client-id cap1 --timeout 60 --send '{"type":"feature_flags","data":{"supports_preview_metadata":true}}'
	record b --client-id other --timeout 60
	post /prompt "$(jq -c . "$CAPTURES/requests/q_aaaa0001.json")" > /dev/null
	wait_for "grep -q '\"node\":\"2\",\"display_node\"' '$BATS_TEST_TMPDIR/a.jsonl'"
	for q in q_aaaa0002 q_aaaa0003 q_aaaa0004 q_aaaa0005 q_aaaa0006; do
		post /prompt "$(jq -c . "$CAPTURES/requests/$q.json")" > /dev/null
		[ "$(last_status)" = 200 ]
	done
	# pending by number: -100.0 (explicit numbers are floats), -3 (front), 1, 2, 2.5
	run curl -s "$COMFY/queue"
	[ "$(jq -c '[.queue_pending[] | [.[0], .[1]]]' <<< "$output")" = '[[-100,"aaaa0005"],[-3,"aaaa0004"],[1,"aaaa0002"],[2,"aaaa0003"],[2.5,"aaaa0006"]]' ]
	grep -q -- '-100.0, "aaaa0005"' <<< "$output"
	# an interrupt naming a prompt that is not running does nothing
	post /interrupt '{"prompt_id": "aaaa0002"}' > /dev/null
	post /interrupt '{"prompt_id": "aaaa0001"}' > /dev/null
	wait_for "grep -q '\"prompt_id\":\"aaaa0005\"' '$BATS_TEST_TMPDIR/a.jsonl'"
	post /queue '{"delete": ["aaaa0002"]}' > /dev/null
	post /queue '{"clear": true}' > /dev/null
	post /interrupt '' > /dev/null
	wait_for '[ "$(curl -s "$COMFY/prompt" | jq .exec_info.queue_remaining)" = 0 ]'
	post /prompt "$(jq -c '.prompt_id = "bbbb0007" | del(.client_id)' "$CAPTURES/requests/q_aaaa0003.json")" > /dev/null
	wait_for '[ "$(curl -s "$COMFY/history/bbbb0007" | jq -r ".bbbb0007.status.status_str")" = success ]'
	# what each client was told, without node-by-node detail (timing
	# decides at which node an interrupt lands)
	summary() {
		jq -c 'select(.text) | .text
		       | select(.type != "progress_state" and (.type != "executing" or .data.node == null))
		       | [.type, .data.prompt_id // .data.status.exec_info.queue_remaining]' "$@"
	}
	# ws-06b goes on into a later experiment: the scenario ends at its last
	# idle status
	summary "$CAPTURES/ws-06b-same-period-other-client-socket.jsonl" > other.all
	head -n "$(grep -n '^\["status",0\]$' other.all | tail -1 | cut -d: -f1)" other.all > other.want
	wait_for "[ \"\$(summary '$BATS_TEST_TMPDIR/b.jsonl' | wc -l)\" -ge $(wc -l < other.want) ]"
	kill "$a_PID" "$b_PID"
	diff <(summary "$CAPTURES/ws-06-queue-priority-and-interrupts.jsonl") <(summary "$BATS_TEST_TMPDIR/a.jsonl")
	diff other.want <(summary "$BATS_TEST_TMPDIR/b.jsonl")
	# the other client got the client-less prompt's progress, and only that
	[ "$(jq -r 'select(.text.type == "progress_state") | .text.data.prompt_id' "$BATS_TEST_TMPDIR/b.jsonl" | sort -u)" = bbbb0007 ]
	# interrupted prompts are errors in history, ending in execution_interrupted
	run curl -s "$COMFY/history/aaaa0001"
	[ "$(jq -c '.aaaa0001.status | [.status_str, .completed, .messages[-1][0]]' <<< "$output")" = '["error",false,"execution_interrupted"]' ]
	run curl -s "$COMFY/history/aaaa0002"
	[ "$output" = '{}' ]
}
