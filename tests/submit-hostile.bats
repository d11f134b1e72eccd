#!/usr/bin/env bats
# A server that lies about its outputs: names with ../, absolute paths,
# 4 KB names, another folder type. pr-submit fetches what it collects
# into the path the job gives, never one the server reports, so whatever
# the answer, nothing is written outside --out, no file is left at the
# job's path unless it verified, and the job fails with a reason instead
# of passing.

load helper
load submit

# Every file under the test folder but the stand-in's root, as a sorted
# list, to compare before and after.
files_outside_out() {
	find "$BATS_TEST_TMPDIR" -path "$BATS_TEST_TMPDIR/comfy" -prune -o \
	    -path "$BATS_TEST_TMPDIR/out" -prune -o -path "$BATS_TEST_TMPDIR/state" -prune -o \
	    -type f -print | grep -v -e '/comfy\.\(out\|err\)$' -e '/before$' -e '/after$' \
	    -e '/\.last-status$' -e '/separate-stderr-' | sort
}

@test "a server that lies about where its outputs are: nothing written outside --out, the job fails clearly" {
	start_fast_comfy
	submit_videos 25
	long=$(printf 'x%.0s' $(seq 4000))
	for lie in '{"filename": "../../../../../escaped.latent"}' \
	    '{"subfolder": "../../../.."}' \
	    '{"filename": "'"$BATS_TEST_TMPDIR"'/abs.latent"}' \
	    '{"filename": "'"$long"'.latent"}' \
	    '{"type": "../input"}' \
	    '{"type": "input", "subfolder": "prompt-runner/a", "filename": "src.mp4"}'; do
		rm -rf state out
		files_outside_out > before
		post /fake/faults/clear '' > /dev/null
		post /fake/faults "$(jq -c '. + {kind: "lie", node: "SaveLatent"}' <<< "$lie")" > /dev/null
		[ "$(last_status)" = 200 ]
		submit
		[ "$status" = 1 ] || { echo "$lie: exit $status" >&2; false; }
		files_outside_out > after
		diff before after
		[ ! -e out/latents/a/job_001.latent ]
		[ -z "$(find out -type f)" ]
		jq -e -s '.[0].status == "failed" and (.[0].error.message | test("cannot collect|no output file"))
		          and .[1].status == "skipped"' <<< "$output" > /dev/null ||
		    { echo "$lie:" >&2; jq -c '{id, status, error}' <<< "$output" >&2; false; }
	done
	[ ! -e "$BATS_TEST_TMPDIR/abs.latent" ]
	[ ! -e /escaped.latent ]
	[ -z "$(find /tmp -xdev -name escaped.latent 2> /dev/null | head -1)" ]
}
