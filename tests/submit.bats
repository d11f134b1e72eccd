#!/usr/bin/env bats
# pr-submit against the stand-in: a whole run with the right frames in the
# right files, reruns served from the journal, preflight stopping bad jobs
# before anything is queued, bad input, the state lock, progress events,
# and servers that are not there (yet).

load helper
load comfy
load submit

# The records of results.jsonl-like output in $output, saved to FILE.
save_results() {
	printf '%s\n' "$output" > "$1"
}

# Checks every file of every result against the disk: size and sha256.
check_files() {
	local n=0 path size sum
	while IFS=$'\t' read -r path size sum; do
		[ -f "out/$path" ] || { echo "missing out/$path" >&2; return 1; }
		[ "$(stat -c %s "out/$path")" = "$size" ] || { echo "size of out/$path" >&2; return 1; }
		[ "$(sha256sum "out/$path" | cut -d' ' -f1)" = "$sum" ] || { echo "sha256 of out/$path" >&2; return 1; }
		n=$((n + 1))
	done < <(jq -r '.files[] | [.path, .size, .sha256] | @tsv' "$1")
	[ "$n" -gt 0 ]
}

# The video of each prompt executed on the stand-in (by the results' ids),
# one a line, "?" for a prompt no result names.
run_videos() {
	jq -n -r --slurpfile r "$1" --slurpfile s "$2" '
	  ($r | map({key: .prompt_id, value: .video}) | from_entries) as $v
	  | $s[0].runs[] | $v[.prompt_id] // "?"'
}

@test "two videos, three chunks each: every file there, right frames, references uploaded before use" {
	start_fast_comfy
	submit_videos 70 60
	[ "$(wc -l < jobs.jsonl)" = 12 ]
	submit
	assert_success
	save_results results.jsonl
	[ "$(wc -l < results.jsonl)" = 12 ]
	# in input order, all run now, once
	[ "$(jq -r .id results.jsonl | paste -sd' ')" = "$(jq -r .id jobs.jsonl | paste -sd' ')" ]
	jq -e -s 'all(.status == "success" and .cached == false and .attempts == 1
	              and (.key | test("^[0-9a-f]{64}$")) and (.prompt_id | length) > 0
	              and has("workflow") == false)' results.jsonl
	jq -e -s 'map(.prompt_id) | unique | length == 12' results.jsonl
	check_files results.jsonl
	assert_stderr_line "pr-submit: 12 done (0 cached, 12 prompts executed), 0 failed, 0 skipped"

	# each segment: frame k of chunk c carries source frame start + k
	local segs=0 refs=0 start frames path frame
	while IFS=$'\t' read -r start frames path; do
		[ "$(fake-frameid "out/$path" | jq -c .codes)" = "$(jq -nc --argjson s "$start" --argjson f "$frames" '[range($s; $s + $f)]')" ]
		segs=$((segs + 1))
	done < <(jq -r 'select(.pass == "low") | [.start, .frames, (.files[] | select(.role == "segment") | .path)] | @tsv' results.jsonl)
	[ "$segs" = 6 ]
	# each reference is frame frames - 10 of its segment
	while IFS=$'\t' read -r start frames path frame; do
		[ "$frame" = $((frames - 10)) ]
		[ "$(fake-frameid "out/$path" | jq -c .codes)" = "[$((start + frames - 10))]" ]
		refs=$((refs + 1))
	done < <(jq -r '.start as $s | .frames as $f | .derive[] | [$s, $f, .path, .frame] | @tsv' results.jsonl)
	[ "$refs" = 4 ]
	# and is listed among its job's files
	jq -e -s '[.[] | select(.derive != []) | (.derive[0].path as $p | .files | map(.path) | index($p) != null)] | length == 4 and all' results.jsonl

	fake_state state.json
	# exactly one run per job, and all succeeded
	jq -e --slurpfile r results.jsonl '(.runs | length) == 12
	    and (.runs | map(.prompt_id) | sort) == ($r | map(.prompt_id) | sort)
	    and (.runs | all(.status == "success"))' state.json
	# every reference uploaded before the POST /prompt of the first job of
	# its video staging it (uploads carry only the file name, shared by the
	# videos: the k-th upload must come before the k-th such POST)
	jq -e -n --slurpfile r results.jsonl --slurpfile s state.json '
	  $s[0].posts as $posts
	  | def post_t($pid): [$posts[] | select(.path == "/prompt" and .body.prompt_id == $pid) | .t];
	    [$r[] | . as $j | .stage[] | select(.["as"] | endswith("_ref.png"))
	     | {name: (.["as"] | split("/") | last), video: $j.video, t: post_t($j.prompt_id)}]
	  | (all(.t | length == 1)) as $once
	  | map(.t |= .[0]) | group_by(.name)
	  | map(. as $g | ($g | group_by(.video) | map(map(.t) | min) | sort) as $p
	        | ([$posts[] | select(.path == "/upload/image" and .upload == $g[0].name) | .t] | sort) as $u
	        | ($u | length) == ($p | length) and all(range($p | length); $u[.] < $p[.]))
	  | $once and length == 2 and all' > /dev/null
	# each LOW job read its own HIGH job's latent, and its video's
	# reference: itself, or (when the run before it on the server loaded
	# the same file, as ComfyUI's node cache then serves it) earlier
	jq -e -n --slurpfile r results.jsonl --slurpfile s state.json '
	  def pad3: tostring | ("00" + .)[-3:];
	  $s[0].runs as $runs
	  | [$r[] | select(.pass == "low") | . as $j
	   | ($runs | map(.prompt_id) | index($j.prompt_id)) as $k
	   | ($runs | map(select(.prompt_id == $j.prompt_id)) | length) == 1
	     and ($runs[$k].read | index("input/prompt-runner/\($j.video)/job_\($j.n - 1 | pad3).latent") != null)
	     and ($runs[$k].read | map(select(endswith(".latent"))) | length) == 1
	     and all($j.stage[] | select(.["as"] | endswith("_ref.png"));
	             .["as"] as $name | [$runs[0:$k + 1][] | .read | index("input/\($name)")] | any(. != null))]
	  | length == 6 and all' > /dev/null
}

@test "rerunning a finished run executes nothing: every job cached" {
	start_fast_comfy
	submit_videos 70 60
	submit
	assert_success
	save_results first.jsonl
	fake_clear_log
	submit
	assert_success
	save_results second.jsonl
	[ "$(wc -l < second.jsonl)" = 12 ]
	jq -e -s 'all(.status == "success" and .cached == true)' second.jsonl
	# the same keys, prompt ids and files as the run that made them
	[ "$(jq -c '[.key, .prompt_id, .files]' second.jsonl)" = "$(jq -c '[.key, .prompt_id, .files]' first.jsonl)" ]
	assert_stderr_has "(12 cached, 0 prompts executed)"
	fake_state state.json
	[ "$(jq '.runs | length' state.json)" = 0 ]
	[ "$(jq '[.posts[] | select(.path == "/prompt")] | length' state.json)" = 0 ]
}

@test "cleaned-up intermediates: a verified final keeps its video cached, a wrong one does not" {
	start_fast_comfy
	submit_videos 70 60
	submit
	assert_success
	save_results first.jsonl
	mkdir -p out/final
	echo 'the final of a' > out/final/a_final.mp4
	sum=$(sha256sum out/final/a_final.mp4 | cut -d' ' -f1)
	jq -nc --arg s "$sum" '{video: "a", status: "success", path: "final/a_final.mp4", sha256: $s}' > state/finals.jsonl

	# a's intermediates gone, b's intact: all cached, nothing runs
	rm -rf out/latents/a out/videos/a out/references/a
	fake_clear_log
	submit
	assert_success
	save_results r1.jsonl
	jq -e -s 'length == 12 and all(.status == "success" and .cached == true)' r1.jsonl
	fake_state s1.json
	[ "$(jq '.runs | length' s1.json)" = 0 ]

	# b's gone too, b has no final: b runs again, a stays cached
	rm -rf out/latents out/videos out/references
	fake_clear_log
	submit
	assert_success
	save_results r2.jsonl
	jq -e -s 'map(select(.video == "a")) | length == 6 and all(.status == "success" and .cached == true)' r2.jsonl
	jq -e -s 'map(select(.video == "b")) | length == 6 and all(.status == "success" and .cached == false)' r2.jsonl
	fake_state s2.json
	[ "$(run_videos r2.jsonl s2.json | sort | uniq -c | awk '{print $2 "=" $1}' | paste -sd' ')" = "b=6" ]
	[ -f out/videos/b/job_006.mp4 ] && [ ! -e out/videos/a ]

	# a final whose sha256 does not match: a's jobs run again
	echo 'changed' > out/final/a_final.mp4
	fake_clear_log
	submit
	assert_success
	save_results r3.jsonl
	jq -e -s 'map(select(.video == "a")) | length == 6 and all(.status == "success" and .cached == false)' r3.jsonl
	jq -e -s 'map(select(.video == "b")) | all(.cached == true)' r3.jsonl
	fake_state s3.json
	[ "$(run_videos r3.jsonl s3.json | sort | uniq -c | awk '{print $2 "=" $1}' | paste -sd' ')" = "a=6" ]
	check_files <(jq -c 'select(.video == "a")' r3.jsonl)
}

@test "preflight: a misspelled LoRA in a late job stops the run before anything is queued" {
	start_fast_comfy
	submit_videos 70 60
	# the input and node, as the workflow has them
	[ "$(jq -r 'select(.id == "b/job_006") | .workflow["309:298"] | .class_type + " " + .inputs.lora' jobs.jsonl)" = "WanVideoLoraSelect $SUBMIT_LOW_LORA" ]
	jq -c 'if .id == "b/job_006" then .workflow["309:298"].inputs.lora = "wan2.2_low_t2v.safetenosrs" else . end' jobs.jsonl > bad.jsonl
	JOBS=bad.jsonl submit
	assert_failure 2
	[ -z "$output" ]
	assert_stderr_line "pr-submit: job b/job_006: node 309:298 (WanVideoLoraSelect): input lora: Value not in list: got \"wan2.2_low_t2v.safetenosrs\"; closest available: \"$SUBMIT_LOW_LORA\""
	assert_stderr_line "pr-submit: preflight: 1 problem found; nothing was submitted"
	fake_state state.json
	[ "$(jq '[.posts[] | select(.path == "/prompt")] | length' state.json)" = 0 ]
	[ "$(jq '.runs | length' state.json)" = 0 ]
	[ ! -e out/latents ]

	# two bad jobs (a HIGH LoRA misspelled too): both told, in one go
	jq -c 'if .id == "a/job_003" then .workflow["309:298"].inputs.lora = "wan2.2_hihg_t2v.safetensors" else . end' bad.jsonl > bad2.jsonl
	JOBS=bad2.jsonl submit
	assert_failure 2
	[ -z "$output" ]
	assert_stderr_line "pr-submit: job a/job_003: node 309:298 (WanVideoLoraSelect): input lora: Value not in list: got \"wan2.2_hihg_t2v.safetensors\"; closest available: \"$SUBMIT_HIGH_LORA\""
	assert_stderr_has "pr-submit: job b/job_006: node 309:298 (WanVideoLoraSelect): input lora:"
	assert_stderr_line "pr-submit: preflight: 2 problems found; nothing was submitted"
	[ "$(grep -c '^pr-submit: job ' <<< "$stderr")" = 2 ]
	fake_state state.json
	[ "$(jq '[.posts[] | select(.path == "/prompt")] | length' state.json)" = 0 ]
	[ "$(jq '.runs | length' state.json)" = 0 ]
}

@test "preflight: a missing source video and one too short for the plan" {
	start_fast_comfy
	submit_prompt q/c.txt 70
	submit_source q/src.mp4 40
	submit_plan short.jsonl 25 q/c.txt
	JOBS=short.jsonl submit
	assert_failure 2
	[ -z "$output" ]
	# chunk 0 (frames 0-24) fits in 40 frames; chunks 1 and 2 do not
	refute_stderr "job c/job_001:"
	refute_stderr "job c/job_002:"
	assert_stderr_match "^pr-submit: job c/job_003: node 149 \(VHS_LoadVideo\): input video .*/q/src.mp4 has 40 frames.*needs 50"
	assert_stderr_match "^pr-submit: job c/job_006: node 149 \(VHS_LoadVideo\): input video .*/q/src.mp4 has 40 frames.*needs 70"
	assert_stderr_line "pr-submit: preflight: 4 problems found; nothing was submitted"

	rm q/src.mp4
	JOBS=short.jsonl submit
	assert_failure 2
	[ -z "$output" ]
	assert_stderr_match "^pr-submit: job c/job_001: .*/q/src.mp4.*not there"
	assert_stderr_match "^pr-submit: job c/job_006: .*/q/src.mp4.*not there"
	assert_stderr_line "pr-submit: preflight: 6 problems found; nothing was submitted"
	fake_state state.json
	[ "$(jq '[.posts[] | select(.path == "/prompt" or .path == "/upload/image")] | length' state.json)" = 0 ]
}

@test "bad input and options: exit 2, nothing written" {
	start_fast_comfy
	submit_videos 30
	printf '%s\n' "$(head -1 jobs.jsonl)" 'not json' > notjson.jsonl
	JOBS=notjson.jsonl submit
	assert_failure 2
	[ -z "$output" ]
	assert_stderr_match '^pr-submit: <stdin>:2:'

	jq -c 'if .id == "a/job_002" then del(.workflow) else . end' jobs.jsonl > nowf.jsonl
	JOBS=nowf.jsonl submit
	assert_failure 2
	[ -z "$output" ]
	assert_stderr_match '^pr-submit: <stdin>:2:.*workflow'

	jq -c 'if .id == "a/job_002" then .deps += ["a/job_099"] else . end' jobs.jsonl > dep.jsonl
	JOBS=dep.jsonl submit
	assert_failure 2
	[ -z "$output" ]
	assert_stderr_has 'a/job_099'

	{ cat jobs.jsonl; head -1 jobs.jsonl; } > dup.jsonl
	JOBS=dup.jsonl submit
	assert_failure 2
	[ -z "$output" ]
	assert_stderr_match "^pr-submit: <stdin>:$(wc -l < dup.jsonl):.*a/job_001"

	fake_state state.json
	[ "$(jq '[.posts[]] | length' state.json)" = 0 ]
	[ ! -e state/journal.jsonl ] || [ ! -s state/journal.jsonl ]

	run --separate-stderr pr-submit --help
	assert_success
	assert_line --index 0 --partial 'usage: pr-submit'
	assert_output --partial -- '--wait-server'
	run --separate-stderr pr-submit --frobnicate < jobs.jsonl
	assert_failure 2
	[ -z "$output" ]
	assert_stderr_has 'usage: pr-submit'
	run --separate-stderr pr-submit --server ftp://x < jobs.jsonl
	assert_failure 2
	[ -z "$output" ]
	assert_stderr_has 'ftp://x'
}

@test "the state lock: a second run on the same state exits 3; after kill -9 the next run takes over" {
	start_fast_comfy --step-time 0.3
	submit_videos 30
	submit_bg first
	first_PID=$SUBMIT_PID
	wait_for 'journal_has submit' 15
	submit
	assert_failure 3
	[ -z "$output" ]
	# the message names the holder (its wording is checked last)
	assert_stderr_has "$first_PID"
	second_stderr=$stderr
	kill -0 "$first_PID"
	kill -9 "$first_PID"
	rc=0
	submit_wait "$first_PID" || rc=$?
	[ "$rc" = 137 ]
	submit
	assert_success
	refute_stderr "pid $first_PID"
	save_results results.jsonl
	[ "$(wc -l < results.jsonl)" = "$(wc -l < jobs.jsonl)" ]
	jq -e -s 'all(.status == "success")' results.jsonl
	check_files results.jsonl
	# one prompt executed per job: the run that took over re-attached to
	# what the killed one had queued instead of running it again
	fake_state state.json
	jq -e --slurpfile r results.jsonl '(.runs | length) == ($r | length)
	    and (.runs | map(.prompt_id) | sort) == ($r | map(.prompt_id) | sort)' state.json
	stderr=$second_stderr
	assert_stderr_has "held by pid $first_PID"
}

@test "--events: submitted, started, node, progress, done for every job; progress throttled" {
	start_fast_comfy
	submit_videos 50
	submit --events events.jsonl
	assert_success
	[ "$(jq -r .ev events.jsonl | sort -u | paste -sd' ')" = "done node progress started submitted" ]
	# every job has each kind, in order submitted < started < done
	jq -e -s --slurpfile j jobs.jsonl '
	  [$j[].id as $id | map(select(.job == $id)) as $e
	   | ($e | map(.ev)) as $evs
	   | (["submitted", "started", "node", "progress", "done"] | all(. as $k | $evs | index($k) != null))
	     and ($evs | index("submitted")) < ($evs | index("started"))
	     and ($evs | rindex("done")) == ($evs | length) - 1
	     and ($e | all(.video == "a" and (.prompt_id | length) > 0 and (.t | type) == "number"))]
	  | length == 4 and all' events.jsonl

	# a long sampler (40 steps of 0.03 s): at most ~5 progress events a second
	post /fake/config '{"step_time": 0.03}' > /dev/null
	head -1 jobs.jsonl | jq -c '.id = "a/long" | .collect[0].path = "latents/a/long.latent"
	    | .workflow["54"].inputs |= (.steps = 40 | .end_step = 40 | .seed = 5)' > long.jsonl
	JOBS=long.jsonl submit --state state2 --events long-events.jsonl
	assert_success
	fake_state state.json
	# the stand-in sent one progress message per step
	jq -e '.runs[-1].status == "success"' state.json
	jq -e -s 'map(select(.ev == "progress")) as $p
	    | ($p | length) >= 2 and ($p[-1].value == 40 and $p[-1].max == 40)
	    and ($p | length) <= 5 * ($p[-1].t - $p[0].t) + 2
	    and ($p | length) < 40' long-events.jsonl
	# no two progress events of a job closer than 0.2 s, but the last
	jq -e -s '[.[] | select(.ev == "progress")] | [range(1; length - 1) as $i | .[$i].t - .[$i - 1].t] | all(. >= 0.2)' long-events.jsonl
}

@test "no server: exit 3 after --wait-server, every record says why" {
	submit_videos 50
	# shellcheck disable=SC2034 # read by submit
	COMFY=http://127.0.0.1:1
	SECONDS=0
	submit --wait-server 1
	assert_failure 3
	[ "$SECONDS" -le 5 ]
	save_results results.jsonl
	[ "$(wc -l < results.jsonl)" = 4 ]
	jq -e -s 'all((.status == "failed" or .status == "skipped") and (.error.message | test("no server")))' results.jsonl
	assert_stderr_has '127.0.0.1:1'
}

@test "a server that comes up late: pr-submit waits for it and runs" {
	submit_videos 30
	port=$(free_port)
	# shellcheck disable=SC2034 # read by submit_bg: not up yet
	COMFY=http://127.0.0.1:$port
	submit_bg late --wait-server 30
	late_PID=$SUBMIT_PID
	sleep 1.5 # the server comes later than pr-submit's first tries
	kill -0 "$late_PID"
	[ ! -s "$BATS_TEST_TMPDIR/late.out" ]
	start_comfy_on "$port"
	rc=0
	wait_for "! kill -0 $late_PID 2>/dev/null" 30
	submit_wait "$late_PID" || rc=$?
	[ "$rc" = 0 ]
	[ "$(wc -l < late.out)" = 4 ]
	jq -e -s 'all(.status == "success" and .cached == false)' late.out
	fake_state state.json
	[ "$(jq '.runs | length' state.json)" = 4 ]
}
