#!/usr/bin/env bats
# A representative subset under valgrind (memcheck, leaks included): the
# planning tools on the bundled prompt files, a render of one short video
# by pr-submit against the stand-in, pr-combine joining it and pr-report
# showing it. Any error
# or leak makes valgrind exit 99. Plain pass only: the sanitizer build
# cannot run under valgrind.

load helper
load submit

VG=(valgrind -q --error-exitcode=99 --leak-check=full --show-leak-kinds=definite,indirect
    --errors-for-leak-kinds=definite,indirect)

vg() {
	"${VG[@]}" "$@"
}

suite_setup() {
	plain_pass_only
	command -v valgrind > /dev/null || skip "valgrind is not installed"
}

@test "valgrind: pr-parse, pr-plan and pr-patch on the bundled prompt files" {
	run --separate-stderr vg pr-parse "$REPO/prompt_files"
	assert_success
	printf '%s\n' "$output" > prompts.jsonl
	[ "$(wc -l < prompts.jsonl)" -ge 3 ]
	run --separate-stderr vg pr-plan --chunk 41 < prompts.jsonl
	assert_success
	printf '%s\n' "$output" > plan.jsonl
	run --separate-stderr vg pr-patch --workflows "$REPO/workflows" --no-state < plan.jsonl
	assert_success
	[ "$(printf '%s\n' "$output" | wc -l)" = "$(wc -l < plan.jsonl)" ]
	# and a refusal: the error path frees what it made too
	printf 'src.mp4\n\nmany\n\na\n\nb\n' > bad.txt
	run --separate-stderr vg pr-parse bad.txt
	[ "$status" = 2 ]
}

@test "valgrind: pr-submit renders a video against the stand-in, pr-combine joins it, pr-report shows it" {
	start_fast_comfy
	submit_videos 50
	run --separate-stderr timeout 300 "${VG[@]}" \
	    pr-submit --server "$COMFY" --state state --out out --wait-server 10 < jobs.jsonl
	assert_success
	printf '%s\n' "$output" > results.jsonl
	jq -e -s 'length == 4 and all(.status == "success")' results.jsonl
	run --separate-stderr vg pr-combine --state state --out out < results.jsonl
	assert_success
	printf '%s\n' "$output" > finals.jsonl
	jq -e -s 'length == 1 and .[0].status == "success"' finals.jsonl
	cp results.jsonl state/
	run --separate-stderr vg pr-report --state state --out out < finals.jsonl
	assert_success
	printf '%s\n' "$output" | jq -e -s 'length == 2 and (.[0].seams | length) == 1'
}
