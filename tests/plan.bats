#!/usr/bin/env bats
# pr-plan: prompt records in, job records out (docs/FORMATS.md "Planning").

load helper
bats_require_minimum_version 1.5.0

# rec VIDEO TOTAL [EXTRA]: one prompt record; EXTRA is more JSON members.
rec() {
	printf '{"video":"%s","input_video":"in.mp4","total_frames":%s,"positive":"pos","negative":"neg","source":"pf/%s.txt"%s}\n' \
	    "$1" "$2" "$1" "${3:+,$3}"
}

# chunks FILE: one line per LOW job, "start:frames:keep_from:keep_to".
chunks() {
	jq -r 'select(.pass == "low") | "\(.start):\(.frames):\(.keep[0]):\(.keep[1])"' "$1" | paste -sd' ' -
}

# fails ARGS... < input: expects exit 2, nothing on stdout, and sets
# $stderr for the caller's message checks.
fails() {
	run --separate-stderr pr-plan "$@"
	[ "$status" -eq 2 ] || { echo "status $status, stderr: $stderr"; return 1; }
	[ -z "$output" ] || { echo "stdout not empty: $output"; return 1; }
}

@test "the plan document's table: --no-align --chunk 100, T=500" {
	rec a 500 | pr-plan --no-align --chunk 100 > jobs
	run chunks jobs
	assert_output "0:100:0:97 100:100:0:97 200:100:0:97 300:100:0:97 400:100:0:97"
	run jq -s '[.[] | select(.pass == "low") | .keep[1] - .keep[0]] | add' jobs
	assert_output 485
	run jq -r '[.n, .pass] | join(" ")' jobs
	assert_output "$(printf '%s\n' '1 high' '2 low' '3 high' '4 low' '5 high' '6 low' '7 high' '8 low' '9 high' '10 low')"
	# From 100 sent frames Wan renders 97: the reference is 90, clamped to none.
	run jq -r 'select(.pass == "low") | .vars.reference_frame // "none"' jobs
	assert_output "$(printf '%s\n' 90 90 90 90 none)"
}

@test "aligned T=500: starts 97 apart, a last chunk of 17 at 483 keeping its last 15" {
	rec a 500 | pr-plan > jobs
	run chunks jobs
	assert_output "0:97:0:97 97:97:0:97 194:97:0:97 291:97:0:97 388:97:0:97 483:17:2:17"
	run jq -s '[.[] | select(.pass == "low") | .keep[1] - .keep[0]] | add' jobs
	assert_output 500
}

@test "aligned T=10: 9 frames at 0 and 1 frame at 9" {
	rec a 10 | pr-plan > jobs
	run chunks jobs
	assert_output "0:9:0:9 9:1:0:1"
}

@test "aligned T=101: 97 at 0, then 5 at 96 keeping its last 4" {
	rec a 101 | pr-plan > jobs
	run chunks jobs
	assert_output "0:97:0:97 96:5:1:5"
}

@test "edge cases: T = 1, 5, 11, below the chunk, a multiple of it, chunk + 1" {
	for case in "1 100 0:1:0:1" "5 100 0:5:0:5" "11 100 0:9:0:9 6:5:3:5" \
	    "50 100 0:49:0:49 49:1:0:1" "97 100 0:97:0:97" \
	    "200 100 0:97:0:97 97:97:0:97 191:9:3:9" \
	    "101 100 0:97:0:97 96:5:1:5" "22 21 0:21:0:21 21:1:0:1" \
	    "100 161 0:97:0:97 95:5:2:5"; do
		set -- $case
		rec a "$1" | pr-plan --chunk "$2" > jobs
		shift 2
		run chunks jobs
		assert_output "$*"
	done
	# A single chunk has no successor: no reference to make.
	rec a 1 | pr-plan > jobs
	run jq -c 'select(.pass == "low") | .vars | [has("reference_out"), has("reference_frame"), has("reference")]' jobs
	assert_output '[false,false,false]'
}

@test "chunk sizes 21, 41, 161 with T=500" {
	rec a 500 | pr-plan --chunk 21 > jobs
	run jq -s -c '[.[] | select(.pass == "low")] | [length, .[-2].start, .[-1].start, .[-1].frames, .[-1].keep]' jobs
	assert_output '[24,462,483,17,[0,17]]'
	rec a 500 | pr-plan --chunk 41 > jobs
	run jq -s -c '[.[] | select(.pass == "low")] | [length, .[-2].start, .[-1].start, .[-1].frames, .[-1].keep]' jobs
	assert_output '[13,451,491,9,[1,9]]'
	rec a 500 | pr-plan --chunk 161 > jobs
	run chunks jobs
	assert_output "0:161:0:161 161:161:0:161 322:161:0:161 483:17:0:17"
}

# The aligned plan's invariants, checked for every video of a jobs file.
# Prints one line per violation; C and K are the options used.
check_aligned() {
	jq -r -s --argjson C "$1" --argjson K "$2" '
	def pad3: tostring | if length < 3 then ("00" + .)[-3:] else . end;
	def wan: 4 * (((. - 1) / 4) | floor) + 1;
	def job($v; $n): "\($v)/job_\($n | pad3)";
	group_by(.video)[] | . as $jobs | .[0].video as $v | .[0].vars.total_frames as $T
	| ([$C, $T] | min | wan) as $M
	# fewest chunks of M frames, each K before the previous end, reaching T
	| ([1, $M] | until(.[1] >= $T; [.[0] + 1, .[1] + $M - $K]) | .[0]) as $N
	| [.[] | select(.kind == "render")] as $r
	| [$r[] | select(.pass == "low")] as $low
	| (if ($r | length) != 2 * $N then "\($v): \($r | length) render jobs, want \(2 * $N)" else empty end),
	  (if ($jobs | length) != ($r | length) then "\($v): combine jobs without --combine" else empty end),
	  ($r | to_entries[] | .key as $i | .value as $j | ($i / 2 | floor) as $k
	   | (if $j.n != $i + 1 or $j.id != job($v; $i + 1) or $j.vars.id != $j.id
	         or $j.vars.n3 != ($j.n | pad3) then "\($j.id): numbering" else empty end),
	     (if $j.pass != (if $i % 2 == 0 then "high" else "low" end) or $j.chunk != $k
	         then "\($j.id): pass/chunk" else empty end),
	     (if ($j.frames - 1) % 4 != 0 or $j.frames > $C or $j.frames < 1
	         then "\($j.id): LENGTH \($j.frames)" else empty end),
	     (if $j.start < 0 or $j.start + $j.frames > $T then "\($j.id): reads outside [0,T)" else empty end),
	     (if $j.pass == "low" and ($j.start != $r[$i - 1].start or $j.frames != $r[$i - 1].frames)
	         then "\($j.id): differs from its HIGH job" else empty end),
	     (if $j.deps != (if $j.pass == "high" then (if $k == 0 then [] else [job($v; $i)] end)
	                     else [job($v; $i)] + (if $k == 0 then [] else [job($v; $i - 1)] end) end)
	         then "\($j.id): deps \($j.deps)" else empty end),
	     (if $j.vars.reference != (if $k == 0 then null else "references/\($v)/job_\($i - ($i % 2) | pad3)_ref.png" end)
	         then "\($j.id): reference \($j.vars.reference)" else empty end),
	     (if $j.vars.latent != "latents/\($v)/job_\($i + 1 - ($i % 2) | pad3).latent"
	         then "\($j.id): latent" else empty end)),
	  ($low | to_entries[] | .key as $k | .value as $j
	   | (if $j.keep[1] != $j.frames or $j.keep[0] < 0 or $j.keep[0] > $j.keep[1]
	         then "\($j.id): keep \($j.keep)" else empty end),
	     (if $k == 0 and ($j.start != 0 or $j.keep[0] != 0) then "\($j.id): first keep" else empty end),
	     (if $k > 0 and ($j.start + $j.keep[0] != $low[$k - 1].start + $low[$k - 1].keep[1]
	                     or $j.keep[0] < $K)
	         then "\($j.id): kept range does not continue the previous one" else empty end),
	     (if $j.vars.keep_from != $j.keep[0] or $j.vars.keep_to != $j.keep[1]
	         or $j.vars.segment != "videos/\($v)/job_\($j.n | pad3).mp4"
	         then "\($j.id): keep/segment vars" else empty end),
	     (if $k < $N - 1 then
	        (if $j.vars.reference_out != "references/\($v)/job_\($j.n | pad3)_ref.png"
	            or $j.vars.reference_frame != ([if $j.frames <= 10 then 0 else $j.frames - 10 end, $j.frames - 1] | min)
	         then "\($j.id): reference_out/frame" else empty end)
	      elif ($j.vars | has("reference_out") or has("reference_frame"))
	         then "\($j.id): last chunk makes a reference" else empty end)),
	  (if ($low | map(.keep[1] - .keep[0]) | add) != $T then "\($v): kept frames do not sum to T" else empty end),
	  (if ($low[-1] | .start + .keep[1]) != $T then "\($v): does not end at T" else empty end)
	' "$3"
}

@test "aligned plans keep their invariants for T in 1 and 5..300, many chunks and overlaps" {
	for C in 5 21 41 100 161; do
		for K in 0 10; do
			[ "$K" -lt "$C" ] || continue
			: > prompts
			for T in 1 $(seq 5 300); do
				# Chunks no longer than the overlap are refused (tested below).
				M=$(( (T < C ? T : C) ))
				M=$(( 4 * ((M - 1) / 4) + 1 ))
				[ "$K" -lt "$M" ] || continue
				rec "t$T" "$T" >> prompts
			done
			pr-plan --chunk "$C" --overlap "$K" < prompts > jobs
			[ "$(jq -s 'map(.video) | unique | length' jobs)" -eq "$(wc -l < prompts)" ]
			run check_aligned "$C" "$K" jobs
			assert_success
			assert_output ''
		done
	done
}

@test "the invariant check catches a wrong plan" {
	rec t10 10 | pr-plan > jobs
	run check_aligned 100 0 jobs
	assert_output ''
	# Shift the last chunk by one frame: the check must notice.
	jq -c 'if .n == 4 then .start = 8 else . end' jobs > bad
	run check_aligned 100 0 bad
	assert_output --partial 't10/job_004: differs from its HIGH job'
	assert_output --partial 't10/job_004: kept range does not continue the previous one'
}

@test "--no-align plans read no frame outside [0,T) and follow the plan document's rule" {
	for C in 5 21 41 100 161; do
		for K in 0 10; do
			[ "$K" -lt "$C" ] || continue
			: > prompts
			for T in 1 2 3 4 $(seq 5 7 300); do rec "t$T" "$T" >> prompts; done
			pr-plan --no-align --chunk "$C" --overlap "$K" < prompts > jobs
			run jq -r -s --argjson C "$C" --argjson K "$K" '
			def wan: 4 * (((. - 1) / 4) | floor) + 1;
			group_by(.video)[] | .[0].vars.total_frames as $T
			| [.[] | select(.pass == "low")] as $low
			| ((if $T <= $C then 1 else 1 + ((($T - $C) / ($C - $K)) | ceil) end) as $N
			   | if ($low | length) != $N then "\(.[0].video): \($low | length) chunks, want \($N)" else empty end),
			  ($low | to_entries[] | .key as $k | .value as $j
			   | ($j.frames | wan) as $rendered
			   | (if $j.start != (if $k == 0 then 0 else $low[$k - 1].start + $low[$k - 1].frames - $K end)
			         or $j.frames != ([$C, $T - $j.start] | min) or $j.start + $j.frames > $T
			      then "\($j.id): start/frames" else empty end),
			     (if $j.keep != [if $k == 0 then 0 else
			             ([0, $low[$k - 1].start + ($low[$k - 1].frames | wan) - $j.start, $rendered] | sort | .[1]) end,
			           $rendered]
			      then "\($j.id): keep \($j.keep)" else empty end)),
			  (if ($low[-1] | .start + .frames) != $T then "\(.[0].video): does not reach T" else empty end)
			' jobs
			assert_success
			assert_output ''
		done
	done
}

@test "T = 2, 3, 4 are refused aligned and planned with --no-align" {
	for T in 2 3 4; do
		rec clipA "$T" > in
		fails < in
		assert_equal "$stderr" "pr-plan: <stdin>:1: video \"clipA\": $T frames cannot be made of 4k+1-frame chunks (1, 5, 9, ...); use --no-align"
		pr-plan --no-align < in > jobs
		run chunks jobs
		assert_output "0:$T:0:1"
	done
}

@test "an overlap as long as a short video's chunks is refused, naming the video" {
	{ rec ok 500; rec short 9; } > in
	fails --overlap 10 < in
	assert_equal "$stderr" 'pr-plan: <stdin>:2: video "short": --overlap 10 must be smaller than its chunks of 9 frames'
	pr-plan --no-align --overlap 8 < in > jobs
	[ "$(jq -s 'map(select(.video == "short" and .pass == "low")) | length' jobs)" -eq 1 ]
}

@test "--overlap, aligned: chunks start K before the previous one ends, keep drops the overlap" {
	rec a 500 | pr-plan --overlap 10 > jobs
	run chunks jobs
	assert_output "0:97:0:97 87:97:10:97 174:97:10:97 261:97:10:97 348:97:10:97 435:65:10:65"
	run jq -s '[.[] | select(.pass == "low") | .keep[1] - .keep[0]] | add' jobs
	assert_output 500
}

@test "--overlap, --no-align: starts K before the previous end, keep drops what was rendered already" {
	rec a 500 | pr-plan --no-align --overlap 10 > jobs
	run chunks jobs
	assert_output "0:100:0:97 90:100:7:97 180:100:7:97 270:100:7:97 360:100:7:97 450:50:7:49"
	run jq -s '[.[] | select(.pass == "low") | .keep[1] - .keep[0]] | add' jobs
	assert_output 499
}

@test "--ref-offset moves the reference frame, clamped to the rendered frames" {
	rec a 500 | pr-plan --ref-offset 20 > jobs
	run jq -r 'select(.pass == "low") | .vars.reference_frame // "none"' jobs
	assert_output "$(printf '%s\n' 77 77 77 77 77 none)"
	rec a 500 | pr-plan --ref-offset 0 > jobs
	run jq -r 'select(.pass == "low") | .vars.reference_frame // "none"' jobs
	assert_output "$(printf '%s\n' 96 96 96 96 96 none)"
	rec a 500 | pr-plan --ref-offset 200 > jobs
	run jq -r 'select(.pass == "low") | .vars.reference_frame // "none"' jobs
	assert_output "$(printf '%s\n' 0 0 0 0 0 none)"
	# --no-align sends 100 but Wan renders 97: frame 99 does not exist.
	rec a 500 | pr-plan --no-align --ref-offset 1 > jobs
	run jq -r 'select(.pass == "low") | .vars.reference_frame // "none"' jobs
	assert_output "$(printf '%s\n' 96 96 96 96 none)"
}

@test "a whole plan, field by field" {
	rec a 10 | pr-plan --combine progressive --seed 7 > jobs
	run cat jobs
	assert_line -n 0 '{"id":"a/job_001","video":"a","kind":"render","n":1,"pass":"high","chunk":0,"start":0,"frames":9,"model":"Wan2.2_T2V_High_Noise_14B_VACE-Q8_0.gguf","deps":[],"vars":{"video":"a","id":"a/job_001","n":1,"n3":"001","pass":"high","chunk":0,"start":0,"frames":9,"model":"Wan2.2_T2V_High_Noise_14B_VACE-Q8_0.gguf","lora":"wan2.2_high_t2v.safetensors","positive":"pos","negative":"neg","input_video":"in.mp4","total_frames":10,"source":"pf/a.txt","seed":7,"latent":"latents/a/job_001.latent"}}'
	assert_line -n 1 '{"id":"a/job_002","video":"a","kind":"render","n":2,"pass":"low","chunk":0,"start":0,"frames":9,"keep":[0,9],"model":"Wan2.2_T2V_Low_Noise_14B_VACE-Q8_0.gguf","deps":["a/job_001"],"vars":{"video":"a","id":"a/job_002","n":2,"n3":"002","pass":"low","chunk":0,"start":0,"frames":9,"model":"Wan2.2_T2V_Low_Noise_14B_VACE-Q8_0.gguf","lora":"wan2.2_low_t2v.safetensors","positive":"pos","negative":"neg","input_video":"in.mp4","total_frames":10,"source":"pf/a.txt","seed":7,"latent":"latents/a/job_001.latent","segment":"videos/a/job_002.mp4","keep_from":0,"keep_to":9,"reference_out":"references/a/job_002_ref.png","reference_frame":0}}'
	assert_line -n 2 '{"id":"a/job_003","video":"a","kind":"render","n":3,"pass":"high","chunk":1,"start":9,"frames":1,"model":"Wan2.2_T2V_High_Noise_14B_VACE-Q8_0.gguf","deps":["a/job_002"],"vars":{"video":"a","id":"a/job_003","n":3,"n3":"003","pass":"high","chunk":1,"start":9,"frames":1,"model":"Wan2.2_T2V_High_Noise_14B_VACE-Q8_0.gguf","lora":"wan2.2_high_t2v.safetensors","positive":"pos","negative":"neg","input_video":"in.mp4","total_frames":10,"source":"pf/a.txt","seed":7,"reference":"references/a/job_002_ref.png","latent":"latents/a/job_003.latent"}}'
	assert_line -n 3 '{"id":"a/job_004","video":"a","kind":"render","n":4,"pass":"low","chunk":1,"start":9,"frames":1,"keep":[0,1],"model":"Wan2.2_T2V_Low_Noise_14B_VACE-Q8_0.gguf","deps":["a/job_003","a/job_002"],"vars":{"video":"a","id":"a/job_004","n":4,"n3":"004","pass":"low","chunk":1,"start":9,"frames":1,"model":"Wan2.2_T2V_Low_Noise_14B_VACE-Q8_0.gguf","lora":"wan2.2_low_t2v.safetensors","positive":"pos","negative":"neg","input_video":"in.mp4","total_frames":10,"source":"pf/a.txt","seed":7,"reference":"references/a/job_002_ref.png","latent":"latents/a/job_003.latent","segment":"videos/a/job_004.mp4","keep_from":0,"keep_to":1}}'
	assert_line -n 4 '{"id":"a/combine_001","video":"a","kind":"combine","n":1,"mode":"progressive","deps":["a/job_002"],"vars":{"video":"a","id":"a/combine_001","n":1,"n3":"001","segment":"videos/a/job_002.mp4","keep_from":0,"keep_frames":9,"output":"combined/a_combined_001.mp4","output_role":"combined","seed":7}}'
	assert_line -n 5 '{"id":"a/combine_002","video":"a","kind":"combine","n":2,"mode":"progressive","deps":["a/job_004","a/combine_001"],"vars":{"video":"a","id":"a/combine_002","n":2,"n3":"002","segment":"videos/a/job_004.mp4","keep_from":0,"keep_frames":1,"output":"combined/a_combined_002.mp4","output_role":"combined","previous":"combined/a_combined_001.mp4","seed":7}}'
	[ "${#lines[@]}" -eq 6 ]
}

@test "--combine segments: one combine job per LOW segment, after the render jobs" {
	rec a 500 | pr-plan --combine segments > jobs
	run jq -r '.id' jobs
	[ "${lines[11]}" = a/job_012 ]
	[ "${lines[12]}" = a/combine_001 ]
	[ "${lines[17]}" = a/combine_006 ]
	[ "${#lines[@]}" -eq 18 ]
	run jq -c 'select(.kind == "combine") | [.n, .mode, .deps, .vars.segment, .vars.keep_from, .vars.keep_frames, .vars.output, .vars.output_role, (.vars | has("previous"))]' jobs
	assert_line -n 0 '[1,"segments",["a/job_002"],"videos/a/job_002.mp4",0,97,"combined/a_combined_001.mp4","segment",false]'
	assert_line -n 1 '[2,"segments",["a/job_004"],"videos/a/job_004.mp4",0,97,"combined/a_combined_002.mp4","segment",false]'
	assert_line -n 5 '[6,"segments",["a/job_012"],"videos/a/job_012.mp4",2,15,"combined/a_combined_006.mp4","segment",false]'
	run jq -c 'select(.kind == "combine") | keys_unsorted' jobs
	assert_line -n 0 '["id","video","kind","n","mode","deps","vars"]'
}

@test "--combine progressive: each combine appends one LOW segment to the previous combine" {
	rec a 500 | pr-plan --combine progressive > jobs
	run jq -c 'select(.kind == "combine") | [.id, .mode, .deps, .vars.segment, .vars.keep_from, .vars.keep_frames, .vars.output, .vars.output_role, .vars.previous]' jobs
	assert_line -n 0 '["a/combine_001","progressive",["a/job_002"],"videos/a/job_002.mp4",0,97,"combined/a_combined_001.mp4","combined",null]'
	assert_line -n 1 '["a/combine_002","progressive",["a/job_004","a/combine_001"],"videos/a/job_004.mp4",0,97,"combined/a_combined_002.mp4","combined","combined/a_combined_001.mp4"]'
	assert_line -n 5 '["a/combine_006","progressive",["a/job_012","a/combine_005"],"videos/a/job_012.mp4",2,15,"combined/a_combined_006.mp4","combined","combined/a_combined_005.mp4"]'
	[ "${#lines[@]}" -eq 6 ]
}

@test "--combine none (the default) makes no combine jobs; videos come out in input order" {
	{ rec b 20; rec a 10; } | pr-plan --combine none > jobs
	run jq -r '.id' jobs
	assert_output "$(printf '%s\n' b/job_001 b/job_002 b/job_003 b/job_004 a/job_001 a/job_002 a/job_003 a/job_004)"
	{ rec b 20; rec a 10; } | pr-plan --combine segments > jobs
	run jq -r 'select(.kind == "combine") | .id' jobs
	assert_output "$(printf '%s\n' b/combine_001 b/combine_002 a/combine_001 a/combine_002)"
	run jq -r '.video' jobs
	assert_line -n 5 b
	assert_line -n 6 a
}

@test "past 999 jobs the number gets wider" {
	rec a 2505 | pr-plan --chunk 5 > jobs
	run jq -r 'select(.n >= 999) | [.id, .vars.n3, .vars.reference // "-", .vars.latent] | join(" ")' jobs
	assert_output "$(printf '%s\n' \
	    'a/job_999 999 references/a/job_998_ref.png latents/a/job_999.latent' \
	    'a/job_1000 1000 references/a/job_998_ref.png latents/a/job_999.latent' \
	    'a/job_1001 1001 references/a/job_1000_ref.png latents/a/job_1001.latent' \
	    'a/job_1002 1002 references/a/job_1000_ref.png latents/a/job_1001.latent')"
}

@test "--seed N sets every job's seed, all 20 digits" {
	{ rec a 200; rec b 10; } | pr-plan --seed 18446744073709551615 --combine progressive > jobs
	[ "$(wc -l < jobs)" -eq 15 ]
	[ "$(grep -c '"vars":{.*"seed":18446744073709551615[,}]' jobs)" -eq 15 ]
	rec a 10 | pr-plan --seed 0 > jobs
	[ "$(grep -c '"seed":0[,}]' jobs)" -eq 4 ]
}

@test "--seed random: one seed per video, below 2^53, on all of its jobs" {
	{ rec a 200; rec b 200; rec c 10; } | pr-plan --seed random --combine segments > jobs
	run jq -s -c 'group_by(.video) | map(map(.vars.seed) | unique) | map(length)' jobs
	assert_output '[1,1,1]'
	run jq -s -c '[.[].vars.seed | select(type == "number" and . >= 0 and . < 9007199254740992 and . == floor)] | length' jobs
	assert_output "$(wc -l < jobs)"
	# Three 53-bit draws agree by chance with probability about 2^-52.
	run jq -s 'map(.vars.seed) | unique | length' jobs
	assert_output 3
}

@test "no --seed: no seed var" {
	rec a 200 | pr-plan --combine progressive > jobs
	run jq -s '[.[] | select(.vars | has("seed"))] | length' jobs
	assert_output 0
}

@test "<video>.png and the source video beside the prompt file are found, as absolute paths" {
	mkdir pf
	touch pf/a.txt pf/a.png pf/in.mp4
	dir=$(cd pf && pwd -P)
	rec a 200 | pr-plan --combine segments > jobs
	run jq -r 'select(.kind == "render") | "\(.id) \(.vars.reference) \(.vars.input_video_path)"' jobs
	assert_output "$(printf '%s\n' \
	    "a/job_001 $dir/a.png $dir/in.mp4" "a/job_002 $dir/a.png $dir/in.mp4" \
	    "a/job_003 references/a/job_002_ref.png $dir/in.mp4" \
	    "a/job_004 references/a/job_002_ref.png $dir/in.mp4" \
	    "a/job_005 references/a/job_004_ref.png $dir/in.mp4" \
	    "a/job_006 references/a/job_004_ref.png $dir/in.mp4")"
	run jq -s '[.[] | select(.kind == "combine") | .vars | select(has("input_video_path") or has("reference"))] | length' jobs
	assert_output 0
	# input_video relative to the prompt file's directory, as written.
	mkdir pf/src
	touch pf/src/clip.mp4
	printf '{"video":"a","input_video":"src/clip.mp4","total_frames":5,"positive":"","negative":"","source":"pf/a.txt"}\n' | pr-plan > jobs
	run jq -r '.vars.input_video_path' jobs
	assert_output "$(printf '%s\n' "$dir/src/clip.mp4" "$dir/src/clip.mp4")"
	# An absolute input_video is taken as it is.
	printf '{"video":"a","input_video":"%s","total_frames":5,"positive":"","negative":""}\n' "$PWD/pf/in.mp4" | pr-plan > jobs
	run jq -r '.vars.input_video_path' jobs
	assert_output "$(printf '%s\n' "$dir/in.mp4" "$dir/in.mp4")"
}

@test "no <video>.png or local source video: those vars are absent" {
	mkdir pf
	# No prompt file at all: nothing is looked up beside it.
	touch a.png in.mp4
	rec a 10 | pr-plan > jobs
	run jq -s '[.[].vars | select(has("reference") and .chunk == 0 or has("input_video_path"))] | length' jobs
	assert_output 0
	# The prompt file exists but nothing lies beside it; a directory is no image.
	touch pf/a.txt
	mkdir pf/a.png
	rec a 10 | pr-plan > jobs
	run jq -s '[.[].vars | select(has("reference") and .chunk == 0 or has("input_video_path"))] | length' jobs
	assert_output 0
	# No source field at all.
	printf '{"video":"a","input_video":"in.mp4","total_frames":5,"positive":"","negative":""}\n' | pr-plan > jobs
	run jq -s -c 'map(.vars | [has("reference"), has("input_video_path"), has("source")])' jobs
	assert_output '[[false,false,false],[false,false,false]]'
}

@test "unknown prompt fields are copied into every job's vars, numbers exact" {
	rec a 10 '"style":{"lut":["warm",2]},"cfg":18446744073709551616' | pr-plan --combine progressive > jobs
	[ "$(grep -c '"style":{"lut":\["warm",2\]},"cfg":18446744073709551616}}$' jobs)" -eq 6 ]
}

@test "a prompt field that pr-plan sets itself is refused, not overwritten" {
	rec a 10 '"seed":5' > in
	fails < in
	assert_equal "$stderr" 'pr-plan: <stdin>:1: field "seed" is set by pr-plan and cannot be passed through to the jobs'
	rec a 10 '"kind":"x"' > in
	fails < in
	assert_equal "$stderr" 'pr-plan: <stdin>:1: field "kind" is set by pr-plan and cannot be passed through to the jobs'
}

@test "bad records: exit 2, the line named, nothing on stdout" {
	good=$(rec ok 10)
	check() { # expected-message, then the bad line (after one good line)
		printf '%s\n%s\n' "$good" "$2" > in
		fails < in
		assert_equal "$stderr" "pr-plan: $1"
	}
	check '<stdin>:2: field "total_frames": expected an integer from 1 to 100000, found "abc"' \
	    '{"video":"a","input_video":"x","total_frames":"abc","positive":"","negative":""}'
	check '<stdin>:2: field "total_frames": expected an integer from 1 to 100000, found 0' \
	    '{"video":"a","input_video":"x","total_frames":0,"positive":"","negative":""}'
	check '<stdin>:2: field "total_frames": expected an integer from 1 to 100000, found 100001' \
	    '{"video":"a","input_video":"x","total_frames":100001,"positive":"","negative":""}'
	check '<stdin>:2: field "total_frames": expected an integer from 1 to 100000, found 1.5' \
	    '{"video":"a","input_video":"x","total_frames":1.5,"positive":"","negative":""}'
	check '<stdin>:2: field "total_frames": expected an integer from 1 to 100000, found -3' \
	    '{"video":"a","input_video":"x","total_frames":-3,"positive":"","negative":""}'
	check '<stdin>:2: field "total_frames": expected an integer from 1 to 100000, found 9999999999999999999999999999999999999999...' \
	    '{"video":"a","input_video":"x","total_frames":999999999999999999999999999999999999999999,"positive":"","negative":""}'
	check '<stdin>:2: field "total_frames" is missing (expected an integer from 1 to 100000)' \
	    '{"video":"a","input_video":"x","positive":"","negative":""}'
	check '<stdin>:2: field "video" is missing (expected a string)' \
	    '{"input_video":"x","total_frames":5,"positive":"","negative":""}'
	check '<stdin>:2: field "video": expected a string, found 5' \
	    '{"video":5,"input_video":"x","total_frames":5,"positive":"","negative":""}'
	check "<stdin>:2: field \"video\": \"a b\" is not a valid video name: it contains ' '" \
	    '{"video":"a b","input_video":"x","total_frames":5,"positive":"","negative":""}'
	check "<stdin>:2: field \"video\": \".a\" is not a valid video name: it starts with '.'" \
	    '{"video":".a","input_video":"x","total_frames":5,"positive":"","negative":""}'
	check '<stdin>:2: field "video": "../../etc" is not a valid video name: it starts with '"'.'" \
	    '{"video":"../../etc","input_video":"x","total_frames":5,"positive":"","negative":""}'
	check '<stdin>:2: field "positive" is missing (expected a string)' \
	    '{"video":"a","input_video":"x","total_frames":5,"negative":""}'
	check '<stdin>:2: field "negative": expected a string, found an array' \
	    '{"video":"a","input_video":"x","total_frames":5,"positive":"","negative":["n"]}'
	check '<stdin>:2: field "input_video": expected a string, found null' \
	    '{"video":"a","input_video":null,"total_frames":5,"positive":"","negative":""}'
	check '<stdin>:2: field "source": expected a string, found an object' \
	    '{"video":"a","input_video":"x","total_frames":5,"positive":"","negative":"","source":{}}'
	check '<stdin>:2: field "input_video": expected a string, found true' \
	    '{"video":"a","input_video":true,"total_frames":5,"positive":"","negative":""}'
	check '<stdin>:2: expected a JSON object, found array' '[1,2]'
	printf '%s\n{"video":\n' "$good" > in
	fails < in
	[[ $stderr =~ ^pr-plan:\ \<stdin\>:2:\ column\ [0-9]+:\ invalid\ JSON ]]
}

@test "a long wrong value is cut in the message" {
	printf '{"video":"a","input_video":"x","total_frames":"%s","positive":"","negative":""}\n' \
	    "$(printf 'é%.0s' $(seq 30))" > in
	fails < in
	assert_equal "$stderr" "pr-plan: <stdin>:1: field \"total_frames\": expected an integer from 1 to 100000, found \"$(printf 'é%.0s' $(seq 20))\"..."
}

@test "blank lines count in the line numbers" {
	printf '\n%s\n\n{"video":"a"}\n' "$(rec ok 10)" > in
	fails < in
	assert_equal "$stderr" 'pr-plan: <stdin>:4: field "total_frames" is missing (expected an integer from 1 to 100000)'
}

@test "a video planned twice is refused, naming both lines" {
	{ rec a 10; rec b 10; rec a 20; } > in
	fails < in
	assert_equal "$stderr" 'pr-plan: <stdin>:3: video "a" is planned twice: lines 1 and 3'
}

@test "--max-frames sets the largest total_frames" {
	rec a 100000 | pr-plan > jobs
	[ "$(jq -s 'map(select(.pass == "low")) | .[-1] | .start + .frames' jobs)" -eq 100000 ]
	rec a 51 > in
	fails --max-frames 50 < in
	assert_equal "$stderr" 'pr-plan: <stdin>:1: field "total_frames": expected an integer from 1 to 50, found 51'
	rec a 100001 | pr-plan --max-frames 200000 > jobs
	[ -s jobs ]
}

@test "models and LoRAs come from the options" {
	rec a 10 | pr-plan --high-model H.gguf --low-model L.gguf --high-lora h.st --low-lora l.st > jobs
	run jq -r '[.pass, .model, .vars.model, .vars.lora] | join(" ")' jobs
	assert_output "$(printf '%s\n' 'high H.gguf H.gguf h.st' 'low L.gguf L.gguf l.st' 'high H.gguf H.gguf h.st' 'low L.gguf L.gguf l.st')"
}

@test "no input: no jobs" {
	run --separate-stderr pr-plan < /dev/null
	assert_success
	assert_output ''
}

@test "--help and --version" {
	run --separate-stderr pr-plan --help
	assert_success
	assert_line -n 0 --partial 'usage: pr-plan [--chunk N] [--no-align] [--overlap K]'
	assert_output --partial '--combine MODE'
	[ -z "$stderr" ]
	run --separate-stderr pr-plan --version
	assert_success
	assert_output --regexp '^pr-plan \(prompt-runner\) [0-9]+\.[0-9]+\.[0-9]+$'
}

@test "bad options: exit 2 with a clear message, nothing on stdout" {
	bad() { # expected first line of stderr, then the options
		local want=$1
		shift
		rec a 10 > in
		fails "$@" < in
		[ "${stderr_lines[0]}" = "pr-plan: $want" ] || { echo "got: ${stderr_lines[0]}"; return 1; }
		[[ $stderr == *"Try 'pr-plan --help'"* ]]
	}
	bad '--chunk "0": expected a whole number from 1 to 2305843009213693951' --chunk 0
	bad '--chunk "abc": expected a whole number from 1 to 2305843009213693951' --chunk abc
	bad '--chunk "-5": expected a whole number from 1 to 2305843009213693951' --chunk -5
	bad '--overlap 100 must be smaller than --chunk 100' --overlap 100
	bad '--overlap 100 must be smaller than --chunk 100' --no-align --overlap 100
	bad '--overlap 97 must be smaller than the 97 frames of an aligned chunk of --chunk 100 (or use --no-align)' --overlap 97
	bad '--combine "all": expected none, segments or progressive' --combine all
	bad '--seed "-1": expected a whole number from 0 to 18446744073709551615, or random' --seed -1
	bad '--seed "18446744073709551616": expected a whole number from 0 to 18446744073709551615, or random' --seed 18446744073709551616
	bad '--max-frames "0": expected a whole number from 1 to 2305843009213693951' --max-frames 0
	bad '--high-model needs a name' --high-model ''
	bad 'unexpected argument "prompts.jsonl" (prompt records are read from stdin)' prompts.jsonl
	bad "unrecognized option '--bogus'" --bogus
	# 97 of 100 is fine when chunks are not aligned.
	rec a 500 | pr-plan --no-align --overlap 97 > jobs
	[ -s jobs ]
}

@test "stdout that cannot be written: exit 3" {
	[ -w /dev/full ] || skip "no /dev/full"
	rec a 500 > in
	run bash -c 'pr-plan < in > /dev/full'
	assert_failure 3
	assert_output --partial 'pr-plan: error writing standard output'
	run bash -c 'pr-plan --help > /dev/full'
	assert_failure 3
}

@test "the original planner's golden dry run, with its reference bug fixed" {
	need_fixtures
	golden=$FIXTURES/dry-run/session_20250811_112003/render_jobs/render_jobs_112003.json
	rec 2025-05-02_19-39-31_UTC 500 | pr-plan --no-align --chunk 101 > jobs
	run jq -c '[.n, .start, .frames, .vars.latent]' jobs
	assert_output "$(jq -c '.jobs[] | [.job_number, .start_frame, .frames_to_render,
	    (.latent_input_path // "latents/\(.video_name)/job_\(.job_number | tostring | ("00" + .)[-3:]).latent")]' "$golden")"
	# The original sent HIGH job 3 the reference of job 1, a HIGH job that
	# makes none; the plan meant LOW job 2's.
	run jq -r 'select(.n == 3 or .n == 9) | .vars.reference' jobs
	assert_output "$(printf '%s\n' references/2025-05-02_19-39-31_UTC/job_002_ref.png references/2025-05-02_19-39-31_UTC/job_008_ref.png)"
	run jq -r 'select(.pass == "low") | .vars.reference_frame // "none"' jobs
	assert_output "$(printf '%s\n' 91 91 91 91 none)"
}
