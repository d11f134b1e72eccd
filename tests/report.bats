#!/usr/bin/env bats
# pr-report: seam sheets whose pictures are the right frames, a page that
# shows every video (failed ones with their error), made and uploaded by
# pipeline.sh, and rendered by a real browser.

load helper
load submit
load gcs
load runpod
load stand-ins

# One pipeline run for the suite: two videos of 3 chunks each (150 frames,
# --chunk 60), one of which fails at the last of its twelve prompts: which
# is the last chunk's LOW job of one of them, as nothing else can run last.
setup_file() {
	local d=$BATS_FILE_TMPDIR/run
	mkdir -p "$d"
	cd "$d" || return 1
	BATS_TEST_TMPDIR=$d
	stand_ins
	rm p/one.txt p/two.txt
	write_prompt p/a.txt src.mp4 150 'a walk' -
	write_prompt p/b.txt src.mp4 150 'a run' -
	curl -sf -X POST "$COMFY/fake/faults" -d '{"kind":"exec_error","prompt":12,
	    "exception_type":"RuntimeError","message":"bad input at the seam"}' > /dev/null
	rc=0
	"$REPO/pipeline.sh" --server "$COMFY" --dest gs://bkt/v --run r --chunk 60 \
	    --shutdown --watchdog 5m p > pipeline.out 2> pipeline.err || rc=$?
	echo "$rc" > pipeline.rc
	stop_comfy
	stop_gcs
	stop_runpod
}

teardown_file() {
	stop_comfy
	stop_gcs
	stop_runpod
}

RUN=$BATS_FILE_TMPDIR/run
BUCKET=$RUN/root/bkt/v/r

# crop SHEET BOX: the picture at [x, y, w, h] of a sheet, read back by the
# stand-in's frame identity.
crop() {
	local box
	box=$(jq -r '"\(.[2]):\(.[3]):\(.[0]):\(.[1])"' <<< "$2")
	ffmpeg -v error -nostdin -y -f image2 -pattern_type none -i "file:$1" -vf "crop=$box" "$BATS_TEST_TMPDIR/crop.png"
	fake-frameid "$BATS_TEST_TMPDIR/crop.png" | jq -c '.codes[0]'
}

@test "--help, --version and usage errors" {
	run pr-report --help
	assert_success
	assert_output --partial 'usage: pr-report'
	run pr-report --version
	assert_success
	assert_output --regexp '^pr-report \(prompt-runner\) [0-9.]+$'
	run pr-report --price cheap < /dev/null
	assert_failure 2
	assert_output --partial '--price "cheap": expected US dollars per hour from 0 to 1000000'
	run pr-report --started 99999999999 < /dev/null
	assert_failure 2
	assert_output --partial 'expected a time in seconds since 1970'
	run pr-report extra < /dev/null
	assert_failure 2
	assert_output --partial 'finals come on stdin'
}

@test "bad input names file, line and field, and writes nothing" {
	printf '%s\n' '{"video":"a","status":"success","path":"final/a_final.mp4","frames":5}' \
	    '{"video":"b","status":"done"}' > finals.jsonl
	run pr-report --state st --out o < finals.jsonl
	assert_failure 2
	assert_output 'pr-report: <stdin>:2: status: expected "success" or "failed" (is this pr-combine'"'"'s output?)'
	[ ! -e o ]
	echo '{"video":"a","status":"success","path":"../a.mp4","frames":5}' > finals.jsonl
	run pr-report --state st --out o < finals.jsonl
	assert_failure 2
	assert_output --partial '<stdin>:1: path: '
	mkdir -p st
	echo '{"id":"a/job_001","video":"a","timings":"soon"}' > st/results.jsonl
	: > finals.jsonl
	run pr-report --state st --out o < finals.jsonl
	assert_failure 2
	assert_output 'pr-report: st/results.jsonl:1: timings: expected an object, not string'
	[ ! -e o ]
}

@test "a pipeline run: each seam's pictures are the source frames either side of it, and the reference" {
	[ "$(cat "$RUN/pipeline.rc")" = 1 ] || { cat "$RUN/pipeline.err" >&2; false; }
	cd "$RUN"
	good=$(jq -r 'select(.status == "success") | .video' state/finals.jsonl)
	[ -n "$good" ]
	jq -se --arg v "$good" 'map(select(.video == $v)) | length == 1 and (.[0].seams | length) == 2' \
	    state/reports.jsonl
	for v in a b; do
		# What the plan says each seam must show: the LOW segments' source
		# frames, and the frame each chunk hands on as the next one's
		# reference.
		jq -sc 'map(select(.pass == "low")) | sort_by(.chunk) | . as $l
		  | [range(length - 1) as $k
		     | [$l[$k].start + $l[$k].keep[1] - 1, $l[$k + 1].start + $l[$k + 1].keep[0],
		        $l[$k].start + $l[$k].vars.reference_frame]]' "state/$v/plan.jsonl" > "$v.want"
		jq -c --arg v "$v" 'select(.video == $v) | .seams[] | [.chunk, .last.box, .first.box, .reference.box,
		    [.last.source, .first.source, .reference.source]]' state/reports.jsonl > "$v.seams"
		[ -s "$v.seams" ] || [ "$v" != "$good" ]
		while IFS= read -r s; do
			k=$(jq '.[0]' <<< "$s")
			want=$(jq -c --argjson k "$k" '.[$k]' "$v.want")
			[ "$(jq -c '.[4]' <<< "$s")" = "$want" ]
			got=()
			for i in 1 2 3; do
				got+=("$(crop "out/report/${v}_seams.png" "$(jq -c ".[$i]" <<< "$s")")")
			done
			[ "[${got[0]},${got[1]},${got[2]}]" = "$want" ] ||
			    { echo "$v seam $k: sheet shows [${got[*]}], want $want" >&2; false; }
			# Right after the last kept frame comes the next source frame.
			[ $(( got[1] - got[0] )) = 1 ]
		done < "$v.seams"
	done
	# The good video's seams read from its final; the intermediates are gone.
	jq -se --arg v "$good" '[.[] | select(.video == $v) | .seams[][] | objects | .from] | unique == ["final"]' \
	    state/reports.jsonl
	# The failed one has no final: its first seam comes from the segments
	# left on disk, its reference from the file the next chunk was given.
	jq -se --arg v "$good" 'map(select(.video != $v and .video)) | length == 1 and
	    (.[0].seams | length == 1 and .[0].last.from == "segment" and
	     .[0].first.from == "segment" and .[0].reference.from == "file")' state/reports.jsonl
}

@test "a pipeline run: the failed video is in the report with its error; the report is uploaded" {
	cd "$RUN"
	bad=$(jq -r 'select(.status == "failed") | .video' state/finals.jsonl)
	[ -n "$bad" ]
	jq -se --arg v "$bad" 'map(select(.video == $v)) | length == 1 and .[0].status == "failed"
	    and (.[0].error | test("bad input at the seam"))' state/reports.jsonl
	html=out/report/index.html
	grep -q "data-video=\"$bad\" data-status=\"failed\"" "$html"
	grep -q 'RuntimeError' "$html"
	grep -q 'bad input at the seam' "$html"
	# Every video has one section, the run's totals one more.
	[ "$(grep -o '<section class="video"' "$html" | wc -l)" = 2 ]
	grep -q '<section id="totals">' "$html"
	# Uploaded beside the finals, so its relative links hold in the bucket.
	good=$(jq -r 'select(.status == "success") | .video' state/finals.jsonl)
	cmp "$html" "$BUCKET/report/index.html"
	cmp "out/report/${good}_seams.png" "$BUCKET/report/${good}_seams.png"
	[ -s "$BUCKET/final/${good}_final.mp4" ]
	grep -q "src=\"../final/${good}_final.mp4\"" "$html"
	grep -q "src=\"${good}_seams.png\"" "$html"
	grep -q '^report: out/report/index.html' pipeline.out
	# The run in numbers: twelve prompts ran, the last failed; the
	# pipeline's summary prints what pr-report counted.
	jq -se 'map(select(.report == "index"))[0] | .prompts == {run: 12, cached: 0, retried: 0,
	    failed: 1, skipped: 0} and (.servers | length == 1 and .[0].prompts == 12
	    and .[0].gpu_busy > 0 and .[0].model_loads >= 2)' state/reports.jsonl
	grep -q '^wall time [0-9]* s; 12 prompts run, 0 cached, 0 retried$' pipeline.out
	loads=$(jq -r 'select(.report == "index") | .servers[0].model_loads' state/reports.jsonl)
	grep -q "^server http://127.0.0.1:[0-9]*: GPU busy .* $loads model loads (estimated)$" pipeline.out
	grep -q '12 run, 0 cached, 0 retried, 1 failed, 0 skipped' "$html"
	# The cost, on the first run: the pod's price was asked while it ran
	# (its stop, with the price, comes after the report is uploaded).
	jq -e '.action == "look" and .cost_per_hr == 0.69' state/pod.jsonl
	grep -q '[0-9.]* USD <span class="note">(.* at 0.69 USD/h, the pod.s price as RunPod reported it during the run)' "$html"
	# No stray temporary folder is left in the report.
	[ -z "$(find out/report -name '.tmp-*')" ]
}

@test "the page renders in headless Chromium: a section per video, no broken image" {
	plain_pass_only
	browser=$(command -v chromium || command -v chromium-browser || true)
	[ -n "$browser" ] || skip "chromium is not installed (./setup installs it where Debian has it)"
	cp -r "$RUN/out" o
	# The page needs no script; this copy adds one that writes down, once
	# everything has loaded, the size each image decoded to.
	sed 's|</body>|<script>addEventListener("load", () => { for (const i of document.images) i.setAttribute("data-decoded", i.naturalWidth + "x" + i.naturalHeight); document.body.setAttribute("data-loaded", "yes"); })</script></body>|' \
	    o/report/index.html > o/report/check.html
	flags=(--headless --no-sandbox --disable-gpu --no-first-run --user-data-dir="$PWD/profile")
	timeout 120 "$browser" "${flags[@]}" --virtual-time-budget=10000 --dump-dom \
	    "file://$PWD/o/report/check.html" > dom.html 2> chromium.err || { cat chromium.err >&2; false; }
	grep -q 'data-loaded="yes"' dom.html
	[ "$(grep -o '<section class="video"' dom.html | wc -l)" = 2 ]
	imgs=$(grep -o '<img [^>]*>' dom.html)
	[ "$(wc -l <<< "$imgs")" -ge 1 ]
	while IFS= read -r img; do
		w=$(sed -n 's/.* width="\([0-9]*\)".*/\1/p' <<< "$img")
		h=$(sed -n 's/.* height="\([0-9]*\)".*/\1/p' <<< "$img")
		[[ $img == *"data-decoded=\"${w}x${h}\""* ]] || { echo "broken or resized: $img" >&2; false; }
	done <<< "$imgs"
	# And a screenshot of the page as a user sees it: not blank.
	timeout 120 "$browser" "${flags[@]}" --window-size=1000,2000 --screenshot="$PWD/shot.png" \
	    "file://$PWD/o/report/index.html" 2> chromium.err || { cat chromium.err >&2; false; }
	[ "$(ffprobe -v error -select_streams v -show_entries stream=width,height -of csv=p=0 shot.png)" = 1000,2000 ]
	colours=$(ffmpeg -v error -i shot.png -vf 'scale=100:200,format=gray,signalstats,metadata=print:file=-' -f null - |
	    sed -n 's/.*YMIN=//p')
	[ "$colours" -lt 100 ]
}

@test "paths with quotes, colons and brackets reach ffmpeg intact; a video of one chunk has no sheet" {
	plain_pass_only
	o="o'u:t[1],x;y%d"
	mkdir -p "$o/final" st
	fake-frameid --make "$o/final/v_final.mp4" --frames 20 > /dev/null
	fake-frameid --make "$o/final/w_final.mp4" --frames 9 > /dev/null
	jq -nc '{video: "v", status: "success", path: "final/v_final.mp4", frames: 20,
	    segments: [{job: "v/job_002", keep: [0, 9], first: 0}, {job: "v/job_004", keep: [2, 13], first: 9}]},
	  {video: "w", status: "success", path: "final/w_final.mp4", frames: 9,
	    segments: [{job: "w/job_002", keep: [0, 9], first: 0}]}' > finals.jsonl
	jq -nc '{id: "v/job_002", video: "v", kind: "render", pass: "low", chunk: 0, start: 0, keep: [0, 9],
	    derive: [{from: "videos/v/job_002.mp4", frame: 3, path: "references/v/job_002_ref.png", role: "reference"}]},
	  {id: "v/job_003", video: "v", kind: "render", pass: "high", chunk: 1, start: 7,
	    vars: {reference: "references/v/job_002_ref.png"}},
	  {id: "v/job_004", video: "v", kind: "render", pass: "low", chunk: 1, start: 7, keep: [2, 13]}' \
	    > st/results.jsonl
	run --separate-stderr pr-report --state st --out "$o" < finals.jsonl
	assert_success
	[ -s "$o/report/v_seams.png" ]
	[ ! -e "$o/report/w_seams.png" ]
	s=$(jq -c 'select(.video == "v") | .seams[0]' <<< "$output")
	[ "$(jq -c '[.last.source, .first.source, .reference.source, .reference.final_frame]' <<< "$s")" = '[8,9,3,3]' ]
	for t in last first reference; do
		want=$(jq ".$t.source" <<< "$s")
		[ "$(crop "$o/report/v_seams.png" "$(jq -c ".$t.box" <<< "$s")")" = "$want" ]
	done
	jq -se 'map(select(.video == "w"))[0] | has("path") | not' <<< "$output"
	grep -q 'the video is one chunk' "$o/report/index.html"
}
