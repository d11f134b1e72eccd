#!/usr/bin/env bats
# pipeline.sh --dry-run and make plan: the offline stages chained.

load helper

@test "dry run on the shipped examples fills state/<video>/ and prints a summary" {
	cp -r "$REPO/prompt_files" .
	run "$REPO/pipeline.sh" --dry-run prompt_files/
	assert_success
	assert_line --index 0 --regexp '^video +frames +chunks +jobs +state$'
	assert_line --regexp '^city-walk +161 +2 +4 +state/city-walk/$'
	assert_line --regexp '^dancer +500 +6 +12 +state/dancer/$'
	assert_line --regexp '^short +41 +1 +2 +state/short/$'
	for v in city-walk dancer short; do
		for f in prompt plan jobs; do [ -s "state/$v/$f.jsonl" ]; done
		# one pretty workflow per job, and every job carries its workflow
		[ "$(ls "state/$v/workflows" | wc -l)" -eq "$(wc -l < "state/$v/jobs.jsonl")" ]
		run jq -e 'has("workflow") and has("stage") and has("collect") and has("derive")' "state/$v/jobs.jsonl"
		assert_success
	done
	# the stages agree: the plan's jobs are the jobs, in order
	diff <(jq -r .id state/dancer/plan.jsonl) <(jq -r .id state/dancer/jobs.jsonl)
	[ "$(jq -r .id state/dancer/jobs.jsonl | tail -1)" = dancer/job_012 ]
	[ ! -e state/.prompts.* ] 2>/dev/null || { ls -a state; return 1; }
}

@test "a chunk's LOW job stages its HIGH latent, later chunks stage the previous reference" {
	cp -r "$REPO/prompt_files" .
	"$REPO/pipeline.sh" --dry-run prompt_files/dancer.txt > /dev/null
	run jq -c 'select(.id == "dancer/job_004") | [.deps, (.stage | map(.path)), .workflow["366"].inputs.latent, .workflow["358"].inputs.image]' state/dancer/jobs.jsonl
	assert_output '[["dancer/job_003","dancer/job_002"],["references/dancer/job_002_ref.png","latents/dancer/job_003.latent"],"prompt-runner/dancer/job_003.latent","prompt-runner/dancer/job_002_ref.png"]'
	# the paragraphs of the positive prompt reach the text encoder intact
	run jq -r 'select(.id == "dancer/job_001") | .workflow["53"].inputs.positive_prompt' state/dancer/jobs.jsonl
	assert_output "$(printf '%s\n' 'A dancer in a loose white shirt turns slowly in a sunlit studio,' \
	    'wooden floor, tall windows, dust in the light.' '' \
	    'The camera orbits her once, smooth and steady; soft shadows, film grain.')"
}

@test "a source video and a <video>.png beside the prompt file are staged" {
	mkdir p
	write_prompt p/clip.txt clip-src.mp4 50 'a cat' 'blurry'
	: > p/clip-src.mp4
	: > p/clip.png
	run "$REPO/pipeline.sh" --dry-run p
	assert_success
	run jq -c 'select(.n <= 2) | .stage' state/clip/jobs.jsonl
	assert_line --index 0 "[{\"path\":\"$PWD/p/clip-src.mp4\",\"as\":\"prompt-runner/clip/clip-src.mp4\"},{\"path\":\"$PWD/p/clip.png\",\"as\":\"prompt-runner/clip/clip.png\"}]"
}

@test "options reach pr-plan: chunk size, combine mode, seed" {
	cp -r "$REPO/prompt_files" .
	run "$REPO/pipeline.sh" --dry-run --chunk 41 --combine progressive --seed 18446744073709551615 prompt_files/dancer.txt
	assert_success
	# 500 frames in 41-frame chunks: 12 full chunks reach 492, one more ends at 500
	assert_line --regexp '^dancer +500 +13 +39 +state/dancer/$'
	[ -f state/dancer/workflows/combine_013.json ]
	grep -q '"seed": 18446744073709551615,' state/dancer/workflows/job_001.json
	grep -q '"value": 41' state/dancer/workflows/job_001.json
}

@test "one bad prompt file does not stop the others; exit 1 says so" {
	mkdir p
	write_prompt p/good.txt src.mp4 50 'a cat' 'blurry'
	write_prompt p/tiny.txt src.mp4 3 'a cat' 'blurry'
	printf 'src.mp4\n\nfifty\n\na\n\nb\n' > p/bad.txt
	run --separate-stderr "$REPO/pipeline.sh" --dry-run p
	assert_failure 1
	[[ "$stderr" == *'p/bad.txt:3:'* ]]
	[[ "$stderr" == *'tiny'* ]]
	[[ "$output" == *'tiny'*'plan failed'* ]]
	[[ "$output" =~ good\ +50\ +2\ +4 ]]
	[ -s state/good/jobs.jsonl ]
	[ ! -e state/bad ]
	[ ! -e state/tiny/plan.jsonl ] && [ ! -e state/tiny/jobs.jsonl ]
	# with the plan document's rule, 3 frames can be planned
	run "$REPO/pipeline.sh" --dry-run --no-align p/tiny.txt
	assert_success
	[ -s state/tiny/jobs.jsonl ]
	# and a later failure removes what no longer matches the prompt
	run "$REPO/pipeline.sh" --dry-run p/tiny.txt
	assert_failure 1
	[ ! -e state/tiny/plan.jsonl ] && [ ! -e state/tiny/jobs.jsonl ] && [ ! -e state/tiny/workflows ]
}

@test "the user's real prompt files plan and patch; the v1 ones are refused" {
	need_fixtures
	mkdir p
	cp "$FIXTURES"/prompt_files/v2-*.txt "$FIXTURES"/prompt_files/v1-*.txt p/
	run --separate-stderr "$REPO/pipeline.sh" --dry-run p
	assert_failure 1
	for v in v1-b91776f-1 v1-b91776f-2 v1-b91776f-4; do
		[[ "$stderr" == *"p/$v.txt:"* ]]
		[ ! -e "state/$v" ]
	done
	[[ "$output" =~ v2-5ef3de6-1\ +500\ +6\ +12 ]]
	[[ "$output" =~ v2-ee55a3b-1\ +52\ +2\ +4 ]]
	[[ "$output" =~ v2-4f14e92-2\ +196\ +3\ +6 ]]
	# the literal \n of the 5ef3de6 file reached the workflow as a line break
	run jq -r 'select(.n == 1) | .workflow["53"].inputs.positive_prompt' state/v2-5ef3de6-1/jobs.jsonl
	[ "${#lines[@]}" -gt 1 ]
	refute_output --partial '\n'
}

@test "without --dry-run it renders: no server is exit 3 after the plan, nothing else" {
	cp -r "$REPO/prompt_files" .
	run --separate-stderr "$REPO/pipeline.sh" --server http://127.0.0.1:1 --wait-server 0 prompt_files
	assert_failure 3
	assert_output --partial 'dancer'
	[[ "$stderr" == *"127.0.0.1:1"* ]]
	[ -f state/dancer/jobs.jsonl ]
	[ "$(jq -s 'map(select(.status == "success")) | length' state/results.jsonl)" -eq 0 ]
	run "$REPO/pipeline.sh" --dry-run --bogus
	assert_failure 2
	run "$REPO/pipeline.sh" --help
	assert_success
	assert_output --partial 'usage: pipeline.sh'
}

@test "make plan rebuilds only the video whose prompt file changed" {
	mkdir p wf tbin
	write_prompt p/a.txt src.mp4 120 'a' 'n'
	write_prompt p/b.txt src.mp4 50 'b' 'n'
	cp "$REPO"/workflows/* wf/
	cp "$BIN"/pr-parse "$BIN"/pr-plan "$BIN"/pr-patch tbin/
	touch -d 2001-01-01 p/* wf/* tbin/*
	mk() { make -C "$REPO" --no-print-directory -s plan PROMPTS="$PWD/p" STATE="$PWD/st" \
	    WORKFLOWS="$PWD/wf" PR_TOOLS="$PWD/tbin"; }
	run mk
	assert_success
	[ -f st/a/jobs.jsonl ] && [ -f st/b/jobs.jsonl ] && [ -f st/b/workflows/job_001.json ]
	find st -type f -exec touch -d 2002-01-01 {} +
	touch p/a.txt
	run mk
	assert_success
	for f in prompt plan jobs; do
		[ "$(stat -c %Y "st/a/$f.jsonl")" -gt "$(date -d 2002-01-02 +%s)" ]
		[ "$(stat -c %Y "st/b/$f.jsonl")" -eq "$(date -d 2002-01-01 +%s)" ]
	done
	[ "$(stat -c %Y st/b/workflows/job_001.json)" -eq "$(date -d 2002-01-01 +%s)" ]
	# and with nothing changed, nothing is redone
	touch -d 2001-01-01 p/a.txt
	find st -type f -exec touch -d 2003-01-01 {} +
	run mk
	assert_success
	[ -z "$(find st -type f -newermt 2003-01-02)" ]
}
