#!/usr/bin/env bats
# pr-combine: finals with exactly the frames asked for, in source order,
# from segments the stand-in rendered (every plan shape) and from segments
# made here the way VideoHelperSuite encodes them (h264 with B-frames);
# mismatched and missing segments; cleanup only after verification; reruns
# that do nothing.

load helper
load comfy
load submit

# Renders once for the whole file: five pipeline runs on two stand-ins, in
# two lanes side by side (the stand-in runs one prompt at a time).
setup_file() {
	cd "$BATS_FILE_TMPDIR" || return 1
	BATS_TEST_TMPDIR=$BATS_FILE_TMPDIR
	local t url1 url2
	COMFY_ROOT=$BATS_FILE_TMPDIR/comfy1
	submit_models "$COMFY_ROOT"
	start_comfy --step-time 0 --node-time 0 || return 1
	echo "$COMFY_PID" > comfy.pids
	url1=$COMFY
	COMFY_ROOT=$BATS_FILE_TMPDIR/comfy2
	submit_models "$COMFY_ROOT"
	start_comfy --step-time 0 --node-time 0 || return 1
	echo "$COMFY_PID" >> comfy.pids
	url2=$COMFY
	echo "$url1" > comfy.url
	submit_source p/src.mp4 520
	for t in 1 5 37 97 101 500; do
		write_prompt "p/t$t.txt" src.mp4 "$t" "scene $t" blurry
	done
	mkdir -p q r
	cp p/src.mp4 p/t37.txt p/t97.txt p/t101.txt q/
	cp p/src.mp4 p/t37.txt p/t101.txt r/
	pipe() {
		local url=$1 name=$2
		shift 2
		"$REPO/pipeline.sh" --server "$url" --state "s-$name" --out "o-$name" "$@" \
		    > "$name.out" 2> "$name.err" || echo $? > "$name.rc"
	}
	if [ -n "${PR_SANITIZED:-}" ]; then
		# the plan matrix renders in the plain pass (see matrix_pass)
		pipe "$url1" seg --chunk 41 --combine segments r &
		local lane=$!
		pipe "$url2" prog --chunk 41 --combine progressive r
		wait "$lane"
		return
	fi
	pipe "$url1" c41 --chunk 41 p &
	local lane=$!
	pipe "$url2" c100 --chunk 100 p
	pipe "$url2" ov --chunk 41 --overlap 10 q
	pipe "$url2" seg --chunk 41 --combine segments r
	pipe "$url2" prog --chunk 41 --combine progressive r
	wait "$lane"    # only it: the stand-ins are children too
}

# The T x chunk matrix is rendered in the plain pass only: under the
# sanitizers it would mostly test pr-submit and the stand-in again (their
# own suites do), while pr-combine's code is covered by the segments and
# progressive renders and the tests on segments made here. It keeps
# make check inside its time budget.
matrix_pass() {
	[ -z "${PR_SANITIZED:-}" ] || skip "the plan matrix renders in the plain pass (time budget)"
}

teardown_file() {
	[ -f "$BATS_FILE_TMPDIR/comfy.pids" ] || return 0
	local pid
	while read -r pid; do
		kill "$pid" 2> /dev/null || true
	done < "$BATS_FILE_TMPDIR/comfy.pids"
}

F=$BATS_FILE_TMPDIR

# check_final RUN VIDEO FRAMES: the run's final of VIDEO has FRAMES frames
# (counted by ffprobe) that are source frames 0..FRAMES-1 in order, and
# its record says so.
check_final() {
	local run=$1 video=$2 t=$3 file ids
	file=$F/o-$run/final/${video}_final.mp4
	[ -f "$file" ] || { echo "no $file; $run said:"; cat "$F/$run.err"; return 1; }
	[ "$(ffprobe -v error -select_streams v:0 -count_frames -show_entries stream=nb_read_frames \
	    -of csv=p=0 "$file")" = "$t" ] || { echo "$video: frame count"; return 1; }
	ids=$(fake-frameid "$file" | jq -c '[.frames, .runs]')
	[ "$ids" = "[$t,[[0,$((t - 1))]]]" ] || { echo "$video: frames and runs $ids"; return 1; }
	jq -s -e --arg v "$video" --argjson t "$t" 'map(select(.video == $v)) | length == 1 and
	    (.[0] | .status == "success" and .frames == $t and .frame_ids and .cached == false
	      and .path == "final/\($v)_final.mp4")' "$F/s-$run/finals.jsonl" > /dev/null
}

@test "chunk 41: every final has exactly T frames, source frames 0..T-1 in order" {
	matrix_pass
	[ ! -f "$F/c41.rc" ] || { cat "$F/c41.err"; false; }
	for t in 1 5 37 97 101 500; do check_final c41 "t$t" "$t"; done
	# 500 = 12 chunks of 41 and a last of 9 shifted back: only it is cut
	run jq -c 'select(.video == "t500") | [.segments[].how] | group_by(.) | map([.[0], length])' \
	    "$F/s-c41/finals.jsonl"
	assert_output '[["copy",12],["reencode",1]]'
}

@test "chunk 100: every final has exactly T frames, source frames 0..T-1 in order" {
	matrix_pass
	[ ! -f "$F/c100.rc" ] || { cat "$F/c100.err"; false; }
	for t in 1 5 37 97 101 500; do check_final c100 "t$t" "$t"; done
}

@test "--overlap 10: the overlapping frames are dropped once, the finals are exact" {
	matrix_pass
	[ ! -f "$F/ov.rc" ] || { cat "$F/ov.err"; false; }
	for t in 37 97 101; do check_final ov "t$t" "$t"; done
	# chunks start 31 apart and repeat 10 frames of their predecessor; the
	# last (41 frames for the 39 left) is shifted back to end at 101: 12
	run jq -c 'select(.video == "t101") | [.segments[] | [.keep[0], .how]]' "$F/s-ov/finals.jsonl"
	assert_output '[[0,"copy"],[10,"reencode"],[12,"reencode"]]'
}

# The frame numbers a segments or progressive final must show: each
# chunk's kept frames with one interpolated frame (RIFE x2) between each
# two, chunk after chunk.
expected_x2() {
	jq -c 'select(.kind == "combine") | .deps[0] as $low | {low: $low, from: .vars.keep_from, n: .vars.keep_frames}' \
	    "$1" > combines.jsonl
	jq -s -c --slurpfile c combines.jsonl '
	  (map({key: .id, value: .start}) | from_entries) as $start
	  | [$c[] | ($start[.low] + .from) as $s | range(0; .n) as $i
	     | ($s + $i), (if $i < .n - 1 then "between" else empty end)]' "$1"
}

@test "--combine segments and progressive: RIFE x2 frames, originals in source order" {
	local mode v got want
	for mode in seg prog; do
		[ ! -f "$F/$mode.rc" ] || { cat "$F/$mode.err"; false; }
		for v in t37 t101; do
			jq -c --arg v "$v" 'select(.video == $v)' "$F/s-$mode/results.jsonl" > res.jsonl
			want=$(expected_x2 res.jsonl)
			# the stand-in marks an interpolated frame with bit 23 of its number
			got=$(fake-frameid "$F/o-$mode/final/${v}_final.mp4" |
			    jq -c '.codes | map(if . != null and . >= 8388608 then "between" else . end)')
			[ "$got" = "$want" ] || { echo "$mode $v: $got"; false; }
			jq -s -e --arg v "$v" 'map(select(.video == $v)) | length == 1 and
			    (.[0] | .status == "success" and .fps == 60 and .frame_ids)' \
			    "$F/s-$mode/finals.jsonl" > /dev/null
		done
	done
	# t101 at 41: chunks keep 41, 41 and 19 frames: 81 + 81 + 37 frames
	run jq -r 'select(.video == "t101") | .frames' "$F/s-seg/finals.jsonl"
	assert_output 199
}

@test "after the finals are verified only the finals are left under --out" {
	matrix_pass
	# (and pipeline.sh's report, in report/)
	run find "$F/o-c41" "$F/o-seg" "$F/o-prog" -type f -not -path '*/report/*'
	assert_success
	refute_output --partial /videos/
	refute_output --partial /latents/
	refute_output --partial /references/
	refute_output --partial /combined/
	[ "$(grep -c '_final.mp4$' <<< "$output")" -eq 10 ]
	[ "$(wc -l <<< "$output")" -eq 10 ]
	# and the state keeps each final's record, the one finals.jsonl has
	run jq -c . "$F/s-c41/t97/final.json"
	assert_output "$(jq -c 'select(.video == "t97")' "$F/s-c41/finals.jsonl")"
}

@test "a rerun after cleanup renders nothing and joins nothing" {
	matrix_pass
	local before after
	before=$(stat -c %Y.%s "$F"/o-c41/final/*.mp4 | sha256sum)
	cd "$F"
	run "$REPO/pipeline.sh" --server "$(cat comfy.url)" --state s-c41 --out o-c41 --chunk 41 p
	assert_success
	assert_output --partial '(44 cached, 0 prompts executed)'
	after=$(stat -c %Y.%s "$F"/o-c41/final/*.mp4 | sha256sum)
	[ "$before" = "$after" ]
	run jq -s -c 'map(.cached) | unique' s-c41/finals.jsonl
	assert_output '[true]'
	# finals.jsonl cut short (a shell redirect truncates it first): the
	# per-video final.json records still keep every job cached
	: > s-c41/finals.jsonl
	run "$REPO/pipeline.sh" --server "$(cat comfy.url)" --state s-c41 --out o-c41 --chunk 41 p
	assert_success
	assert_output --partial '(44 cached, 0 prompts executed)'
}

# --- segments made here, as VideoHelperSuite writes them -----------------

# seg NAME FIRST FRAMES [WxH]: out/videos/v/NAME.mp4, frames FIRST.. (16 fps).
seg() {
	mkdir -p out/videos/v
	fake-frameid --make "out/videos/v/$1.mp4" --first "$2" --frames "$3" --size "${4:-64x48}" \
	    --fps 16 > /dev/null
}

# low VIDEO CHUNK START FROM TO FILE: the result of a LOW job whose segment
# is FILE (under $OUT, default out/) and whose frames [FROM, TO) belong in
# the final.
low() {
	local sum
	sum=$( (sha256sum "${OUT:-out}/$6" 2> /dev/null || echo -) | cut -d' ' -f1)
	jq -nc --arg v "$1" --argjson c "$2" --argjson s "$3" --argjson a "$4" --argjson b "$5" \
	    --arg f "$6" --arg sum "$sum" '
	  {id: "\($v)/job_\(($c * 2 + 2) | tostring | ("00" + .)[-3:])", video: $v,
	   kind: "render", pass: "low", chunk: $c, start: $s, frames: $b, keep: [$a, $b],
	   status: "success", cached: false, key: "k\($c)",
	   files: [{role: "segment", path: $f, sha256: $sum}], vars: {total_frames: 0}}'
}

@test "a segment cut at keep = [10, n) is re-encoded, the others copied: exact frames" {
	seg job_002 0 97
	seg job_004 87 97
	{ low v 0 0 0 97 videos/v/job_002.mp4; low v 1 87 10 97 videos/v/job_004.mp4; } > res.jsonl
	run pr-combine --keep-intermediate < res.jsonl
	assert_success
	run fake-frameid out/final/v_final.mp4
	assert_output --partial '"frames":184,'
	assert_output --partial '"runs":[[0,183]]'
	# the copied part is the original's bytes: same headers, no re-encode
	run jq -c '[.frames, [.segments[] | .how], .segments[1].first]' <<< "$(pr-combine --keep-intermediate < res.jsonl)"
	assert_output '[184,["copy","reencode"],97]'
}

@test "a segment of another size is a clear error naming it; --reencode converts it" {
	seg job_002 0 97
	seg job_004 97 40 128x96
	{ low v 0 0 0 97 videos/v/job_002.mp4; low v 1 97 0 40 videos/v/job_004.mp4; } > res.jsonl
	run pr-combine < res.jsonl
	assert_failure 1
	assert_line --partial 'pr-combine: v: videos/v/job_004.mp4 (v/job_004) is h264 yuv420p 128x96'
	assert_line --partial 'but videos/v/job_002.mp4 is h264 yuv420p 64x48'
	assert_line --partial -- '--reencode'
	[ ! -e out/final/v_final.mp4 ]
	[ -f out/videos/v/job_002.mp4 ] && [ -f out/videos/v/job_004.mp4 ]
	run jq -c '[.status, .error.job]' <<< "$(pr-combine < res.jsonl 2> /dev/null)"
	assert_output '["failed","v/job_004"]'

	run pr-combine --reencode < res.jsonl
	assert_success
	run fake-frameid out/final/v_final.mp4
	assert_output --partial '"width":64,"height":48'
	assert_output --partial '"runs":[[0,136]]'
}

@test "a missing segment fails only its video; the other is finished and cleaned" {
	seg job_002 0 97
	mkdir -p out/videos/w
	fake-frameid --make out/videos/w/job_002.mp4 --frames 30 --fps 16 > /dev/null
	{
		low v 0 0 0 97 videos/v/job_002.mp4
		low v 1 97 0 20 videos/v/job_004.mp4
		low w 0 0 0 30 videos/w/job_002.mp4
	} > res.jsonl
	run --separate-stderr pr-combine < res.jsonl
	assert_failure 1
	[ "$(jq -r .status <<< "${lines[0]}")" = failed ]
	[ "$(jq -r .error.message <<< "${lines[0]}")" = "videos/v/job_004.mp4: segment missing (made by v/job_004)" ]
	[ "$(jq -r '[.status, .frames] | @tsv' <<< "${lines[1]}")" = "success	30" ]
	[ "$stderr" = "pr-combine: v: videos/v/job_004.mp4: segment missing (made by v/job_004)" ]
	# the failed video keeps what it has; the finished one keeps only its final
	[ -f out/videos/v/job_002.mp4 ]
	[ ! -e out/videos/w ]
	[ -f out/final/w_final.mp4 ] && [ ! -e out/final/v_final.mp4 ]
}

@test "a segment changed since pr-submit collected it is not joined" {
	seg job_002 0 97
	seg job_004 97 20
	{ low v 0 0 0 97 videos/v/job_002.mp4; low v 1 97 0 20 videos/v/job_004.mp4; } > res.jsonl
	seg job_004 97 19
	run --separate-stderr pr-combine < res.jsonl
	assert_failure 1
	assert_equal "$stderr" "pr-combine: v: videos/v/job_004.mp4 (v/job_004) changed since it was collected (SHA-256 differs from its result's); rerun pr-submit to render it again"
	[ ! -e out/final/v_final.mp4 ]
}

@test "a failed or skipped job fails its video with the job's reason" {
	seg job_002 0 97
	{
		low v 0 0 0 97 videos/v/job_002.mp4
		low v 1 97 0 20 videos/v/job_004.mp4 |
		    jq -c '.status = "failed" | .files = [] | .error = {message: "CUDA out of memory", node_id: "3"}'
	} > res.jsonl
	run --separate-stderr pr-combine < res.jsonl
	assert_failure 1
	[ "$(jq -c '[.status, .error.job, .error.message]' <<< "$output")" = '["failed","v/job_004","v/job_004 failed: CUDA out of memory"]' ]
}

@test "nothing is cleaned up when the joined video does not verify" {
	seg job_002 0 97
	seg job_004 200 20     # frames of the wrong place in the source
	{ low v 0 0 0 97 videos/v/job_002.mp4; low v 1 97 0 20 videos/v/job_004.mp4; } > res.jsonl
	run --separate-stderr pr-combine < res.jsonl
	assert_failure 1
	assert_equal "$stderr" "pr-combine: v: frame 97 of the joined video is source frame 200, expected 97 (from v/job_004)"
	[ -f out/videos/v/job_002.mp4 ] && [ -f out/videos/v/job_004.mp4 ]
	run find out/final
	assert_output out/final
	[ ! -e state/v/final.json ]
	# with the identity check off the frame count alone passes
	run pr-combine --frame-ids off < res.jsonl
	assert_success
	[ ! -e out/videos/v ]
}

@test "--keep-intermediate keeps the segments; a rerun reuses the final, a changed keep rebuilds it" {
	seg job_002 0 97
	seg job_004 96 5
	{ low v 0 0 0 97 videos/v/job_002.mp4; low v 1 96 1 5 videos/v/job_004.mp4; } > res.jsonl
	run pr-combine --keep-intermediate < res.jsonl
	assert_success
	[ -f out/videos/v/job_002.mp4 ] && [ -f out/videos/v/job_004.mp4 ]
	local mtime
	mtime=$(stat -c %Y.%N out/final/v_final.mp4)
	run pr-combine --keep-intermediate < res.jsonl
	assert_success
	[ "$(jq -c '[.cached, .frames]' <<< "$output")" = '[true,101]' ]
	[ "$(stat -c %Y.%N out/final/v_final.mp4)" = "$mtime" ]
	# a final that no longer matches its record is made again
	printf x >> out/final/v_final.mp4
	run pr-combine --keep-intermediate < res.jsonl
	[ "$(jq -c '[.cached, .frames]' <<< "$output")" = '[false,101]' ]
	# a different keep range is a different final
	{ low v 0 0 0 96 videos/v/job_002.mp4; low v 1 96 0 5 videos/v/job_004.mp4; } > res.jsonl
	run pr-combine < res.jsonl
	assert_success
	[ "$(jq -c '[.cached, .frames, [.segments[].how]]' <<< "$output")" = '[false,101,["reencode","copy"]]' ]
	run fake-frameid out/final/v_final.mp4
	assert_output --partial '"runs":[[0,100]]'
	[ ! -e out/videos/v ]
}

@test "a kill at any point loses nothing: the rerun finishes, exact, and cleans up" {
	local point
	for point in encoding verified published recorded removing:2; do
		rm -rf out state
		seg job_002 0 97
		seg job_004 96 5
		{ low v 0 0 0 97 videos/v/job_002.mp4; low v 1 96 1 5 videos/v/job_004.mp4; } > res.jsonl
		run env PR_CRASH_AT="$point" pr-combine < res.jsonl
		[ "$status" -eq 137 ] || fail "PR_CRASH_AT=$point: status $status, expected SIGKILL"
		run pr-combine < res.jsonl
		assert_success
		[ "$(jq -r .status <<< "$output")" = success ]
		run fake-frameid out/final/v_final.mp4
		assert_output --partial '"runs":[[0,100]]'
		run find out -type f
		assert_output out/final/v_final.mp4
	done
}

@test "cleanup never touches a file outside --out" {
	seg job_002 0 20
	echo keep > outside.txt
	echo keep > /tmp/pr-combine-test-$$.txt
	low v 0 0 0 20 videos/v/job_002.mp4 |
	    jq -c --arg abs "/tmp/pr-combine-test-$$.txt" \
	      '.files += [{role: "x", path: "../outside.txt"}, {role: "y", path: $abs},
	                  {role: "z", path: "videos/../../outside.txt"}]' > res.jsonl
	run pr-combine < res.jsonl
	assert_success
	[ -f outside.txt ] && [ -f "/tmp/pr-combine-test-$$.txt" ]
	rm -f "/tmp/pr-combine-test-$$.txt"
	[ ! -e out/videos/v/job_002.mp4 ]
}

@test "a job of the plan missing from the results fails its video" {
	seg job_002 0 97
	low v 0 0 0 97 videos/v/job_002.mp4 > res.jsonl
	mkdir -p state/v
	{ low v 0 0 0 97 x; low v 1 97 0 4 y; } > state/v/plan.jsonl
	run --separate-stderr pr-combine < res.jsonl
	assert_failure 1
	assert_equal "$stderr" "pr-combine: v: v/job_004: no result in the input (run pr-submit on this plan)"
	# without a plan, the results are the plan
	rm state/v/plan.jsonl
	run pr-combine < res.jsonl
	assert_success
}

@test "file and folder names with spaces, quotes, \$ and a leading - are safe" {
	local out="o u't \$HOME" name="-a 'b' \$c \`d\`"
	mkdir -p "$out/videos/v"
	fake-frameid --make "$out/videos/v/$name 1.mp4" --frames 20 --fps 16 > /dev/null
	fake-frameid --make "$out/videos/v/$name 2.mp4" --first 18 --frames 9 --fps 16 > /dev/null
	{
		OUT=$out low v 0 0 0 20 "videos/v/$name 1.mp4"
		OUT=$out low v 1 18 2 9 "videos/v/$name 2.mp4"
	} > res.jsonl
	run pr-combine --out "$out" --keep-intermediate < res.jsonl
	assert_success
	run fake-frameid "$out/final/v_final.mp4"
	assert_output --partial '"runs":[[0,26]]'
}

@test "bad input: a clear error naming the line and field, nothing done" {
	seg job_002 0 97
	{ low v 0 0 0 97 videos/v/job_002.mp4; low v 1 97 0 4 x | jq -c '.keep = [5, 2]'; } > res.jsonl
	run --separate-stderr pr-combine < res.jsonl
	assert_failure 2
	assert_equal "$stderr" "pr-combine: <stdin>:2: keep: expected [from, to) with 0 <= from <= to"
	assert_output ''
	[ ! -e out/final ]
	printf '{"id":"v/job_002","video":"v","kind":"render"\n' > res.jsonl
	run --separate-stderr pr-combine < res.jsonl
	assert_failure 2
	assert_output ''
	[[ "$stderr" == "pr-combine: <stdin>:1: "* ]]
	echo '{"id":"x","video":"../v","kind":"render","status":"success"}' > res.jsonl
	run --separate-stderr pr-combine < res.jsonl
	assert_failure 2
	[[ "$stderr" == "pr-combine: <stdin>:1: video: "* ]]
	run pr-combine --frobnicate < /dev/null
	assert_failure 2
}

@test "no ffmpeg is an infrastructure failure (status 3); a held lock too" {
	seg job_002 0 20
	low v 0 0 0 20 videos/v/job_002.mp4 > res.jsonl
	mkdir -p nopath
	ln -s "$(command -v pr-combine)" nopath/
	run --separate-stderr env PATH="$PWD/nopath" pr-combine < res.jsonl
	assert_failure 3
	assert_equal "$stderr" "pr-combine: ffmpeg not found or not working (install ffmpeg)"
	mkdir -p state
	exec 8> state/lock
	flock 8
	run --separate-stderr pr-combine < res.jsonl
	exec 8>&-
	assert_failure 3
	[[ "$stderr" == *"state"* ]]
	[ -f out/videos/v/job_002.mp4 ]
}

@test "--help and the man page" {
	run pr-combine --help
	assert_success
	assert_output --partial 'usage: pr-combine'
	[ -f "$REPO/man/pr-combine.1" ]
}
