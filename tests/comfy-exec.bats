#!/usr/bin/env bats
# fake-comfyui as an executor: the shipped workflows patched by pr-patch run
# on it, and the files they make carry the right source frames.

load helper
load comfy

HIGH=Wan2.2_T2V_High_Noise_14B_VACE-Q8_0.gguf
LOW=Wan2.2_T2V_Low_Noise_14B_VACE-Q8_0.gguf

# A root with every file the shipped workflows name, and a 300-frame
# identity-coded source video beside a prompt file.
models() {
	mkdir -p "$COMFY_ROOT/models/diffusion_models" "$COMFY_ROOT/models/loras" \
	    "$COMFY_ROOT/models/text_encoders" "$COMFY_ROOT/models/vae" "$COMFY_ROOT/models/upscale_models"
	: > "$COMFY_ROOT/models/diffusion_models/$HIGH"
	: > "$COMFY_ROOT/models/diffusion_models/$LOW"
	: > "$COMFY_ROOT/models/loras/wan2.2_high_t2v.safetensors"
	: > "$COMFY_ROOT/models/loras/wan2.2_low_t2v.safetensors"
	: > "$COMFY_ROOT/models/text_encoders/umt5-xxl-enc-bf16.safetensors"
	: > "$COMFY_ROOT/models/vae/wan_2.1_vae.safetensors"
	: > "$COMFY_ROOT/models/upscale_models/RealESRGAN_x2plus.pth"
}

suite_setup() {
	COMFY_ROOT=$BATS_TEST_TMPDIR/comfy
	mkdir -p p out
	fake-frameid --make p/src.mp4 --frames 300 --size 64x48 > /dev/null
}

# jobs.jsonl for a prompt of T frames, with pr-plan's options.
plan() {
	local t=$1
	shift
	write_prompt p/clip.txt src.mp4 "$t" 'a dancer' 'blurry'
	pr-parse p/clip.txt | pr-plan "$@" | pr-patch --workflows "$REPO/workflows" --no-state > jobs.jsonl
}

# Uploads a job's stage files as its stage list says.
stage_job() {
	jq -c '.stage[]' <<< "$1" | while IFS= read -r s; do
		local path as file
		path=$(jq -r .path <<< "$s")
		as=$(jq -r .as <<< "$s")
		case $path in /*) file=$path ;; *) file=out/$path ;; esac
		curl -sf -F "image=@$file;filename=${as##*/}" -F "subfolder=${as%/*}" -F overwrite=true \
		    "$COMFY/upload/image" > /dev/null
	done
}

# What pr-submit will do for one job, with curl: stage, submit, wait,
# collect from history, derive. Prints the history entry.
run_job() {
	local job=$1 id pid status entry=$BATS_TEST_TMPDIR/.entry
	id=$(jq -r .id <<< "$job")
	pid=run-$(tr / - <<< "$id")
	stage_job "$job"
	post /prompt "$(jq -c --arg pid "$pid" '{prompt: .workflow, client_id: "test", prompt_id: $pid}' <<< "$job")" > /dev/null
	[ "$(last_status)" = 200 ] || return 1
	wait_for "curl -s '$COMFY/history/$pid' | jq -e '.[\"$pid\"].status.completed != null' > /dev/null" 30
	curl -s "$COMFY/history/$pid" | jq -c --arg pid "$pid" '.[$pid]' > "$entry"
	status=$(jq -r .status.status_str "$entry")
	[ "$status" = success ] || {
		jq -c '.status.messages[-1][1] | {node_id, exception_type, exception_message}' "$entry" >&2
		return 1
	}
	jq -c '.collect[]' <<< "$job" | while IFS= read -r c; do
		local node dest f
		node=$(jq -r .node <<< "$c")
		dest=out/$(jq -r .path <<< "$c")
		f=$(jq -c --arg n "$node" '.outputs[$n] | (.gifs // .latents // .images)[0]' "$entry")
		mkdir -p "$(dirname "$dest")"
		curl -sf -o "$dest" -G "$COMFY/view" --data-urlencode "filename=$(jq -r .filename <<< "$f")" \
		    --data-urlencode "subfolder=$(jq -r .subfolder <<< "$f")" --data-urlencode "type=$(jq -r .type <<< "$f")"
	done
	jq -c '.derive[]' <<< "$job" | while IFS= read -r d; do
		mkdir -p "out/$(dirname "$(jq -r .path <<< "$d")")"
		ffmpeg -v error -y -i "out/$(jq -r .from <<< "$d")" -vf "select=eq(n\\,$(jq -r .frame <<< "$d"))" \
		    -fps_mode passthrough -frames:v 1 "out/$(jq -r .path <<< "$d")"
	done
	cat "$entry"
}

run_all() {
	while IFS= read -r job; do
		run_job "$job" > /dev/null || return 1
	done < jobs.jsonl
}

runs() {
	fake-frameid "$1" | jq -c .runs
}

@test "a two-chunk video: every segment holds exactly the source frames it should" {
	start_comfy
	models
	plan 150
	[ "$(wc -l < jobs.jsonl)" = 4 ]
	run_all
	# chunk 0 renders 97 frames from 0; chunk 1, 53 frames from 97
	[ "$(runs out/videos/clip/job_002.mp4)" = '[[0,96]]' ]
	[ "$(runs out/videos/clip/job_004.mp4)" = '[[97,149]]' ]
	# the reference for chunk 1 is frame 97 - 10 of chunk 0
	[ "$(runs out/references/clip/job_002_ref.png)" = '[[87,87]]' ]
	# the LOW latent of a chunk went through HIGH steps 0-4, then LOW 4-8
	n=$(od -An -tu8 -N8 out/latents/clip/job_003.latent | tr -d ' ')
	dd if=out/latents/clip/job_003.latent bs=1 skip=8 count="$n" 2>/dev/null |
	    jq -r '.__metadata__["fake-comfyui"] | fromjson | .passes | map("\(.model) \(.from)-\(.to)") | join(",")' > passes
	[ "$(cat passes)" = "$HIGH 0-4" ]
	# the files each prompt read, as the control endpoint tells
	run curl -s "$COMFY/fake/state"
	jq -e '.runs[3].read | index("input/prompt-runner/clip/job_003.latent") != null' <<< "$output"
	jq -e '.runs[2].read | index("input/prompt-runner/clip/job_002_ref.png") != null' <<< "$output"
}

@test "the HIGH job prunes its decode branch: node_errors on 200, only the latent is made" {
	start_comfy
	models
	plan 50
	high=$(head -1 jobs.jsonl)
	stage_job "$high"
	run post /prompt "$(jq -c '{prompt: .workflow, client_id: "c", prompt_id: "h"}' <<< "$high")"
	[ "$(last_status)" = 200 ]
	jq -e '.node_errors["341"].errors[0].type == "required_input_missing" and .node_errors["341"].dependent_outputs == ["344"]' <<< "$output"
	wait_for '[ "$(curl -s "$COMFY/history/h" | jq -r ".h.status.status_str")" = success ]'
	[ "$(curl -s "$COMFY/history/h" | jq -c '.h.outputs | keys')" = '["365"]' ]
	[ -z "$(find "$COMFY_ROOT/output" -name '*.mp4')" ]
}

@test "Wan renders 4k+1 frames: a LENGTH of 100 gives 97" {
	start_comfy
	models
	plan 100 --no-align
	run_all
	[ "$(runs out/videos/clip/job_002.mp4)" = '[[0,96]]' ]
}

@test "a latent handed to the wrong chunk shows in the video" {
	start_comfy
	models
	plan 150
	run_all
	# chunk 1's LOW job, but with chunk 0's latent
	low=$(sed -n 4p jobs.jsonl | jq -c '.id = "clip/wrong"
	    | .stage |= map(if .path | endswith(".latent") then .path = "latents/clip/job_001.latent" else . end)
	    | .collect[0].path = "videos/clip/wrong.mp4"')
	run_job "$low" > entry.json
	[ "$(runs out/videos/clip/wrong.mp4)" = '[[0,96]]' ]
}

@test "VideoHelperSuite's video: h264 with B-frames, yuv420p, its naming and history entry" {
	start_comfy
	models
	plan 50
	run_all
	probe=$(ffprobe -v error -select_streams v:0 -show_entries stream=codec_name,pix_fmt -of csv=p=0 out/videos/clip/job_002.mp4)
	[ "$probe" = h264,yuv420p ]
	ffprobe -v error -select_streams v:0 -show_entries frame=pict_type -of csv=p=0 out/videos/clip/job_002.mp4 | grep -q B
	run curl -s "$COMFY/history/run-clip-job_002"
	jq -e '.["run-clip-job_002"].outputs["344"].gifs[0] | .filename == "job_002_00001.mp4" and .subfolder == "prompt-runner/clip"
	       and .type == "output" and .format == "video/h264-mp4" and .frame_rate == 30 and .workflow == "job_002_00001.png"
	       and (.fullpath | endswith("/output/prompt-runner/clip/job_002_00001.mp4"))' <<< "$output"
	[ -f "$COMFY_ROOT/output/prompt-runner/clip/job_002_00001.png" ]
	# the same prefix again, with a change so nothing is cached: _00002
	# (a new id, so run_job waits for this prompt's history, not the first one's)
	job=$(sed -n 2p jobs.jsonl | jq -c '.id = "clip/again" | .workflow["54"].inputs.seed = 7 | .collect[0].path = "again.mp4"')
	run_job "$job" > /dev/null
	[ -f "$COMFY_ROOT/output/prompt-runner/clip/job_002_00002.mp4" ]
}

@test "the last job resubmitted is served from the cache; a changed reference image runs it again" {
	start_comfy
	models
	plan 150
	run_all
	n=$(find "$COMFY_ROOT/output" -type f | wc -l)
	# the cache keeps the latest prompt's results (ComfyUI's classic cache)
	job=$(sed -n 4p jobs.jsonl)
	run_job "$(jq -c '.id = "clip/again"' <<< "$job")" > entry.json
	# every node of the workflow came from the cache
	[ "$(jq -c '.status.messages[1][1].nodes | length' entry.json)" = "$(jq '.workflow | length' <<< "$job")" ]
	[ "$(find "$COMFY_ROOT/output" -type f | wc -l)" = "$n" ]
	# its outputs are the old ones
	[ "$(jq -r '.outputs["344"].gifs[0].filename' entry.json)" = job_004_00001.mp4 ]
	# a new reference image: LoadImage hashes its file, so the job runs
	fake-frameid --make out/references/clip/job_002_ref.png --frames 1 --first 5 > /dev/null
	run_job "$(jq -c '.id = "clip/again2"' <<< "$job")" > entry.json
	[ "$(find "$COMFY_ROOT/output" -type f | wc -l)" -gt "$n" ]
}

@test "model loads: alternating HIGH and LOW loads every time; --load-time makes them cost" {
	start_comfy --load-time 0.05
	models
	plan 150
	run_all
	run curl -s "$COMFY/fake/state"
	[ "$(jq -c '[.model_loads[].model]' <<< "$output")" = "[\"$HIGH\",\"$LOW\",\"$HIGH\",\"$LOW\"]" ]
	[ "$(jq -r .loaded_model <<< "$output")" = "$LOW" ]
}

@test "sampler steps report progress, one message per step" {
	start_comfy --step-time 0.01
	models
	plan 50
	high=$(head -1 jobs.jsonl)
	record a --client-id test --until-end run-clip-job_001
	run_job "$high" > /dev/null
	finish a
	[ "$(jq -c 'select(.text.type == "progress") | [.text.data.node, .text.data.value, .text.data.max]' "$BATS_TEST_TMPDIR/a.jsonl" | paste -sd' ')" = '["54",1,4] ["54",2,4] ["54",3,4] ["54",4,4]' ]
}

@test "the combine workflow: kept frames, RIFE x2 between them, appended to the previous video" {
	start_comfy
	models
	plan 150 --combine progressive
	run_all
	# combine 1: chunk 0's 97 frames doubled by RIFE: 193, every other one in between
	fake-frameid out/combined/clip_combined_001.mp4 > c1.json
	[ "$(jq .frames c1.json)" = 193 ]
	[ "$(jq -c '[.codes[0,1,2,191,192]]' c1.json)" = "[0,$((8388608 + 0)),1,$((8388608 + 95)),96]" ]
	# combine 2: the first one, then chunk 1 (53 kept) doubled: 193 + 105
	fake-frameid out/combined/clip_combined_002.mp4 > c2.json
	[ "$(jq .frames c2.json)" = 298 ]
	[ "$(jq -c '[.codes[192,193,194,297]]' c2.json)" = "[96,97,$((8388608 + 97)),149]" ]
}

@test "a misspelled model costs nothing: value_not_in_list naming the input, nothing queued" {
	start_comfy
	models
	plan 50 --high-model Wan2.2_T2V_Hihg_Noise_14B_VACE-Q8_0.gguf
	high=$(head -1 jobs.jsonl)
	stage_job "$high"
	run post /prompt "$(jq -c '{prompt: .workflow, client_id: "c"}' <<< "$high")"
	[ "$(last_status)" = 400 ]
	jq -e '.error.type == "prompt_outputs_failed_validation"
	       and .node_errors["4"].errors[0].type == "value_not_in_list"
	       and .node_errors["4"].errors[0].extra_info.input_name == "model"
	       and (.node_errors["4"].errors[0].details | startswith("model: '"'"'Wan2.2_T2V_Hihg_Noise_14B_VACE-Q8_0.gguf'"'"' not in"))' <<< "$output"
	[ "$(curl -s "$COMFY/fake/state" | jq '.runs | length')" = 0 ]
}
