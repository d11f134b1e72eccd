#!/usr/bin/env bats
# Hostile input (issue 9): prompt files, workflows, rules files and JSON
# Lines that are malformed in every way we could think of. Each must give
# one clear line naming the file, line and field, exit 2 and write
# nothing (no record on stdout, no state or output folder), and never
# crash, hang or eat memory without bound. What the suites of the tools
# already check (parse.bats, plan.bats, patch.bats, ...) is not repeated.

load helper
load submit

# refused TOOL [ARGS...]: runs the tool (stdin as given, at most 60 s;
# the tool function below bounds its own) expecting bad input: status 2,
# nothing on stdout, exactly one line on stderr, left in $stderr.
refused() {
	if declare -F "$1" > /dev/null; then
		run --separate-stderr "$@"
	else
		run --separate-stderr timeout 60 "$@"
	fi
	[ "$status" -eq 2 ] || { echo "$1: status $status, stderr: $stderr"; return 1; }
	[ -z "$output" ] || { echo "$1: stdout not empty: ${output:0:200}"; return 1; }
	[ "${#stderr_lines[@]}" -eq 1 ] || { echo "$1: not one line: $stderr"; return 1; }
}

# refuses WANT TOOL [ARGS...]: refused, with exactly that message.
refuses() {
	local want=$1
	shift
	refused "$@"
	[ "$stderr" = "$want" ] || { printf 'got:  %s\nwant: %s\n' "$stderr" "$want"; return 1; }
}

# raw FIELD TEXT: the record on stdin with FIELD (a jq path) set to the
# JSON text as written: jq itself would turn 1e999 and 2^63 into doubles.
raw() {
	jq -c "$1 = \"@RAW@\"" | sed "s|\"@RAW@\"|$2|"
}

# --- JSON Lines: every tool that reads records on stdin ---------------------

TOOLS=(pr-plan pr-patch pr-submit pr-combine pr-upload pr-shutdown)

# One good record for each tool, so a bad one after it shows that nothing
# is written before the whole input is read.
good_record() {
	case $1 in
	pr-plan) echo '{"video":"a","input_video":"in.mp4","total_frames":10,"positive":"p","negative":"n"}' ;;
	pr-patch) render_job a 1 high 0 ;;
	pr-submit) render_job a 1 high 0 | pr-patch --workflows "$REPO/workflows" --no-state ;;
	pr-combine) echo '{"id":"a/job_002","video":"a","kind":"render","pass":"low","chunk":0,"start":0,"status":"success","keep":[0,97],"files":[]}' ;;
	pr-upload) echo '{"video":"a","status":"success","path":"final/a_final.mp4"}' ;;
	pr-shutdown) echo '{"path":"final/a_final.mp4","status":"uploaded","verified":true,"size":1}' ;;
	esac
}

# tool NAME: runs the tool the way the pipeline does, with its state and
# output in st/ and out/, pointed at servers that are not there (port 9):
# bad input must stop it before it looks for any.
tool() {
	local t=$1
	shift
	case $t in
	pr-plan) timeout 60 pr-plan "$@" ;;
	pr-patch) timeout 60 pr-patch --workflows "$REPO/workflows" --state st "$@" ;;
	pr-submit)
		timeout 60 pr-submit --server http://127.0.0.1:9 --wait-server 1 --state st \
		    --out out "$@" ;;
	pr-combine) timeout 60 pr-combine --state st --out out "$@" ;;
	pr-upload)
		STORAGE_EMULATOR_HOST=127.0.0.1:9 timeout 60 pr-upload --dest gs://bkt/pre \
		    --state st --out out "$@" ;;
	pr-shutdown)
		echo '{"video":"a","status":"success","path":"final/a_final.mp4","size":1}' > finals.jsonl
		RUNPOD_POD_ID=pod1 RUNPOD_API_KEY= RUNPOD_API_URL=http://127.0.0.1:9/v1 \
		    RUNPOD_GRAPHQL_URL=http://127.0.0.1:9/graphql \
		    timeout 60 pr-shutdown --expect finals.jsonl --dry-run --timeout 1 "$@" ;;
	esac
}

# each_tool_refuses LINE WANT: for every tool, a good record, then LINE
# (printf %b, so \0 and \xff can be given): exit 2, nothing written, and
# the message "TOOL: WANT".
each_tool_refuses() {
	local line=$1 want=$2 t
	for t in "${TOOLS[@]}"; do
		rm -rf st out
		{ good_record "$t"; printf '%b' "$line"; } > in
		refuses "$t: $want" tool "$t" < in
		[ ! -e st ] && [ ! -e out ] || { echo "$t: left st/ or out/"; return 1; }
	done
}

@test "JSON Lines: a last line cut mid-object, without its newline" {
	each_tool_refuses '{"id":"a/job_003","video":"a","kind":"ren' \
	    '<stdin>:2: column 38: invalid JSON: unterminated string'
	each_tool_refuses '{"id":"a/job_003","video":"a",' \
	    '<stdin>:2: column 31: invalid JSON: expected a string key in object'
	each_tool_refuses '{"id":"a/job_003","video":"a"' \
	    "<stdin>:2: column 30: invalid JSON: expected ',' or '}' in object"
}

@test "JSON Lines: a line that is not an object: array, null, string, number, true" {
	each_tool_refuses '[{"id":"a/job_003"}]\n' '<stdin>:2: expected a JSON object, found array'
	each_tool_refuses 'null\n' '<stdin>:2: expected a JSON object, found null'
	each_tool_refuses '"a/job_003"\n' '<stdin>:2: expected a JSON object, found string'
	each_tool_refuses '1e999\n' '<stdin>:2: expected a JSON object, found number'
	each_tool_refuses 'true\n' '<stdin>:2: expected a JSON object, found boolean'
}

@test "JSON Lines: NUL bytes, bytes that are not UTF-8, two records on a line" {
	each_tool_refuses '{"video":"a\0"}\n' '<stdin>:2: NUL byte in line'
	each_tool_refuses '{"video":"caf\xe9"}\n' '<stdin>:2: column 14: invalid JSON: invalid UTF-8 in string'
	each_tool_refuses '{"video":"\xc0\xaf"}\n' '<stdin>:2: column 11: invalid JSON: invalid UTF-8 in string'
	each_tool_refuses '{"video":"\xed\xa0\x80"}\n' '<stdin>:2: column 11: invalid JSON: invalid UTF-8 in string'
	each_tool_refuses '\xff{}\n' '<stdin>:2: column 1: invalid JSON: invalid UTF-8'
	each_tool_refuses '{"a":"\\ud800"}\n' '<stdin>:2: column 7: invalid JSON: unpaired surrogate in \u escape'
	each_tool_refuses '{} {}\n' '<stdin>:2: column 4: invalid JSON: unexpected text after the JSON value'
}

@test "JSON Lines: blank and CRLF lines count in the line numbers" {
	# a file edited on Windows: CRLF ends, blank lines among the records
	each_tool_refuses '\r\n  \r\n\t\n[]\r\n' '<stdin>:5: expected a JSON object, found array'
}

@test "JSON Lines: an object nested 100 000 levels deep is refused, not recursed into" {
	awk 'BEGIN { for (i = 0; i < 100000; i++) printf "{\"a\":"; print "1" }' > deep
	each_tool_refuses "$(cat deep)\n" '<stdin>:2: column 2561: invalid JSON: nested deeper than 512 levels'
}

@test "JSON Lines: {} names the first field each tool needs" {
	for t in "${TOOLS[@]}"; do
		printf '\n{}\n' > in
		case $t in
		pr-plan) want='<stdin>:2: field "video" is missing (expected a string)' ;;
		pr-patch) want='<stdin>:2: field "id": expected a string like "clipA/job_001", found nothing' ;;
		pr-submit) want='<stdin>:2: job has no text id' ;;
		pr-combine) want='<stdin>:2: id: missing or not a string' ;;
		pr-upload) want='<stdin>:2: path: missing (which file to upload?)' ;;
		pr-shutdown)
			# an upload record that proves nothing: the pod is not stopped
			run --separate-stderr tool pr-shutdown < in
			assert_equal "$status" 1
			assert_equal "$stderr" 'pr-shutdown: not stopping pod pod1: 1 of 1 finals have no verified upload: final/a_final.mp4'
			continue ;;
		esac
		refuses "$t: $want" tool "$t" < in
	done
}

@test "JSON Lines: a line over 256 MiB is refused without reading more of it" {
	local t
	for t in "${TOOLS[@]}"; do
		rm -rf st out
		refuses "$t: <stdin>:2: line longer than 256 MiB" tool "$t" < <(good_record "$t"
		    printf '{"video":"'
		    head -c $((257 << 20)) /dev/zero | tr '\0' x)
		[ ! -e st ] && [ ! -e out ]
	done
}

@test "JSON Lines: a 64 MiB prompt record is planned, its prompt whole in every job" {
	{
		printf '{"video":"a","input_video":"in.mp4","total_frames":10,"negative":"n","positive":"'
		head -c $((64 << 20)) /dev/zero | tr '\0' x
		printf '"}\n'
	} > big.jsonl
	pr-plan < big.jsonl | wc -lc > counts
	# 4 jobs (2 chunks of 9 and 1 frame), each with the 64 MiB prompt once
	read -r jobs bytes < counts
	[ "$jobs" -eq 4 ]
	[ "$bytes" -gt $((4 * (64 << 20))) ]
}

# --- pr-plan -------------------------------------------------------------------

# A prompt record with a field "deep" nested $1 levels.
deep_prompt() {
	awk -v n="$1" 'BEGIN { printf "{\"video\":\"a\",\"input_video\":\"x\",\"total_frames\":5,\"positive\":\"\",\"negative\":\"\",\"deep\":"
	    for (i = 0; i < n; i++) printf "{\"a\":"; printf "1"; for (i = 0; i < n; i++) printf "}"; print "}" }'
}

@test "pr-plan: a pass-through field too deep for the next tool is refused, naming it" {
	deep_prompt 505 > in
	refuses 'pr-plan: <stdin>:1: field "deep" is nested 505 levels deep; a field passed through to the jobs may nest at most 504' \
	    pr-plan < in
	# 504 levels fit all the way: into a workflow input by pr-patch, and
	# read by pr-submit, which then finds no server (status 3, not 2)
	workflows '{"1": {"class_type": "X", "inputs": {"a": 1}}}' '{"rules": [{"node": "1", "set": {"a": "${deep}"}}]}'
	deep_prompt 504 | pr-plan | pr-patch --workflows wf --no-state > jobs.jsonl
	[ "$(wc -l < jobs.jsonl)" -eq 2 ]
	run --separate-stderr timeout 60 pr-submit --server http://127.0.0.1:9 --wait-server 1 \
	    --state st --out out < jobs.jsonl
	assert_equal "$status" 3
	[[ ${stderr_lines[0]} == 'pr-submit: GET http://127.0.0.1:9/system_stats: '* ]]
}

# --- pr-patch: job records --------------------------------------------------------

@test "pr-patch: pass, chunk and n of the wrong type are refused, not matched by no rule" {
	local f v want
	while IFS='|' read -r f v want; do
		render_job a 1 high 0 | raw "$f" "$v" > in
		rm -rf st
		refuses "pr-patch: <stdin>:1: $want" pr-patch --workflows "$REPO/workflows" --state st < in
		[ ! -e st ]
	done <<'EOF'
.pass|5|field "pass": expected "high" or "low", found 5
.pass|"HIGH"|field "pass": expected "high" or "low", found "HIGH"
.pass|null|field "pass": expected "high" or "low", found null
.pass|["high"]|field "pass": expected "high" or "low", found array
.chunk|"0"|field "chunk": expected a whole number from 0, found "0"
.chunk|-1|field "chunk": expected a whole number from 0, found -1
.chunk|0.5|field "chunk": expected a whole number from 0, found 0.5
.chunk|1e999|field "chunk": expected a whole number from 0, found 1e999
.n|0|field "n": expected a whole number from 1, found 0
.n|99999999999999999999999999999999999999999999|field "n": expected a whole number from 1, found 9999999999999999999999999999999999999999...
EOF
}

# --- workflows and rules files -------------------------------------------------------

# wf/ with workflow text $1 and rules text $2 (default: no rules).
workflows() {
	rm -rf wf && mkdir wf
	printf '%s\n' "$1" > wf/prompt.json
	printf '%s\n' "${2:-{\"rules\": []\}}" > wf/prompt.rules.json
}

tiny_job() {
	echo '{"id":"v/job_001","video":"v","kind":"render","n":1,"pass":"high","chunk":0,"vars":{"video":"v","frames":97}}'
}

# patch_refuses WANT: pr-patch on wf/ and one job refuses with WANT, and
# writes no state.
patch_refuses() {
	rm -rf st
	refuses "pr-patch: $1" pr-patch --workflows wf --state st < <(tiny_job)
	[ ! -e st ]
}

@test "workflows of the wrong shape: each refused naming the file, line and node" {
	local w want
	while IFS='|' read -r w want; do
		workflows "$w"
		patch_refuses "$want"
	done <<'EOF'
[]|wf/prompt.json: a workflow must be a JSON object, found array
"prompt"|wf/prompt.json: a workflow must be a JSON object, found string
{}|wf/prompt.json: the workflow has no nodes
{"1": null}|wf/prompt.json: node "1": expected an object, found null
{"1": [1, 2]}|wf/prompt.json: node "1": expected an object, found array
{"1": {"class_type": 5, "inputs": {}}}|wf/prompt.json:1: node "1": class_type must be the name of a node class, found number
{"1": {"class_type": "", "inputs": {}}}|wf/prompt.json:1: node "1": class_type must be the name of a node class, found an empty string
{"1": {"class_type": "X", "inputs": []}}|wf/prompt.json:1: node "1" (X) has no "inputs" object
{"1": {"class_type": "X", "inputs": {}}, "2": {"class_type": "X"}}|wf/prompt.json:1: node "2" (X) has no "inputs" object
{"1": {"class_type": "X", "inputs": {}}, "1": {"class_type": "Y", "inputs": {}}}|wf/prompt.json:1: column 81: invalid JSON: duplicate key "1" in the object that starts on line 1
EOF
}

@test "a workflow wrapped in a saved request or a dry-run file says which member to save" {
	workflows '{"client_id": "c", "prompt": {"1": {"class_type": "X", "inputs": {}}}}'
	patch_refuses 'wf/prompt.json: the API workflow is inside "prompt" (a saved request or dry-run file?); save that member alone, for example with jq .prompt'
	need_fixtures
	workflows "$(cat "$FIXTURES/dry-run/session_20250812_200848/workflows/workflow_001_high_noise_render.json")"
	patch_refuses 'wf/prompt.json: the API workflow is inside "workflow" (a saved request or dry-run file?); save that member alone, for example with jq .workflow'
	# saved alone, it is patched
	jq .workflow "$FIXTURES/dry-run/session_20250812_200848/workflows/workflow_001_high_noise_render.json" > wf/prompt.json
	run pr-patch --workflows wf --no-state < <(tiny_job)
	assert_success
}

@test "a UI-format workflow of the newer editor (links as objects, subgraphs) is refused with the hint" {
	# the shape ComfyUI's editor saves with "version": 1 (patch.bats has the 0.4 one)
	workflows '{"id": "6f0e", "revision": 0, "last_node_id": 2, "last_link_id": 1,
	  "nodes": [{"id": 1, "type": "INTConstant", "pos": [0, 0], "size": [200, 60], "flags": {},
	    "order": 0, "mode": 0, "inputs": [], "outputs": [{"name": "value", "type": "INT", "links": [1]}],
	    "properties": {"Node name for S&R": "INTConstant"}, "widgets_values": [97]}],
	  "links": [{"id": 1, "origin_id": 1, "origin_slot": 0, "target_id": 2, "target_slot": 0, "type": "INT"}],
	  "groups": [], "definitions": {"subgraphs": []}, "config": {}, "extra": {"ds": {"scale": 1, "offset": [0, 0]}},
	  "version": 1}'
	patch_refuses 'wf/prompt.json: this is a UI-format workflow (it has "nodes" and "links"); in ComfyUI export it with Save (API)'
}

@test "a link cycle, made by the workflow or by a rule, is named node by node" {
	local nodes='"1": {"class_type": "ImageInvert", "inputs": {"image": ["3", 0]}},
	  "3": {"class_type": "ImageInvert", "inputs": {"image": ["1", 0]}},
	  "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "x"}}'
	workflows "{$nodes}"
	patch_refuses 'wf/prompt.json: job v/job_001: nodes link in a cycle (1 -> 3 -> 1), which ComfyUI refuses'
	# a node that takes its own output
	workflows '{"1": {"class_type": "ImageInvert", "inputs": {"image": ["1", 0]}}}'
	patch_refuses 'wf/prompt.json: job v/job_001: nodes link in a cycle (1 -> 1), which ComfyUI refuses'
	# a rule that closes a cycle the base workflow did not have
	workflows '{"1": {"class_type": "LoadImage", "inputs": {"image": "a.png"}},
	  "2": {"class_type": "ImageInvert", "inputs": {"image": ["1", 0]}},
	  "3": {"class_type": "ImageInvert", "inputs": {"image": ["2", 0]}}}' \
	    '{"rules": [{"node": "2", "set": {"image": ["3", 0]}}]}'
	patch_refuses 'wf/prompt.json: job v/job_001: nodes link in a cycle (2 -> 3 -> 2), which ComfyUI refuses'
	# --list-nodes only lists: it follows no link
	run pr-patch --list-nodes wf/prompt.json
	assert_success
	assert_equal "${#lines[@]}" 3
}

@test "a string where the node wants an INT passes pr-patch and stops pr-submit's preflight" {
	start_fast_comfy
	submit_videos 25
	jq -c '.workflow["19"].inputs.value = "ninety-seven"' jobs.jsonl > bad.jsonl
	JOBS=bad.jsonl submit
	assert_equal "$status" 2
	assert_equal "$output" ""
	assert_stderr_line 'pr-submit: job a/job_001: node 19 (INTConstant): input value: Failed to convert an input value to a INT value: got "ninety-seven"'
	assert_stderr_line 'pr-submit: preflight: 2 problems found; nothing was submitted'
	fake_state
	[ "$(jq '.runs | length' fake-state.json)" -eq 0 ]
	[ -z "$(find out -type f 2> /dev/null)" ]
}

@test "workflows and rules nested 100 000 levels deep are refused with their file and column" {
	awk 'BEGIN { printf "{\"1\": {\"class_type\": \"X\", \"inputs\": {\"a\": "
	    for (i = 0; i < 100000; i++) printf "["; for (i = 0; i < 100000; i++) printf "]"; print "}}}" }' > deep.json
	workflows "$(cat deep.json)"
	patch_refuses 'wf/prompt.json:1: column 552: invalid JSON: nested deeper than 512 levels'
	refuses 'pr-patch: deep.json:1: column 552: invalid JSON: nested deeper than 512 levels' \
	    pr-patch --list-nodes deep.json
	awk 'BEGIN { printf "{\"rules\": "; for (i = 0; i < 100000; i++) printf "["; print "" }' > deep.rules
	workflows '{"1": {"class_type": "X", "inputs": {}}}' "$(cat deep.rules)"
	patch_refuses 'wf/prompt.rules.json:1: column 522: invalid JSON: nested deeper than 512 levels'
}

@test "a 50 MB workflow of 200 000 nodes is patched; one over 256 MiB and rules over 16 MiB are refused" {
	# Each node looked up once per node was a minute here (200 000^2 steps).
	# each node links to one before it, anywhere: no cycle
	awk 'BEGIN { srand(1)
	    printf "{\"1\": {\"inputs\": {\"value\": 5}, \"class_type\": \"INTConstant\", \"_meta\": {\"title\": \"LENGTH\"}}"
	    for (i = 0; i < 200000; i++)
	        printf ",\n\"n%d\": {\"inputs\": {\"text\": \"%0150d\", \"clip\": [\"%s\", 0]}, \"class_type\": \"CLIPTextEncode\", \"_meta\": {\"title\": \"t%d\"}}",
	            i, i, i ? "n" int(rand() * i) : "1", i
	    print "}" }' > big.json
	[ "$(wc -c < big.json)" -gt 50000000 ]
	workflows '{}' '{"rules": [{"title": "LENGTH", "set": {"value": "${frames}"}},
	  {"node": "n199999", "set": {"text": "changed"}}]}'
	cp big.json wf/prompt.json
	# (into a file: bats would keep 50 MB of output in a variable)
	pr-patch --workflows wf --state st < <(tiny_job) > out.jsonl
	[ "$(wc -l < out.jsonl)" -eq 1 ]
	[ "$(head -c 18 out.jsonl)" = '{"id":"v/job_001",' ]
	[ "$(tail -c 13 out.jsonl)" = '"derive":[]}' ]
	grep -q '"1":{"inputs":{"value":97}' out.jsonl
	grep -q '"n199999":{"inputs":{"text":"changed"' out.jsonl
	[ "$(grep -c '^  "n' st/v/workflows/job_001.json)" -eq 200000 ]
	truncate -s 257M wf/prompt.json
	patch_refuses 'wf/prompt.json: workflow larger than 256 MiB'
	cp big.json wf/prompt.json
	truncate -s 17M wf/prompt.rules.json
	patch_refuses 'wf/prompt.rules.json: rules file too large'
}

@test "a chain of 200 000 linked nodes is walked without recursion; closed, its cycle is named short" {
	awk 'BEGIN { printf "{\"0\": {\"class_type\": \"X\", \"inputs\": {}}"
	    for (i = 1; i < 200000; i++) printf ",\"%d\": {\"class_type\": \"X\", \"inputs\": {\"a\": [\"%d\", 0]}}", i, i - 1
	    print "}" }' > chain.json
	workflows "$(cat chain.json)"
	run pr-patch --workflows wf --no-state < <(tiny_job)
	assert_success
	sed -i 's/"0": {"class_type": "X", "inputs": {}}/"0": {"class_type": "X", "inputs": {"a": ["199999", 0]}}/' wf/prompt.json
	patch_refuses 'wf/prompt.json: job v/job_001: nodes link in a cycle (0 -> 1 -> 2 -> 3 -> ... -> 199999 -> 0, 200000 nodes), which ComfyUI refuses'
}

@test "numbers at the limits round-trip exactly; where a rule needs a number they are refused" {
	workflows '{"1": {"class_type": "X", "_meta": {"title": "N"}, "inputs": {"a": 9223372036854775808,
	  "b": -9223372036854775809, "c": 1e309, "d": -0, "e": 1.7976931348623157e308, "f": 4.9e-324,
	  "g": 1e-400, "h": 123456789012345678901234567890, "i": -1.5E-7, "j": 0}},
	  "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "x"}}}' \
	    '{"rules": [{"title": "N", "set": {"j": "${big}"}}]}'
	run pr-patch --workflows wf --no-state < <(tiny_job | raw .vars.big 1e309)
	assert_success
	assert_output --partial '"inputs":{"a":9223372036854775808,"b":-9223372036854775809,"c":1e309,"d":-0,"e":1.7976931348623157e308,"f":4.9e-324,"g":1e-400,"h":123456789012345678901234567890,"i":-1.5E-7,"j":1e309}'
	local r want
	while IFS='|' read -r r want; do
		workflows '{"1": {"class_type": "X", "inputs": {"a": 1}}, "2": {"class_type": "Y", "inputs": {"b": ["1", 0]}}}' "$r"
		refused pr-patch --workflows wf --no-state < <(tiny_job)
		[[ $stderr == "pr-patch: wf/prompt.rules.json"*"$want" ]] || { echo "$r: $stderr"; return 1; }
	done <<'EOF'
{"rules": [], "frame_multiplier": 1e309}|"frame_multiplier" must be a whole number >= 1
{"rules": [], "frame_multiplier": 9223372036854775808}|"frame_multiplier" must be a whole number >= 1
{"rules": [], "frame_multiplier": -0}|"frame_multiplier" must be a whole number >= 1
{"rules": [{"node": "2", "set": {"b": ["1", 9223372036854775808]}}]}|the output index of a link must be a whole number >= 0
{"rules": [{"node": "2", "set": {"b": ["1", 1e309]}}]}|the output index of a link must be a whole number >= 0
{"rules": [{"node": "2", "set": {"b": ["1", -1]}}]}|the output index of a link must be a whole number >= 0
EOF
}

# --- prompt files -------------------------------------------------------------------

@test "pr-parse: a 20 MB file and an endless device are refused at once, by size and type" {
	head -c 20000000 /dev/zero | tr '\0' a > huge.txt
	refuses 'pr-parse: huge.txt:1: larger than 1 MiB: not a prompt file' pr-parse huge.txt
	refuses 'pr-parse: /dev/zero: not a regular file' pr-parse /dev/zero
	refuses 'pr-parse: /dev/urandom: not a regular file' pr-parse /dev/urandom
}

@test "pr-parse: binary data names its first bad byte; with --keep-going the good file still comes out" {
	# 64 KiB of random bytes, the same every run (Perl's own drand48)
	perl -e 'srand(1); print map { chr(int(rand(256))) } 1 .. 65536' > bin.txt
	refuses 'pr-parse: bin.txt:2: byte 0xd5 is not UTF-8 (save the file as UTF-8)' pr-parse bin.txt
	write_prompt ok.txt v.mp4 9 pos neg
	run --separate-stderr pr-parse --keep-going bin.txt ok.txt
	assert_equal "$status" 1
	assert_equal "$(jq -r .video <<< "$output")" ok
	assert_equal "$stderr" 'pr-parse: bin.txt:2: byte 0xd5 is not UTF-8 (save the file as UTF-8)'
}

@test "pr-parse: UTF-16 files, with a byte order mark or without, are named as UTF-16" {
	printf '\377\376v\0.\0m\0p\0\064\0\n\0' > le.txt
	refuses 'pr-parse: le.txt:1: the file is UTF-16 (it starts with a UTF-16 byte order mark); save it as UTF-8' pr-parse le.txt
	printf '\376\377\0v\0.\0m\0p\0\064\0\n' > be.txt
	refuses 'pr-parse: be.txt:1: the file is UTF-16 (it starts with a UTF-16 byte order mark); save it as UTF-8' pr-parse be.txt
	printf 'v\0.\0m\0p\0\064\0\n\0' > nobom.txt
	refuses 'pr-parse: nobom.txt:1: NUL byte (is the file UTF-16? save it as UTF-8)' pr-parse nobom.txt
}

@test "pr-parse: more invalid UTF-8: lone continuation, cut sequence, past U+10FFFF, 5-byte, overlong 3-byte" {
	local bytes want
	while read -r bytes want; do
		printf 'v.mp4\n\n9\n\npos\n\nneg %b\n' "$bytes" > p.txt
		refuses "pr-parse: p.txt:7: byte $want is not UTF-8 (save the file as UTF-8)" pr-parse p.txt
	done <<'EOF'
\x80 0x80
\xbf\xbf 0xbf
\xe2\x82 0xe2
\xf4\x90\x80\x80 0xf4
\xf5\x80\x80\x80 0xf5
\xf8\x88\x80\x80\x80 0xf8
\xe0\x80\xaf 0xe0
\xfe 0xfe
EOF
	# a sequence cut by the end of the file
	printf 'v.mp4\n\n9\n\npos\n\nneg \xe2\x82' > cut.txt
	refuses 'pr-parse: cut.txt:7: byte 0xe2 is not UTF-8 (save the file as UTF-8)' pr-parse cut.txt
}

@test "pr-parse: 10 000 blocks: the first two are the video and frames, the last the negative" {
	awk 'BEGIN { printf "v.mp4\n\n9\n"; for (i = 0; i < 9998; i++) printf "\nblock %d\n", i }' > many.txt
	run pr-parse many.txt
	assert_success
	assert_equal "$(jq -r '[.total_frames, (.positive | split("\n\n") | length), .negative] | @tsv' <<< "$output")" \
	    "$(printf '9\t9997\tblock 9997')"
	assert_equal "$(jq -r '.positive | split("\n\n") | .[0] + "|" + .[-1]' <<< "$output")" 'block 0|block 9996'
}

@test "pr-parse: frame counts past 64 bits, hex, -0, grouped digits and other digits are refused" {
	local frames want
	while IFS='|' read -r frames want; do
		write_prompt p.txt v.mp4 "$frames" pos neg
		refuses "pr-parse: p.txt:3: $want" pr-parse p.txt
	done <<'EOF'
18446744073709551616|total frames 18446744073709551616 is above the limit of 100000 (--max-frames)
99999999999999999999999|total frames 99999999999999999999999 is above the limit of 100000 (--max-frames)
0x10|total frames "0x10" is not a whole number
-0|total frames "-0" is not a whole number
+0|total frames "+0" is not a whole number
1_000|total frames "1_000" is not a whole number
1 000|total frames "1 000" is not a whole number
1,000|total frames "1,000" is not a whole number
٥٠٠|total frames "٥٠٠" is not a whole number
5 |total frames "5 " is not a whole number
EOF
}

@test "pr-parse: an unreadable file and a symlink loop name the file" {
	ln -s loop-b.txt loop-a.txt
	ln -s loop-a.txt loop-b.txt
	refuses 'pr-parse: loop-a.txt: Too many levels of symbolic links' pr-parse loop-a.txt
	[ "$(id -u)" -ne 0 ] || skip "runs as root, and root reads a file of mode 000"
	write_prompt locked.txt v.mp4 9 pos neg
	chmod 000 locked.txt
	refuses 'pr-parse: locked.txt: Permission denied' pr-parse locked.txt
}

# --- fields the tools after pr-plan rely on --------------------------------------

@test "pr-combine: keep as an object, a pass that is neither, a status that is not a string" {
	local f v want
	while IFS='|' read -r f v want; do
		good_record pr-combine | raw "$f" "$v" > in
		rm -rf st out
		refuses "pr-combine: <stdin>:1: $want" pr-combine --state st --out out < in
		[ ! -e st ] && [ ! -e out ]
	done <<'EOF'
.keep|{"from": 0, "to": 97}|keep: expected [from, to) with 0 <= from <= to
.keep|[0, 1e999]|keep: expected [from, to) with 0 <= from <= to
.pass|"mid"|pass: expected "high" or "low"
.status|5|status: expected a string
.status|null|status: expected a string
.chunk|9223372036854775808|chunk: expected a non-negative integer
EOF
}

@test "pr-upload: paths ending in /, with control characters or line breaks, stay one quoted line" {
	local p want
	while IFS='|' read -r p want; do
		jq -nc --arg p "$p" '{video: "a", status: "success", path: $p}' > in
		rm -rf st out
		refuses "pr-upload: <stdin>:1: path: $want" tool pr-upload < in
		[ ! -e st ]
	done < <(printf '%s\n' 'final/|"final/": ends with "/" (a folder, not a file)' \
	    "$(printf 'a\033[2Jb.mp4')|\"a\\u001b[2Jb.mp4\": has a control character" \
	    "$(printf 'a\tb.mp4')|\"a\\tb.mp4\": has a control character")
	jq -nc '{video: "a", status: "success", path: "a\nb.mp4"}' > in
	refuses 'pr-upload: <stdin>:1: path: "a\nb.mp4": has a line break' tool pr-upload < in
	jq -nc --arg p "$(printf 'é%.0s' {1..200})" '{video: "a", status: "success", path: ($p + "/")}' > in
	refuses "pr-upload: <stdin>:1: path: \"$(printf 'é%.0s' {1..99})...\": ends with \"/\" (a folder, not a file)" \
	    tool pr-upload < in
}

@test "pr-shutdown: finals and uploads of the wrong type are errors, never 'no final at all'" {
	local fin want
	while IFS='|' read -r fin want; do
		echo "$fin" > f.jsonl
		refuses "pr-shutdown: f.jsonl:1: $want" env RUNPOD_POD_ID=pod1 RUNPOD_API_URL=http://127.0.0.1:9/v1 \
		    pr-shutdown --expect f.jsonl --dry-run --timeout 1 < <(good_record pr-shutdown)
	done <<'EOF'
{"status": 5, "path": "final/a_final.mp4", "size": 1}|status: expected a string
{"status": ["success"], "path": "final/a_final.mp4"}|status: expected a string
{"path": "final/a_final.mp4", "size": 1}|status: missing (is this pr-combine's output?)
{"status": "success", "size": 1}|path: missing (a final with status success names its file)
{"status": "success", "path": "final/a_final.mp4", "size": "1"}|size: expected a whole number of bytes
{"status": "success", "path": "final/a_final.mp4", "size": 1e999}|size: expected a whole number of bytes
{"status": "success", "path": "final/a_final.mp4", "size": -1}|size: expected a whole number of bytes
EOF
	echo '{"video":"a","status":"success","path":"final/a_final.mp4","size":1}' > f.jsonl
	refuses 'pr-shutdown: <stdin>:1: verified: expected true or false' \
	    env RUNPOD_POD_ID=pod1 pr-shutdown --expect f.jsonl --dry-run \
	    < <(echo '{"path":"final/a_final.mp4","status":"uploaded","verified":"true","size":1}')
}
