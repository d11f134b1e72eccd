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
	    -e '/\.last-status$' -e '/separate-stderr-' -e '/\.rss$' -e '/fstate\.json$' | sort
}

# arm_lie FIELDS [raw]: SaveLatent's outputs reported with FIELDS (a JSON
# object) instead of the truth, the only fault armed; with raw the values
# are JSON text sent as they are (a NUL, a name that is no string).
arm_lie() {
	post /fake/faults/clear '' > /dev/null
	# ComfyUI's cache would replay the last lie: POST /free empties it
	post /free '{"free_memory": true}' > /dev/null
	post /fake/faults "$(jq -c --argjson raw "$([ "${2:-}" = raw ] && echo true || echo false)" \
	    '. + {kind: "lie", node: "SaveLatent"} + (if $raw then {raw: true} else {} end)' <<< "$1")" > /dev/null
	[ "$(last_status)" = 200 ]
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
		arm_lie "$lie"
		submit
		[ "$status" = 1 ] || { echo "$lie: exit $status" >&2; false; }
		fake_state fstate.json
		jq -e '.faults == []' fstate.json > /dev/null || { echo "$lie: not told" >&2; false; }
		files_outside_out > after
		diff before after
		[ ! -e out/latents/a/job_001.latent ]
		[ -z "$(find out -type f)" ]
		jq -e -s '.[0].status == "failed" and (.[0].error.message | test("cannot collect|no output file|is not whole"))
		          and .[1].status == "skipped"' <<< "$output" > /dev/null ||
		    { echo "$lie:" >&2; jq -c '{id, status, error}' <<< "$output" >&2; false; }
	done
	[ ! -e "$BATS_TEST_TMPDIR/abs.latent" ]
	[ ! -e /escaped.latent ]
	[ -z "$(find /tmp -xdev -name escaped.latent 2> /dev/null | head -1)" ]
}

# ---- a server that lies about sizes: bodies, files and messages too big
# or endless. Whatever it sends, pr-submit ends within its bounds, its
# memory stays flat, nothing lands outside --out, the job fails naming
# what was too big (or succeeds when the lie was told once), dependants
# are skipped, and a rerun once the server behaves finishes the job
# without rendering anything twice.

# hostile [OPTIONS...]: pr-submit as submit runs it, under GNU time and
# timeout: $status, $output and $stderr as bats' run sets them, $secs
# (whole seconds, rounded up) and $rss (peak KiB, pr-submit or the
# largest child it waited for: ffprobe in preflight, ffmpeg).
hostile() {
	local t0=$EPOCHREALTIME
	[ -x /usr/bin/time ] || skip "no /usr/bin/time (GNU time, installed by ./setup) to measure peak RSS"
	run --separate-stderr /usr/bin/time -o .rss -f %M timeout "${SUBMIT_TIMEOUT:-60}" \
	    pr-submit --server "$COMFY" --state state --out out --wait-server 10 "$@" < jobs.jsonl
	secs=$(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { s = b - a; printf "%d", s == int(s) ? s : int(s) + 1 }')
	rss=$(tail -n 1 .rss)
	echo "# exit $status in $secs s, peak RSS $rss KiB" >&3
}

# bounded SECONDS: pr-submit ended by itself, within SECONDS (three times
# that under the sanitizers), and its peak RSS stayed under 100 MiB (not
# checked under the sanitizers: their shadow memory inflates it).
bounded() {
	local limit=$1
	[ -z "${PR_SANITIZED:-}" ] || limit=$((limit * 3))
	if [ "$status" = 124 ]; then
		printf 'pr-submit hung (killed by timeout)\n%s\n' "$stderr" >&2
		return 1
	fi
	[ "$secs" -le "$limit" ] || { echo "took $secs s, more than $limit" >&2; return 1; }
	[ -n "${PR_SANITIZED:-}" ] || [ "$rss" -lt 102400 ] ||
	    { echo "peak RSS $rss KiB" >&2; return 1; }
}

# nothing_outside: no file appeared outside --out (and the state) since
# `files_outside_out > before`, and no partial download is left in out.
nothing_outside() {
	files_outside_out > after
	diff before after
	[ -z "$(find out -name '*.part.*' -o -name '*.tmp.*')" ]
}

# failed_clearly REGEX: the first job failed with a message matching
# REGEX, the second (its dependant) was skipped.
failed_clearly() {
	echo "# $(jq -rs '.[0].error.message' <<< "$output")" >&3
	jq -e -s --arg re "$1" '.[0].status == "failed" and (.[0].error.message | test($re))
	    and .[1].status == "skipped"' <<< "$output" > /dev/null || {
		jq -c '{id, status, error}' <<< "$output" >&2
		printf -- '-- stderr --\n%s\n' "$stderr" >&2
		return 1
	}
}

# rerun_clean [RUNS]: the faults cleared, a rerun finishes both jobs, and
# the stand-in ran RUNS prompts in all (default 2: each job once), one
# success per job, the very prompts the results name: nothing twice.
rerun_clean() {
	post /fake/faults/clear '' > /dev/null
	[ "$(last_status)" = 200 ]
	submit
	[ "$status" = 0 ] || { printf 'rerun: exit %s\n%s\n' "$status" "$stderr" >&2; return 1; }
	fake_state fstate.json
	jq -e -s --slurpfile st fstate.json --argjson runs "${1:-2}" '
	    length == 2 and all(.status == "success")
	    and ($st[0].runs | length) == $runs
	    and (map(.prompt_id) | sort)
	        == ($st[0].runs | map(select(.status == "success") | .prompt_id) | sort)' \
	    <<< "$output" > /dev/null || {
		jq -c '{id, status, prompt_id, error}' <<< "$output" >&2
		jq -c '.runs[] | {prompt_id, status}' fstate.json >&2
		return 1
	}
}

# hostile_setup FAULT...: the stand-in, two jobs (a HIGH pass and the LOW
# pass that needs its latent), the listing to compare with, the faults.
hostile_setup() {
	local f
	start_fast_comfy
	submit_videos 25
	files_outside_out > before
	for f in "$@"; do
		post /fake/faults "$f" > /dev/null
		[ "$(last_status)" = 200 ]
	done
}

@test "a job record whose collected or derived path leaves --out is refused before anything is sent" {
	start_fast_comfy
	submit_videos 25
	cp jobs.jsonl good.jsonl
	tried=0
	for path in ../escaped.latent /tmp/abs.latent latents/./a.latent latents//a.latent latents/; do
		for list in collect derive; do
			jq -c --arg p "$path" --arg l "$list" \
			    'if input_line_number == 1 and (.[$l] | length) > 0 then .[$l][0].path = $p else . end' \
			    good.jsonl > jobs.jsonl
			cmp -s good.jsonl jobs.jsonl && continue
			tried=$((tried + 1))
			submit
			assert_failure 2
			assert_stderr_match "^pr-submit: <stdin>:1: $list: path \"[^\"]*\" is "
			[ ! -e state/journal.jsonl ] || ! grep -q '"ev":"submit"' state/journal.jsonl
		done
	done
	[ "$tried" -ge 5 ]
	# Nothing reached the server.
	fake_state
	jq -e '[.posts[] | select(.path == "/prompt")] | length == 0' fake-state.json
}

@test "/history answers 300 MB: the job fails naming the limit, memory stays flat; a rerun collects it" {
	hostile_setup '{"kind": "http", "route": "/history/*", "bytes": 300000000, "times": 0}'
	hostile
	[ "$status" = 1 ]
	bounded 20
	nothing_outside
	failed_clearly '^cannot read the history of prompt [-0-9a-f]+: GET http://[^ ]+/history/[-0-9a-f]+: response larger than 67108864 bytes; rerun to collect$'
	# not journaled as failed: the rerun collects it without rendering it again
	run ! journal_has failed
	rerun_clean
}

@test "/history never ends: the job fails within seconds; a rerun collects it" {
	hostile_setup '{"kind": "http", "route": "/history/*", "endless": true, "times": 0}'
	hostile
	[ "$status" = 1 ]
	bounded 20
	nothing_outside
	failed_clearly 'response larger than 67108864 bytes; rerun to collect$'
	rerun_clean
}

@test "/history never ends once, slowly: asked again, the job succeeds" {
	hostile_setup '{"kind": "http", "route": "/history/*", "endless": true, "rate": 100000}'
	hostile --transfer-timeout 2
	[ "$status" = 0 ]
	bounded 20
	nothing_outside
	# the endless answer took its 2 s (the bound of API calls too, when
	# shorter than 300 s), the next one was read
	[ "$secs" -ge 2 ]
	jq -e -s 'length == 2 and all(.status == "success")' <<< "$output" > /dev/null
	fake_state fstate.json
	jq -e '.faults == [] and (.runs | length) == 2' fstate.json > /dev/null
}

@test "/queue never ends: the server is given up after --wait-server, nothing is lost" {
	hostile_setup '{"kind": "http", "route": "/queue", "method": "GET", "endless": true, "times": 0}'
	hostile --wait-server 3
	[ "$status" = 3 ]
	bounded 20
	nothing_outside
	[[ $stderr == *"/queue: response larger than 67108864 bytes"* ]]
	jq -e -s '.[1].status != "success"' <<< "$output" > /dev/null
	rerun_clean
}

@test "/object_info of 300 MB, /system_stats that never ends: refused at once, nothing submitted" {
	hostile_setup '{"kind": "http", "route": "/object_info", "bytes": 300000000}'
	hostile --wait-server 30
	[ "$status" = 3 ]
	bounded 10
	[[ $stderr == *"/object_info: response larger than 67108864 bytes"* ]]
	post /fake/faults '{"kind": "http", "route": "/system_stats", "endless": true}' > /dev/null
	# an answer too big is no server still starting: not waited for
	hostile --wait-server 30
	[ "$status" = 3 ]
	bounded 10
	[[ $stderr == *"/system_stats: response larger than 67108864 bytes"* ]]
	nothing_outside
	fake_state fstate.json
	jq -e '.runs == [] and .faults == []' fstate.json > /dev/null
	rerun_clean
}

@test "the answer to POST /prompt never ends: the queue says it was queued, it runs once" {
	hostile_setup '{"kind": "http", "route": "/prompt", "method": "POST", "endless": true}'
	hostile
	[ "$status" = 0 ]
	bounded 20
	nothing_outside
	[[ $stderr == *"POST /prompt: POST http"*"response larger than"*"checking the queue"* ]]
	fake_state fstate.json
	jq -e -s --slurpfile st fstate.json 'all(.status == "success")
	    and ($st[0].runs | length) == 2 and $st[0].faults == []' <<< "$output" > /dev/null
	# one prompt id per job: never sent again under another
	[ "$(jq -r 'select(.ev == "submit") | .prompt_id' state/journal.jsonl | sort -u | wc -l)" = 2 ]
}

@test "/view never ends: the download stops at --max-output-size, no disk filled; a rerun collects it" {
	hostile_setup '{"kind": "http", "route": "/view", "method": "GET", "endless": true, "times": 0}'
	hostile --max-output-size 20M
	[ "$status" = 1 ]
	bounded 20
	nothing_outside
	failed_clearly '^cannot collect latents/a/job_001\.latent: GET [^ ]+/view\?[^ ]+: body larger than 20971520 bytes \(--max-output-size\); rerun to collect$'
	[ -z "$(find out -type f)" ]
	rerun_clean
}

@test "/view trickles for ever: the download ends at --transfer-timeout; a rerun collects it" {
	hostile_setup '{"kind": "http", "route": "/view", "method": "GET", "endless": true, "rate": 50000, "times": 0}'
	hostile --transfer-timeout 2
	[ "$status" = 1 ]
	bounded 15
	nothing_outside
	failed_clearly '^cannot collect latents/a/job_001\.latent: GET [^ ]+: still going after 2 s \(--transfer-timeout\); rerun to collect$'
	[ -z "$(find out -type f)" ]
	rerun_clean
}

@test "/view sends far more than its Content-Length: only what was promised is kept, the job succeeds" {
	hostile_setup '{"kind": "http", "route": "/view", "method": "GET", "endless": true, "length": "answer", "times": 0}'
	hostile
	[ "$status" = 0 ]
	bounded 20
	nothing_outside
	jq -e -s 'length == 2 and all(.status == "success")' <<< "$output" > /dev/null
	# byte for byte what the stand-in wrote, nothing of what followed
	cmp out/latents/a/job_001.latent "$(find "$COMFY_ROOT/output" -name '*.latent' | head -1)"
}

@test "/view without Content-Length, 300 MB of a 'latent': cut off at --max-output-size, refused" {
	hostile_setup '{"kind": "http", "route": "/view", "method": "GET", "bytes": 300000000, "length": false, "times": 0}'
	hostile --max-output-size 64M
	[ "$status" = 1 ]
	bounded 20
	nothing_outside
	failed_clearly 'body larger than 67108864 bytes \(--max-output-size\); rerun to collect$'
	rerun_clean
}

@test "a NUL in an output's name (\\u0000) or a name that is no string: the job fails, nothing written" {
	start_fast_comfy
	submit_videos 25
	for lie in '{"filename": "\"job_001\\u0000/../../../../escaped.latent\""}' \
	    '{"subfolder": "\"latents\\u0000/../../..\""}' \
	    '{"filename": "null"}' '{"filename": "7", "type": "[\"output\"]"}'; do
		rm -rf state out
		files_outside_out > before
		arm_lie "$lie" raw
		hostile
		[ "$status" = 1 ] || { echo "$lie: exit $status" >&2; false; }
		bounded 20
		nothing_outside
		case $lie in
		*u0000*) re='not JSON: .u0000 .NUL. in a string is not supported; rerun to collect$' ;;
		*) re='^node [0-9]+ produced no output file' ;;
		esac
		failed_clearly "$re" || { echo "$lie" >&2; false; }
		fake_state fstate.json
		jq -e '.faults == []' fstate.json > /dev/null
	done
	[ ! -e /escaped.latent ]
	[ -z "$(find /tmp -xdev -name escaped.latent 2> /dev/null | head -1)" ]
}

@test "a WebSocket message of 65 MiB: the socket is dropped and reconnected, the job succeeds" {
	hostile_setup '{"kind": "ws_huge", "node": "SaveLatent", "prompt": 1}'
	# The node goes on 3 s after the message: it is whole on the socket
	# while the job still runs, even under the sanitizers.
	post /fake/config '{"class_time": {"SaveLatent": 3}}' > /dev/null
	hostile
	[ "$status" = 0 ]
	bounded 20
	nothing_outside
	[[ $stderr == *"socket down (message over 64 MiB); reconnecting"* ]]
	fake_state fstate.json
	jq -e -s --slurpfile st fstate.json 'length == 2 and all(.status == "success")
	    and ($st[0].runs | length) == 2 and $st[0].faults == []' <<< "$output" > /dev/null
}

@test "an execution error of 67 MB (socket and history): the job fails naming the limit; a rerun renders it" {
	hostile_setup '{"kind": "exec_error", "node": "SaveLatent", "prompt": 1, "bytes": 67200000}'
	hostile
	[ "$status" = 1 ]
	bounded 30
	nothing_outside
	# (the socket drops the message, or history is read before it is
	# whole: which comes first is a matter of timing)
	failed_clearly 'cannot read the history of prompt [-0-9a-f]+: GET [^ ]+: response larger than 67108864 bytes; rerun to collect$'
	# The entry stays too big for as long as the server keeps it; once it
	# is gone (cleared here, as a restart does) the rerun renders the job
	# again, under a new prompt id: the error is not run twice, nor any
	# success.
	post /history '{"clear": true}' > /dev/null
	rerun_clean 3
}
