#!/usr/bin/env bats
# fake-comfyui's HTTP side against the recorded answers of ComfyUI 0.3.64.

load helper
load comfy

# Removes what the recordings cannot fix: Python tracebacks, the random
# prompt_id and queue number, and the order of one node's errors (Python
# iterates a set there).
comparable() {
	jq -S 'walk(if type == "object" then del(.traceback) else . end)
	       | if .prompt_id then .prompt_id = "ID" | .number = 0 else . end
	       | if .node_errors then .node_errors |= map_values(.errors |= sort_by(.type, .details)) else . end'
}

@test "the 22 recorded POST /prompt cases: same status, same body" {
	need_captures
	start_comfy
	n=$(jq length "$CAPTURES/http-post-prompt-cases.json")
	[ "$n" = 22 ]
	for ((i = 0; i < n; i++)); do
		name=$(jq -r ".[$i].case" "$CAPTURES/http-post-prompt-cases.json")
		want=$(jq -r ".[$i].http_status" "$CAPTURES/http-post-prompt-cases.json")
		case $name in
		malformed_json) body='{"prompt": {"1": ' ;;
		prompt_is_a_list) body='[{"prompt": {}}]' ;;
		*) body=$(jq -c ".[$i].request" "$CAPTURES/http-post-prompt-cases.json") ;;
		esac
		got=$(post /prompt "$body")
		[ "$(last_status)" = "$want" ] || { echo "$name: status $(last_status), want $want: $got"; return 1; }
		if [ "$want" = 500 ]; then
			[ "$got" = "$(jq -r ".[$i].response" "$CAPTURES/http-post-prompt-cases.json")" ] || {
				echo "$name: $got"; return 1; }
			continue
		fi
		diff <(jq ".[$i].response" "$CAPTURES/http-post-prompt-cases.json" | comparable) \
		    <(comparable <<< "$got") || { echo "in case $name"; return 1; }
	done
}

@test "the queue number: counts every POST, even rejected ones; explicit numbers are floats" {
	start_comfy --class-time EmptyImage=5
	ok='{"prompt": {"1": {"class_type": "EmptyImage", "inputs": {"width": 8, "height": 8, "batch_size": 1, "color": 0}}, "2": {"class_type": "PreviewImage", "inputs": {"images": ["1", 0]}}}}'
	[ "$(post /prompt "$ok" | jq .number)" = 0 ]
	post /prompt '{"prompt": {}}' > /dev/null
	[ "$(last_status)" = 400 ]
	run post /prompt "$ok"
	[ "$(jq .number <<< "$output")" = 2 ]
	run post /prompt "$(jq -c '. + {front: true}' <<< "$ok")"
	[ "$(jq .number <<< "$output")" = -3 ]
	run post /prompt "$(jq -c '. + {number: 7}' <<< "$ok")"
	assert_output --partial '"number": 7.0'
	run post /prompt "$(jq -c '. + {prompt_id: 12345}' <<< "$ok")"
	assert_output --partial '"prompt_id": "12345"'
	# a made-up prompt_id is a uuid4
	run post /prompt "$ok"
	jq -e '.prompt_id | test("^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")' <<< "$output"
}

@test "every route also answers under /api" {
	start_comfy
	for p in /prompt /queue /history /object_info/SaveImage /system_stats /features; do
		[ "$(curl -s "$COMFY$p")" = "$(curl -s "$COMFY/api$p")" ] || { echo "$p"; return 1; }
	done
	run post /api/prompt '{"client_id": "x"}'
	[ "$(last_status)" = 400 ]
	assert_output --partial '"no_prompt"'
}

@test "/view: the recorded status codes" {
	need_captures
	start_comfy
	post /prompt "$(request p_img v1)" > /dev/null
	wait_for '[ "$(curl -s "$COMFY/history/v1" | jq -r ".v1.status.status_str")" = success ]'
	code() { curl -s -o /dev/null -w '%{http_code} %{content_type}' "$COMFY$1"; }
	[ "$(code '/view?filename=img_00001_.png&subfolder=probe&type=output')" = '200 image/png' ]
	[ "$(code '/view?filename=img_00001_.png&subfolder=probe')" = '200 image/png' ]
	[ "$(code '/view?filename=img_00001_.png&type=output' | cut -d' ' -f1)" = 404 ]
	[ "$(code '/view?filename=probe/img_00001_.png&type=output' | cut -d' ' -f1)" = 404 ]
	[ "$(code '/view?filename=img_00001_.png%20%5Boutput%5D&subfolder=probe&type=input')" = '200 image/png' ]
	[ "$(code '/view?filename=../main.py&type=output' | cut -d' ' -f1)" = 400 ]
	[ "$(code '/view?filename=/etc/passwd' | cut -d' ' -f1)" = 400 ]
	[ "$(code '/view?filename=main.py&subfolder=..&type=output' | cut -d' ' -f1)" = 403 ]
	[ "$(code '/view?filename=passwd&subfolder=/etc&type=output' | cut -d' ' -f1)" = 403 ]
	[ "$(code '/view?filename=img_00001_.png&type=bogus' | cut -d' ' -f1)" = 400 ]
	[ "$(code '/view?type=output' | cut -d' ' -f1)" = 404 ]
	[ "$(code '/api/view?filename=img_00001_.png&subfolder=probe&type=output')" = '200 image/png' ]
	[ "$(code '/history/does-not-exist')" = '200 application/json; charset=utf-8' ]
	[ "$(curl -s "$COMFY/history/does-not-exist")" = '{}' ]
	[ "$(curl -s "$COMFY/object_info/NoSuch")" = '{}' ]
	[ "$(code /ws)" = '400 text/plain; charset=utf-8' ]
	[ "$(curl -s "$COMFY/ws" | wc -c)" = 66 ]
	# the file itself, whole, with its name
	curl -s -D headers -o got.png "$COMFY/view?filename=img_00001_.png&subfolder=probe&type=output"
	cmp got.png "$COMFY_ROOT/output/probe/img_00001_.png"
	grep -qi '^content-disposition: filename="img_00001_.png"' headers
}

@test "/view streams a big file whole" {
	start_comfy
	mkdir -p "$COMFY_ROOT/output/big"
	head -c 20000000 /dev/urandom > "$COMFY_ROOT/output/big/blob.latent"
	curl -s -o got "$COMFY/view?filename=blob.latent&subfolder=big&type=output"
	cmp got "$COMFY_ROOT/output/big/blob.latent"
}

@test "/upload/image: subfolder, identical bytes reused, renamed on a clash, overwrite, refusals" {
	start_comfy
	printf 'first' > a.latent
	printf 'second' > b.latent
	up() { curl -s -w ' %{http_code}' -F "image=@$1;filename=$2" "${@:3}" "$COMFY/upload/image"; }
	[ "$(up a.latent job_001.latent -F subfolder=prompt-runner/vid)" = '{"name": "job_001.latent", "subfolder": "prompt-runner/vid", "type": "input"} 200' ]
	cmp a.latent "$COMFY_ROOT/input/prompt-runner/vid/job_001.latent"
	# the same bytes again: the same name, nothing written
	[ "$(up a.latent job_001.latent -F subfolder=prompt-runner/vid)" = '{"name": "job_001.latent", "subfolder": "prompt-runner/vid", "type": "input"} 200' ]
	# other bytes under that name: a new name
	[ "$(up b.latent job_001.latent -F subfolder=prompt-runner/vid)" = '{"name": "job_001 (1).latent", "subfolder": "prompt-runner/vid", "type": "input"} 200' ]
	cmp a.latent "$COMFY_ROOT/input/prompt-runner/vid/job_001.latent"
	# overwrite replaces
	[ "$(up b.latent job_001.latent -F subfolder=prompt-runner/vid -F overwrite=true)" = '{"name": "job_001.latent", "subfolder": "prompt-runner/vid", "type": "input"} 200' ]
	cmp b.latent "$COMFY_ROOT/input/prompt-runner/vid/job_001.latent"
	# a name may climb out of its subfolder, but never out of input/
	[ "$(up a.latent ../../evil.latent -F subfolder=prompt-runner/vid | tail -c 3)" = 200 ]
	[ -f "$COMFY_ROOT/input/evil.latent" ]
	[ "$(up a.latent ../../../evil.latent -F subfolder=prompt-runner/vid | tail -c 3)" = 400 ]
	[ "$(up a.latent x.latent -F subfolder=../../etc | tail -c 3)" = 400 ]
	[ ! -e "$COMFY_ROOT/../evil.latent" ]
	[ "$(up a.latent x.latent -F type=bogus | tail -c 3)" = 500 ]
	[ "$(curl -s -o /dev/null -w '%{http_code}' -F 'subfolder=x' "$COMFY/upload/image")" = 400 ]
	# output and temp uploads
	[ "$(up a.latent t.latent -F type=temp)" = '{"name": "t.latent", "subfolder": "", "type": "temp"} 200' ]
	[ -f "$COMFY_ROOT/temp/t.latent" ]
}

@test "the upload limit: larger requests get 413" {
	start_comfy --max-upload 100000
	head -c 200000 /dev/zero > big.mp4
	[ "$(curl -s -o /dev/null -w '%{http_code}' -F 'image=@big.mp4' "$COMFY/upload/image")" = 413 ]
	head -c 1000 /dev/zero > small.mp4
	[ "$(curl -s -o /dev/null -w '%{http_code}' -F 'image=@small.mp4' "$COMFY/upload/image")" = 200 ]
	run curl -s "$COMFY/features"
	assert_output '{"supports_preview_metadata": true, "max_upload_size": 100000}'
}

@test "malformed bodies get aiohttp's 500; /interrupt tolerates anything" {
	start_comfy
	for path in /prompt /queue /history /free; do
		post "$path" 'not json' > /dev/null
		[ "$(last_status)" = 500 ] || { echo "$path: $(last_status)"; return 1; }
	done
	[ "$(post /free '')" = '500 Internal Server Error

Server got itself in trouble' ]
	post /interrupt 'not json' > /dev/null
	[ "$(last_status)" = 200 ]
	post /interrupt '' > /dev/null
	[ "$(last_status)" = 200 ]
	[ "$(curl -s -o /dev/null -w '%{http_code}' -X DELETE "$COMFY/queue")" = 405 ]
	[ "$(curl -s -o /dev/null -w '%{http_code}' "$COMFY/no/such/route")" = 404 ]
}

@test "history: entries, max_items and offset, delete and clear" {
	start_comfy
	p='{"prompt": {"1": {"class_type": "EmptyImage", "inputs": {"width": 8, "height": 8, "batch_size": 1, "color": 0}}, "2": {"class_type": "PreviewAny", "inputs": {"source": ["1", 0]}}}, "client_id": "c"}'
	for id in h1 h2 h3; do
		post /prompt "$(jq -c --arg id "$id" '. + {prompt_id: $id} | .prompt["1"].inputs.color = ($id | length)' <<< "$p")" > /dev/null
	done
	wait_for '[ "$(curl -s "$COMFY/history" | jq length)" = 3 ]'
	run curl -s "$COMFY/history/h2"
	jq -e '.h2.prompt[1] == "h2" and .h2.prompt[3] == {"client_id": "c"} and .h2.prompt[4] == ["2"]
	       and .h2.status.status_str == "success" and .h2.status.completed
	       and .h2.meta["2"] == {"node_id": "2", "display_node": "2", "parent_node": null, "real_node_id": "2"}' <<< "$output"
	[ "$(curl -s "$COMFY/history?max_items=2" | jq -c keys_unsorted)" = '["h2","h3"]' ]
	[ "$(curl -s "$COMFY/history?max_items=1&offset=0" | jq -c keys_unsorted)" = '["h1"]' ]
	post /history '{"delete": ["h1"]}' > /dev/null
	[ "$(curl -s "$COMFY/history" | jq -c keys_unsorted)" = '["h2","h3"]' ]
	post /history '{"clear": true}' > /dev/null
	[ "$(curl -s "$COMFY/history")" = '{}' ]
}

@test "discovery: /object_info fills file lists from the root, /system_stats, /features" {
	start_comfy
	mkdir -p "$COMFY_ROOT/models/diffusion_models/sub" "$COMFY_ROOT/models/unet" "$COMFY_ROOT/models/loras"
	: > "$COMFY_ROOT/models/diffusion_models/b.gguf"
	: > "$COMFY_ROOT/models/unet/a.gguf"
	: > "$COMFY_ROOT/models/diffusion_models/sub/c.safetensors"
	: > "$COMFY_ROOT/models/diffusion_models/notes.txt"
	: > "$COMFY_ROOT/input/ref.png"
	: > "$COMFY_ROOT/input/clip.mp4"
	: > "$COMFY_ROOT/input/job.latent"
	run curl -s "$COMFY/object_info/WanVideoModelLoader"
	# ggufs (both folders, sorted), then the other models: as folder_paths lists them
	[ "$(jq -c '.WanVideoModelLoader.input.required.model[0]' <<< "$output")" = '["a.gguf","b.gguf","sub/c.safetensors"]' ]
	refute_output --partial 'x-'
	[ "$(curl -s "$COMFY/object_info/LoadImage" | jq -c '.LoadImage.input.required.image[0]')" = '["ref.png"]' ]
	[ "$(curl -s "$COMFY/object_info/VHS_LoadVideo" | jq -c '.VHS_LoadVideo.input.required.video')" = '[["clip.mp4"]]' ]
	[ "$(curl -s "$COMFY/object_info/LoadLatent" | jq -c '.LoadLatent.input.required.latent')" = '[["job.latent"]]' ]
	# every class of the shipped workflows is served
	curl -s "$COMFY/object_info" > info.json
	jq -r '.[].class_type' "$REPO/workflows/prompt.json" "$REPO/workflows/combine.json" | sort -u |
	while IFS= read -r cls; do
		jq -e --arg c "$cls" 'has($c)' info.json > /dev/null || { echo "$cls"; return 1; }
	done
	run curl -s "$COMFY/system_stats"
	jq -e '.system.comfyui_version == "0.3.64" and (.devices | length) == 1' <<< "$output"
	# the seed's maximum keeps all its digits
	curl -s "$COMFY/object_info/WanVideoSampler" | grep -q '"max": 18446744073709551615'
}

@test "only loopback: other addresses are refused, and 127.0.0.1 is all it binds" {
	run fake-comfyui --listen 0.0.0.0 --port 0 --root r
	assert_failure 2
	assert_output --partial 'only loopback'
	run fake-comfyui --listen 10.1.2.3 --port 0 --root r
	assert_failure 2
	run fake-comfyui --listen ::1 --port 0 --root r
	assert_failure 2
	start_comfy
	# /proc/net/tcp: local address 0100007F is 127.0.0.1; nothing on 0.0.0.0
	hexport=$(printf '%04X' "$COMFY_PORT")
	grep -q " 0100007F:$hexport 00000000:0000 0A " /proc/net/tcp
	! grep -q " 00000000:$hexport 00000000:0000 0A " /proc/net/tcp
	! grep -q ":$hexport 00000000000000000000000000000000:0000 0A " /proc/net/tcp6
}

@test "ComfyUI's origin check: a mismatched Origin gets 403" {
	start_comfy
	[ "$(curl -s -o /dev/null -w '%{http_code}' -H "Origin: http://127.0.0.1:$COMFY_PORT" "$COMFY/prompt")" = 200 ]
	[ "$(curl -s -o /dev/null -w '%{http_code}' -H 'Origin: http://127.0.0.1' "$COMFY/prompt")" = 200 ]
	[ "$(curl -s -o /dev/null -w '%{http_code}' -H "Origin: http://localhost:$COMFY_PORT" "$COMFY/prompt")" = 403 ]
	[ "$(curl -s -o /dev/null -w '%{http_code}' -H 'Origin: http://127.0.0.1:9999' "$COMFY/prompt")" = 403 ]
}

@test "usage: --help, --version, bad options, the temp folder wiped at start" {
	run fake-comfyui --help
	assert_success
	assert_output --partial 'usage: fake-comfyui'
	run fake-comfyui --version
	assert_output 'fake-comfyui (prompt-runner) 0.1.0'
	run fake-comfyui --listen 127.0.0.1 --port 99999 --root r
	assert_failure 2
	run fake-comfyui --listen 127.0.0.1 --root r --fault '{"kind": "nope"}'
	assert_failure 2
	assert_output --partial 'unknown fault kind "nope"'
	mkdir -p comfy/temp/old && : > comfy/temp/old/x.png && : > comfy/output/keep.png 2>/dev/null || { mkdir -p comfy/output && : > comfy/output/keep.png; }
	start_comfy
	[ ! -e comfy/temp/old ] && [ -f comfy/output/keep.png ]
}

@test "--nodes: with all 77 reference classes, the original tool's broken workflows get the predicted errors" {
	[ -f "$SHARED/node-schemas/object_info.json" ] || skip "no ../shared/reference/node-schemas beside the repository"
	need_fixtures
	ONLY=all "$REPO/tools/lib/mknodes" "$SHARED/node-schemas/object_info.json" > facts.json
	start_comfy --nodes facts.json
	[ "$(curl -s "$COMFY/object_info" | jq length)" = 77 ]
	# session 112003's first HIGH job: the patcher deleted node 341, which
	# 340 and 343 still link to (README §D)
	run post /prompt "$(jq -c '{prompt: .workflow}' "$FIXTURES/dry-run/session_20250811_112003/workflows/workflow_001_high_noise_render.json")"
	jq -e '.node_errors["340"].errors[0].type == "exception_during_validation"
	       and .node_errors["340"].errors[0].extra_info.exception_type == "KeyError"
	       and .node_errors["340"].errors[0].details == "'"'"'341'"'"'"' <<< "$output"
	# the numeric link [33, 0] of a combine job
	run post /prompt "$(jq -c '{prompt: .workflow}' "$FIXTURES/dry-run/session_20250811_112003/workflows/workflow_011_combine.json")"
	jq -e '[.node_errors[].errors[] | select(.type == "exception_during_validation") | .details] | index("33") != null' <<< "$output"
}

@test "POST /free with free_memory: the next identical prompt runs again" {
	start_comfy
	p='{"prompt": {"1": {"class_type": "EmptyImage", "inputs": {"width": 8, "height": 8, "batch_size": 1, "color": 0}}, "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "free/x"}}}}'
	post /prompt "$(jq -c '.prompt_id = "f1"' <<< "$p")" > /dev/null
	wait_for '[ "$(curl -s "$COMFY/history/f1" | jq -r .f1.status.status_str)" = success ]'
	post /prompt "$(jq -c '.prompt_id = "f2"' <<< "$p")" > /dev/null
	wait_for '[ "$(curl -s "$COMFY/history/f2" | jq -r .f2.status.status_str)" = success ]'
	[ "$(curl -s "$COMFY/history/f2" | jq -c '.f2.status.messages[1][1].nodes')" = '["1","2"]' ]
	post /free '{"free_memory": true, "unload_models": true}' > /dev/null
	[ "$(last_status)" = 200 ]
	post /prompt "$(jq -c '.prompt_id = "f3"' <<< "$p")" > /dev/null
	wait_for '[ "$(curl -s "$COMFY/history/f3" | jq -r .f3.status.status_str)" = success ]'
	[ "$(curl -s "$COMFY/history/f3" | jq -c '.f3.status.messages[1][1].nodes')" = '[]' ]
	[ -f "$COMFY_ROOT/output/free/x_00002_.png" ]
}
