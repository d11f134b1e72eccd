#!/usr/bin/env bats
# The prompt validator (tools/lib/validate.c) through its test driver: the
# answers ComfyUI 0.3.64 gives to POST /prompt, recorded on the real server
# (../shared/reference/comfyui-captures) or predicted from its source.

load helper

VT=$BIN/unit/validate-test
CASES=$SHARED/comfyui-captures/http-post-prompt-cases.json
SCHEMAS=$SHARED/node-schemas/object_info.json

# Every class of the reference schemas as node facts, made once.
setup_file() {
	if [ -f "$SHARED/node-schemas/object_info.json" ]; then
		ONLY=all "$REPO/tools/lib/mknodes" "$SHARED/node-schemas/object_info.json" \
		    > "$BATS_FILE_TMPDIR/facts.json"
	fi
}

need_cases() {
	[ -f "$CASES" ] || skip "no ../shared/reference/comfyui-captures beside the repository"
}

need_schemas() {
	[ -f "$SCHEMAS" ] || skip "no ../shared/reference/node-schemas beside the repository"
}

# POSTs the request in file $1 (more driver options after it): the status
# in $code, the body in body.json, the outputs the server would run in
# outputs.json.
post() {
	local req=$1
	shift
	"$VT" --outputs "$@" < "$req" > answer.txt
	code=$(head -n 1 answer.txt)
	if [ "$code" = 500 ]; then
		tail -n +2 answer.txt > body.json
		: > outputs.json
	else
		sed -n 2p answer.txt > body.json
		sed -n 3p answer.txt > outputs.json
	fi
}

# POSTs {"prompt": $1} (JSON text), with the other arguments for the driver.
post_prompt() {
	local p=$1
	shift
	printf '{"prompt": %s}' "$p" > req.json
	post req.json "$@"
}

# A body compared the way the recordings can be: no tracebacks, no random
# prompt_id or number, each node's errors as a set (Python iterates a set).
NORM='def norm: del(.. | .traceback?) | del(.prompt_id?, .number?)
  | if (.node_errors | type) == "object" then .node_errors |= map_values(.errors |= sort_by(tojson)) else . end;'

# [node, type, details] of every error, sorted.
errors_of() {
	jq -c '[.node_errors | to_entries[] | .key as $k | .value.errors[] | [$k, .type, .details]] | sort' "${1:-body.json}"
}

# Creates under $3 the files workflow $2 names, reading the node facts $1:
# files of x-files combos in their folder, paths that VALIDATE_INPUTS
# checks in the server's working directory ($3, which stands for "/" too).
make_files() {
	cat > files.jq <<'EOF'
def cls($c): $F[0] | .[$c];
def spec($c; $k): cls($c) | (.input.required[$k] // .input.optional[$k]);
def ext: (split("/")[-1] | ltrimstr(".") | split(".")) as $p
  | if ($p | length) > 1 then "." + ($p[-1] | ascii_downcase) else "" end;
def annotated:
  if endswith(" [output]") then "output/" + .[:-9]
  elif endswith(" [input]") then "input/" + .[:-8]
  elif endswith(" [temp]") then "temp/" + .[:-7]
  else "input/" + . end;
(.workflow // .) | to_entries[] | .value.class_type as $c | (.value.inputs // {}) | to_entries[]
| .key as $k | .value as $v | select($v | type == "string" and . != "")
| ((spec($c; $k) // [null, null])[1]) as $d
| (cls($c) | .["x-validate"]) as $xv
| if ($d | type == "object" and has("x-files")) then
    if $d["x-files"][0].top then $v | annotated
    else ($v | ext) as $e
      | ([$d["x-files"][] | select(.ext | index([$e]))] + $d["x-files"])[0].dirs[0] + "/" + $v
    end
  elif ($xv.args // [] | index([$k])) then
    if $xv.check == "annotated_path" then $v | annotated
    elif ($xv.check == "file_path" or $xv.check == "cwd_path") and ($v | test("^https?://") | not)
    then $v | ltrimstr("/")
    else empty end
  else empty end
EOF
	jq -r --slurpfile F "$1" -f files.jq "$2" | sort -u | while IFS= read -r p; do
		mkdir -p "$3/$(dirname "$p")" && : > "$3/$p" || return 1
	done
}


# --- the recordings -------------------------------------------------------

@test "all 22 recorded POST /prompt cases: same status, same body" {
	need_cases
	local n i name
	n=$(jq length "$CASES")
	[ "$n" -eq 22 ]
	mkdir -p root
	for ((i = 0; i < n; i++)); do
		name=$(jq -r ".[$i].case" "$CASES")
		jq -j ".[$i] | if has(\"request_raw\") then .request_raw else (.request | tojson) end" \
		    "$CASES" > req.json
		post req.json --files root
		[ "$code" = "$(jq ".[$i].http_status" "$CASES")" ] ||
		    { echo "$name: status $code"; return 1; }
		if [ "$code" = 500 ]; then
			[ "$(cat body.json)" = "$(jq -r ".[$i].response" "$CASES")" ] ||
			    { echo "$name: body $(cat body.json)"; return 1; }
		else
			diff <(jq -S "$NORM norm" body.json) <(jq -S ".[$i].response | $NORM norm" "$CASES") ||
			    { echo "$name: body differs"; return 1; }
		fi
	done
}

@test "recorded bodies are byte-exact apart from tracebacks and errors order" {
	need_cases
	# value_not_in_list_long_list: no traceback, one error
	jq -c '.[] | select(.case == "value_not_in_list_long_list") | .request' "$CASES" > req.json
	post req.json
	[ "$code" = 400 ]
	run cat body.json
	assert_output '{"error": {"type": "prompt_outputs_failed_validation", "message": "Prompt outputs failed validation", "details": "", "extra_info": {}}, "node_errors": {"1": {"errors": [{"type": "value_not_in_list", "message": "Value not in list", "details": "sampler_name: '"'bogus'"' not in (list of length 42)", "extra_info": {"input_name": "sampler_name", "input_config": null, "received_value": "bogus"}}], "dependent_outputs": ["2"], "class_type": "KSamplerSelect"}}}'
}

# --- the original tool's dry-run workflows (node-schemas/README.md §D) -----

# The errors §D predicts, per session and workflow file:
# [node, type, details, exception_type].
dry_run_expected() {
	local session=$1 file=$2 s g e
	while read -r s g e; do
		# shellcheck disable=SC2053
		if [[ $session == *$s* && $file == $g ]]; then
			echo "$e"
			return
		fi
	done <<'EOF'
112003 *_high_* [["340","exception_during_validation","'341'","KeyError"],["343","exception_during_inner_validation","'341'","KeyError"],["365","exception_during_inner_validation","'54'","KeyError"]]
112003 *_low_* [["364","exception_during_inner_validation","'365'","KeyError"]]
112003 *_011_* [["14","exception_during_validation","33","KeyError"]]
191908 *_high_* [["341","required_input_missing","samples",null]]
191908 *_low_* [["364","exception_during_inner_validation","'365'","KeyError"]]
191908 *_011_* [["14","exception_during_validation","33","KeyError"]]
200848 *_high_* [["341","required_input_missing","samples",null]]
200848 *_007_* [["14","exception_during_validation","33","KeyError"]]
* * []
EOF
}

@test "dry-run workflows: only the errors node-schemas §D predicts, each job still accepted" {
	need_fixtures
	need_schemas
	local f session file count=0 got want
	for f in "$FIXTURES"/dry-run/*/workflows/*.json; do
		session=${f%/workflows/*}
		session=${session##*/}
		file=${f##*/}
		rm -rf root && mkdir root
		make_files "$BATS_FILE_TMPDIR/facts.json" "$f" root
		jq -c '{prompt: .workflow}' "$f" > req.json
		post req.json --facts "$BATS_FILE_TMPDIR/facts.json" --files root
		got=$(jq -c '[.node_errors | to_entries[] | .key as $k | .value.errors[]
		    | [$k, .type, .details, .extra_info.exception_type]] | sort' body.json)
		want=$(dry_run_expected "$session" "$file")
		[ "$code" = 200 ] || { echo "$session/$file: status $code"; cat body.json; return 1; }
		[ "$got" = "$want" ] || { echo "$session/$file: $got, expected $want"; return 1; }
		count=$((count + 1))
	done
	[ "$count" -eq 30 ]
}

@test "dry-run workflows: a broken link fails only the outputs that depend on it" {
	need_fixtures
	need_schemas
	local f=$FIXTURES/dry-run/session_20250811_112003/workflows/workflow_001_high_noise_render.json
	mkdir root
	make_files "$BATS_FILE_TMPDIR/facts.json" "$f" root
	jq -c '{prompt: .workflow}' "$f" > req.json
	post req.json --facts "$BATS_FILE_TMPDIR/facts.json" --files root
	[ "$code" = 200 ]
	# 340 links to the deleted 341 itself; 344 (via 343) and 363 (via
	# 365 <- deleted 54) fail upstream; the preview 359 runs
	run jq -c . outputs.json
	assert_output '["359"]'
	# the inner exception names the edge into 343 (from 344), not the fault
	run jq -c '[.node_errors["343"].errors[0].extra_info | .input_name, .linked_node]' body.json
	assert_output '["images",["343",1]]'
}

# --- the fixture workflows --------------------------------------------------

@test "the 13 fixture workflows validate once their files exist" {
	need_fixtures
	need_schemas
	local f count=0
	for f in "$FIXTURES"/*.json; do
		rm -rf root && mkdir root
		# the runner fills the empty VHS_LoadVideoPath.video (§C) in
		jq '(.workflow // .) | with_entries(if .value.class_type == "VHS_LoadVideoPath"
		    and .value.inputs.video == "" then .value.inputs.video = "videos/source.mp4" else . end)' \
		    "$f" > wf.json
		make_files "$BATS_FILE_TMPDIR/facts.json" wf.json root
		jq -c '{prompt: .}' wf.json > req.json
		post req.json --facts "$BATS_FILE_TMPDIR/facts.json" --files root
		[ "$code" = 200 ] || { echo "${f##*/}: $code"; cat body.json; return 1; }
		[ "$(jq -c .node_errors body.json)" = '{}' ] || { echo "${f##*/}"; cat body.json; return 1; }
		count=$((count + 1))
	done
	[ "$count" -eq 13 ]
}

@test "fixture prompt.v2-4f14e92 as committed: the empty video path fails VALIDATE_INPUTS" {
	need_fixtures
	need_schemas
	mkdir root
	make_files "$BATS_FILE_TMPDIR/facts.json" "$FIXTURES/prompt.v2-4f14e92.json" root
	jq -c '{prompt: .}' "$FIXTURES/prompt.v2-4f14e92.json" > req.json
	post req.json --facts "$BATS_FILE_TMPDIR/facts.json" --files root
	[ "$code" = 400 ]
	run errors_of
	assert_output '[["389","custom_validation_failed","video - Invalid file path: "]]'
}

# --- the shipped workflow, patched by pr-patch -------------------------------

# Patches workflows/prompt.json for a job ($@: render_job's arguments) into
# wf.json.
patched() {
	render_job "$@" > job.jsonl
	pr-patch --workflows "$REPO/workflows" --no-state < job.jsonl | jq .workflow > wf.json
}

@test "shipped prompt.json, HIGH job: accepted; only the decode branch HIGH leaves out fails" {
	patched clipA 1 high 0
	mkdir root
	make_files "$REPO/tools/lib/nodes.json" wf.json root
	[ -f root/models/unet/high.gguf ]
	jq -c '{prompt: .}' wf.json > req.json
	post req.json --files root
	[ "$code" = 200 ]
	run errors_of
	assert_output '[["341","required_input_missing","samples"]]'
	run jq -c . outputs.json
	assert_output '["365"]'
}

@test "shipped prompt.json, LOW job: accepted with no errors" {
	patched clipA 2 low 0
	mkdir root
	make_files "$REPO/tools/lib/nodes.json" wf.json root
	jq -c '{prompt: .}' wf.json > req.json
	post req.json --files root
	[ "$code" = 200 ]
	run jq -c .node_errors body.json
	assert_output '{}'
	run jq -c 'sort' outputs.json
	assert_output '["344"]'
}

@test "shipped prompt.json: a misspelled model is value_not_in_list on input model" {
	patched clipA 1 high 0
	mkdir root
	make_files "$REPO/tools/lib/nodes.json" wf.json root
	patched clipA 1 high 0 '{"model":"hihg.gguf"}'
	jq -c '{prompt: .}' wf.json > req.json
	post req.json --files root
	[ "$code" = 400 ]
	run jq -c '.node_errors["4"].errors' body.json
	assert_output '[{"type":"value_not_in_list","message":"Value not in list","details":"model: '"'hihg.gguf'"' not in ['"'high.gguf'"']","extra_info":{"input_name":"model","input_config":[["high.gguf"],{"tooltip":"These models are loaded from the '"'ComfyUI/models/diffusion_models'"' -folder"}],"received_value":"hihg.gguf"}}]'
}

# --- numbers -----------------------------------------------------------------

# INTConstant (value: INT, min/max +-(2^64-1)) feeding PreviewAny.
int_prompt() {
	post_prompt '{"1": {"class_type": "INTConstant", "inputs": {"value": '"$1"'}},
	    "2": {"class_type": "PreviewAny", "inputs": {"source": ["1", 0]}}}'
}

@test "INT bounds are compared exactly, beyond 64 bits" {
	int_prompt 18446744073709551615
	[ "$code" = 200 ]
	int_prompt 18446744073709551616
	[ "$code" = 400 ]
	grep -qF '"message": "Value 18446744073709551616 bigger than max of 18446744073709551615"' body.json
	grep -qF '"received_value": 18446744073709551616}' body.json
	int_prompt -18446744073709551616
	grep -qF '"message": "Value -18446744073709551616 smaller than min of -18446744073709551615"' body.json
	# int(1e20): a float truncated to an exact int
	int_prompt 1e20
	grep -qF '"message": "Value 100000000000000000000 bigger than max of 18446744073709551615"' body.json
}

@test "INT conversion: Python's int() on strings, floats, booleans and the rest" {
	local v
	for v in '" 1_000 "' '"-7"' 3.99 -3.99 true '{"__value__": 12}' '"+0"'; do
		int_prompt "$v"
		[ "$code" = 200 ] || { echo "$v: $(cat body.json)"; return 1; }
	done
	int_prompt '"1.5"'
	run errors_of
	assert_output '[["1","invalid_input_type","value, 1.5, invalid literal for int() with base 10: '"'1.5'"'"]]'
	int_prompt '"1__0"'
	run errors_of
	assert_output '[["1","invalid_input_type","value, 1__0, invalid literal for int() with base 10: '"'1__0'"'"]]'
	int_prompt null
	run errors_of
	assert_output "[[\"1\",\"invalid_input_type\",\"value, None, int() argument must be a string, a bytes-like object or a real number, not 'NoneType'\"]]"
	int_prompt '{"__value__": [1, "a"]}'
	run errors_of
	assert_output "[[\"1\",\"invalid_input_type\",\"value, [1, 'a'], int() argument must be a string, a bytes-like object or a real number, not 'list'\"]]"
	int_prompt 1e999
	run errors_of
	assert_output '[["1","invalid_input_type","value, inf, cannot convert float infinity to integer"]]'
	grep -qF '"received_value": Infinity' body.json
	int_prompt '"it'"'"'s"'
	grep -qF "invalid literal for int() with base 10: \\\"it's\\\"" body.json
}

# Facts with one FLOAT output node, for what our compiled facts cannot
# show: tools/lib/mknodes (jq 1.6) writes 8.0 as 8.
float_facts() {
	cat > facts.json <<'EOF'
{"F": {"input": {"required": {"x": ["FLOAT", {"default": 1.0, "min": 0.01, "max": 8.0}]}},
       "output": ["FLOAT"], "output_node": true, "name": "F"},
 "G": {"input": {"required": {"x": ["FLOAT", {"min": 1e+300}]}},
       "output": [], "output_node": true, "name": "G"}}
EOF
}

@test "FLOAT bounds: values and bounds print as Python floats" {
	float_facts
	post_prompt '{"1": {"class_type": "F", "inputs": {"x": 9}}}' --facts facts.json
	[ "$code" = 400 ]
	grep -qF '"message": "Value 9.0 bigger than max of 8.0"' body.json
	grep -qF '"input_config": ["FLOAT", {"default": 1.0, "min": 0.01, "max": 8.0}], "received_value": 9.0}' body.json
	post_prompt '{"1": {"class_type": "F", "inputs": {"x": "1e-7"}}}' --facts facts.json
	grep -qF '"message": "Value 1e-07 smaller than min of 0.01"' body.json
	grep -qF '"received_value": 1e-07}' body.json
	post_prompt '{"1": {"class_type": "F", "inputs": {"x": " -inf "}}}' --facts facts.json
	grep -qF '"message": "Value -inf smaller than min of 0.01"' body.json
	grep -qF '"received_value": -Infinity}' body.json
	post_prompt '{"1": {"class_type": "F", "inputs": {"x": "nan"}}}' --facts facts.json
	[ "$code" = 200 ]
	local v want
	while read -r v want; do
		post_prompt '{"1": {"class_type": "G", "inputs": {"x": '"$v"'}}}' --facts facts.json
		grep -qF "\"message\": \"Value $want smaller than min of 1e+300\"" body.json ||
		    { echo "$v: $(cat body.json)"; return 1; }
	done <<'EOF'
5 5.0
0.1 0.1
0.30000000000000004 0.30000000000000004
1e16 1e+16
1234567890123456 1234567890123456.0
123456789012345.6 123456789012345.6
0.0001 0.0001
0.00001 1e-05
-0.0 -0.0
1.5e-323 1.5e-323
"1_0.2_5" 10.25
true 1.0
EOF
	post_prompt '{"1": {"class_type": "F", "inputs": {"x": "abc"}}}' --facts facts.json
	run errors_of
	assert_output "[[\"1\",\"invalid_input_type\",\"x, abc, could not convert string to float: 'abc'\"]]"
	post_prompt '{"1": {"class_type": "F", "inputs": {"x": {"__value__": {"a": 1.50}}}}}' --facts facts.json
	run errors_of
	assert_output "[[\"1\",\"invalid_input_type\",\"x, {'a': 1.5}, float() argument must be a string or a real number, not 'dict'\"]]"
}

# --- graph-level answers -------------------------------------------------------

@test "unknown and odd class types" {
	post_prompt '{"1": {"class_type": "NoSuchNode", "inputs": {}}}'
	[ "$code" = 400 ]
	run jq -c .error body.json
	assert_output '{"type":"invalid_prompt","message":"Cannot execute because node NoSuchNode does not exist.","details":"Node ID '"'#1'"'","extra_info":{}}'
	post_prompt '{"7": {"class_type": 5, "inputs": {}}}'
	run jq -r .error.message body.json
	assert_output 'Cannot execute because node 5 does not exist.'
	post_prompt '{"7": {"class_type": null, "inputs": {}}}'
	run jq -r .error.message body.json
	assert_output 'Cannot execute because node None does not exist.'
	# every node is checked, reachable or not, before anything else
	post_prompt '{"1": {"class_type": "SaveImage", "inputs": {}}, "2": {"inputs": {}}}'
	run jq -r .error.details body.json
	assert_output "Node ID '#2'"
}

@test "what the server answers with 500, and the near misses that get a 400" {
	post_prompt '{"1": 5}'
	[ "$code" = 500 ]
	run cat body.json
	assert_output "500 Internal Server Error

Server got itself in trouble"
	post_prompt '{"1": {"class_type": ["SaveImage"]}}'
	[ "$code" = 500 ]
	printf '{"prompt": {"1": {"class_type": "SaveImage", "inputs": {}}}, "partial_execution_targets": 1}' > req.json
	post req.json
	[ "$code" = 500 ]
	# "for x in []" finds no node; a str node without "class_type" lacks it
	post_prompt '[]'
	[ "$(jq -r .error.type body.json)" = prompt_no_outputs ]
	post_prompt '{"1": "abc"}'
	[ "$(jq -r .error.type body.json)" = invalid_prompt ]
	# a node without inputs: KeyError inside validation, not a crash
	post_prompt '{"1": {"class_type": "SaveImage"}}'
	[ "$code" = 400 ]
	run errors_of
	assert_output "[[\"1\",\"exception_during_validation\",\"'inputs'\"]]"
	printf '{"client_id": "x", "prompt_id": "p"}' > req.json
	post req.json
	[ "$(jq -r .error.type body.json)" = no_prompt ]
}

@test "partial_execution_targets: only the listed outputs are validated and run" {
	local p='{"1": {"class_type": "EmptyLatentImage", "inputs": {"width": 64, "height": 64, "batch_size": 1}},
	    "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "x"}},
	    "3": {"class_type": "PreviewAny", "inputs": {"source": ["1", 0]}}}'
	printf '{"prompt": %s, "partial_execution_targets": ["3"]}' "$p" > req.json
	post req.json
	[ "$code" = 200 ]
	[ "$(jq -c .node_errors body.json)" = '{}' ]
	[ "$(jq -c . outputs.json)" = '["3"]' ]
	printf '{"prompt": %s, "partial_execution_targets": null}' "$p" > req.json
	post req.json
	[ "$code" = 200 ]
	run errors_of
	assert_output '[["2","return_type_mismatch","images, received_type(LATENT) mismatch input_type(IMAGE)"]]'
	[ "$(jq -c . outputs.json)" = '["3"]' ]
	printf '{"prompt": %s, "partial_execution_targets": ["1"]}' "$p" > req.json
	post req.json
	[ "$(jq -r .error.type body.json)" = prompt_no_outputs ]
}

@test "every failed node lists each output that failed after it, as execution.py does" {
	post_prompt '{"1": {"class_type": "EmptyImage", "inputs": {"width": 0, "height": 8, "batch_size": 1, "color": 0}},
	    "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "x"}},
	    "3": {"class_type": "SaveImage", "inputs": {"filename_prefix": "x"}}}'
	[ "$code" = 400 ]
	run jq -c '.node_errors | map_values(.dependent_outputs)' body.json
	assert_output '{"1":["2","3"],"3":["3"]}'
	run jq -r .error.details body.json
	assert_output 'Required input is missing: images'
}

@test "a cycle: the nodes on it fail without an error of their own" {
	post_prompt '{"1": {"class_type": "ImageInvert", "inputs": {"image": ["3", 0]}},
	    "3": {"class_type": "ImageInvert", "inputs": {"image": ["1", 0]}},
	    "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "x"}}}'
	[ "$code" = 400 ]
	run jq -c '[.error.details, .node_errors]' body.json
	assert_output '["",{}]'
}

@test "links: negative and boolean slots index like Python, odd ids raise like Python" {
	local img='"1": {"class_type": "EmptyImage", "inputs": {"width": 8, "height": 8, "batch_size": 1, "color": 0}}'
	post_prompt "{$img, \"2\": {\"class_type\": \"SaveImage\", \"inputs\": {\"images\": [\"1\", -1], \"filename_prefix\": \"x\"}}}"
	[ "$code" = 200 ]
	post_prompt "{$img, \"2\": {\"class_type\": \"SaveImage\", \"inputs\": {\"images\": [\"1\", false], \"filename_prefix\": \"x\"}}}"
	[ "$code" = 200 ]
	post_prompt "{$img, \"2\": {\"class_type\": \"SaveImage\", \"inputs\": {\"images\": [\"1\", 0.0], \"filename_prefix\": \"x\"}}}"
	run jq -c '.node_errors["2"].errors[0] | [.details, .extra_info.exception_type]' body.json
	assert_output '["tuple indices must be integers or slices, not float","TypeError"]'
	post_prompt "{$img, \"2\": {\"class_type\": \"SaveImage\", \"inputs\": {\"images\": [[\"1\"], 0], \"filename_prefix\": \"x\"}}}"
	run jq -c '.node_errors["2"].errors[0] | [.details, .extra_info.exception_type]' body.json
	assert_output "[\"unhashable type: 'list'\",\"TypeError\"]"
	post_prompt "{$img, \"2\": {\"class_type\": \"SaveImage\", \"inputs\": {\"images\": [null, 0], \"filename_prefix\": \"x\"}}}"
	run jq -c '.node_errors["2"].errors[0] | [.details, .extra_info.exception_type]' body.json
	assert_output '["None","KeyError"]'
}

# --- VALIDATE_INPUTS ------------------------------------------------------------

# Node $1 with input $2 = $3 (JSON) feeding output node $4's input $5.
loader_prompt() {
	post_prompt '{"1": {"class_type": "'"$1"'", "inputs": {"'"$2"'": '"$3"'}},
	    "2": {"class_type": "'"$4"'", "inputs": {"'"$5"'": ["1", 0], "filename_prefix": "x"}}}' --files root
}

@test "LoadImage checks its file, not the list: input/, [output], [input], [temp]" {
	mkdir -p root/input/sub root/output root/temp
	: > root/input/a.png
	: > root/input/sub/b.png
	: > root/output/c.png
	: > root/temp/d.png
	local v
	for v in a.png sub/b.png "c.png [output]" "a.png [input]" "d.png [temp]"; do
		loader_prompt LoadImage image "\"$v\"" SaveImage images
		[ "$code" = 200 ] || { echo "$v: $(cat body.json)"; return 1; }
	done
	loader_prompt LoadImage image '"c.png"' SaveImage images
	[ "$code" = 400 ]
	run errors_of
	assert_output '[["1","custom_validation_failed","image - Invalid image file: c.png"]]'
	loader_prompt LoadImage image '"a.png [output]"' SaveImage images
	run errors_of
	assert_output '[["1","custom_validation_failed","image - Invalid image file: a.png [output]"]]'
	# a number has no .endswith(): the exception, not a custom error
	loader_prompt LoadImage image 5 SaveImage images
	run errors_of
	assert_output "[[\"1\",\"exception_during_inner_validation\",\"'int' object has no attribute 'endswith'\"]]"
}

@test "LoadImage lists the input folder's images for /object_info, still accepts others" {
	mkdir -p root/input
	: > root/input/a.png
	: > root/input/notes.txt
	loader_prompt LoadImage image '"notes.txt"' SaveImage images
	[ "$code" = 200 ]
}

@test "LoadLatent and VHS_LoadVideo check their files the same way" {
	mkdir -p root/input root/output
	: > root/input/a.latent
	: > root/output/v.mp4
	loader_prompt LoadLatent latent '"a.latent"' SaveLatent samples
	[ "$code" = 200 ]
	loader_prompt LoadLatent latent '"b.latent"' SaveLatent samples
	run errors_of
	assert_output '[["1","custom_validation_failed","latent - Invalid latent file: b.latent"]]'
	local rest='"force_rate": 0, "custom_width": 0, "custom_height": 0, "frame_load_cap": 0,
	    "skip_first_frames": 0, "select_every_nth": 1'
	loader_prompt VHS_LoadVideo video '"v.mp4 [output]", '"$rest" SaveImage images
	[ "$code" = 200 ]
	loader_prompt VHS_LoadVideo video '"v.mp4", '"$rest" SaveImage images
	run errors_of
	assert_output '[["1","custom_validation_failed","video - Invalid video file: v.mp4"]]'
}

@test "a validator's argument that is missing is Python's TypeError" {
	mkdir root
	post_prompt '{"1": {"class_type": "LoadImage", "inputs": {}},
	    "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "x"}}}' --files root
	run errors_of
	assert_output "[[\"1\",\"exception_during_inner_validation\",\"LoadImage.VALIDATE_INPUTS() missing 1 required positional argument: 'image'\"]]"
}

# WanVideoDecode with the given tiles, fed by a VAE loader and a latent.
decode_prompt() {
	mkdir -p root/models/vae
	: > root/models/vae/vae.safetensors
	post_prompt '{"10": {"class_type": "WanVideoVAELoader", "inputs": {"model_name": "vae.safetensors", "precision": "bf16"}},
	    "11": {"class_type": "EmptyLatentImage", "inputs": {"width": 64, "height": 64, "batch_size": 1}},
	    "1": {"class_type": "WanVideoDecode", "inputs": {"vae": ["10", 0], "samples": ["11", 0],
	      "enable_vae_tiling": true, "tile_x": '"$1"', "tile_y": '"$2"', "tile_stride_x": '"$3"', "tile_stride_y": '"$4"'}},
	    "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "x"}}}' --files root
}

@test "WanVideoDecode: tiles larger than strides, one error per tile input, no min/max" {
	decode_prompt 272 272 144 128
	[ "$code" = 200 ]
	# 9999 is above max and 1 below min: VALIDATE_INPUTS takes them instead
	decode_prompt 9999 272 1 128
	[ "$code" = 200 ]
	decode_prompt 256 300 256 128
	[ "$code" = 400 ]
	run jq -c '[.node_errors["1"].errors[] | .details]' body.json
	assert_output '["tile_x - Tile width must be larger than the tile stride width.","tile_y - Tile width must be larger than the tile stride width.","tile_stride_x - Tile width must be larger than the tile stride width.","tile_stride_y - Tile width must be larger than the tile stride width."]'
	decode_prompt 300 128 256 128
	run jq -c '[.node_errors["1"].errors[] | .extra_info.input_name + ": " + .details]' body.json
	assert_output '["tile_x: tile_x - Tile height must be larger than the tile stride height.","tile_y: tile_y - Tile height must be larger than the tile stride height.","tile_stride_x: tile_stride_x - Tile height must be larger than the tile stride height.","tile_stride_y: tile_stride_y - Tile height must be larger than the tile stride height."]'
}

# --- link types (x-links) ---------------------------------------------------------

@test "x-links: VHS_VideoCombine.images takes LATENT but not MASK; PreviewAny takes anything" {
	local combine='"frame_rate": 8, "loop_count": 0, "filename_prefix": "x", "format": "image/gif", "pingpong": false, "save_output": true'
	post_prompt '{"1": {"class_type": "EmptyLatentImage", "inputs": {"width": 64, "height": 64, "batch_size": 1}},
	    "2": {"class_type": "VHS_VideoCombine", "inputs": {"images": ["1", 0], '"$combine"'}}}'
	[ "$code" = 200 ]
	[ "$(jq -c .node_errors body.json)" = '{}' ]
	mkdir -p root/input
	: > root/input/a.png
	post_prompt '{"1": {"class_type": "LoadImage", "inputs": {"image": "a.png"}},
	    "2": {"class_type": "VHS_VideoCombine", "inputs": {"images": ["1", 1], '"$combine"'}}}' --files root
	[ "$code" = 400 ]
	run errors_of
	assert_output '[["2","return_type_mismatch","images, received_type(MASK) mismatch input_type(IMAGE)"]]'
	post_prompt '{"1": {"class_type": "LoadImage", "inputs": {"image": "a.png"}},
	    "2": {"class_type": "PreviewAny", "inputs": {"source": ["1", 1]}}}' --files root
	[ "$code" = 200 ]
	# without an x-links rule, a plain type must match
	post_prompt '{"1": {"class_type": "EmptyLatentImage", "inputs": {"width": 64, "height": 64, "batch_size": 1}},
	    "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "x"}}}'
	[ "$code" = 400 ]
}

@test "combo options come from the files: sorted, recursive, extension-filtered" {
	mkdir -p root/models/vae/sub root/models/vae/.git
	: > root/models/vae/b.safetensors
	: > root/models/vae/sub/a.PT
	: > root/models/vae/notes.txt
	: > root/models/vae/.git/c.pt
	post_prompt '{"1": {"class_type": "WanVideoVAELoader", "inputs": {"model_name": "nope", "precision": "bf16"}},
	    "2": {"class_type": "PreviewAny", "inputs": {"source": ["1", 0]}}}' --files root
	run jq -r '.node_errors["1"].errors[0].details' body.json
	assert_output "model_name: 'nope' not in ['b.safetensors', 'sub/a.PT']"
}

@test "/object_info: files filled in, static options before or after, our keys gone" {
	cat > facts.json <<'JSON'
{"L": {"input": {"required": {
   "a": [["static"], {"x-files": [{"dirs": ["models/vae"], "ext": [".pt"]}], "x-bare": true, "x-static": "after"}],
   "b": [[], {"tooltip": "t", "x-files": [{"dirs": ["models/unet", "models/diffusion_models"], "ext": [".gguf"]},
                                           {"dirs": ["models/unet"], "ext": [".pt"]}]}],
   "c": [[], {"image_upload": true, "x-files": [{"dirs": ["input"], "top": true, "match": "image"}]}],
   "d": [[], {"x-files": [{"dirs": ["input"], "top": true, "match": "video"}], "x-bare": true}]}},
  "output": [], "output_node": true, "name": "L",
  "x-validate": {"args": ["c"], "varkw": false, "check": "annotated_file", "message": "m"},
  "x-links": {"inputs": {}, "outputs": {}}}}
JSON
	mkdir -p root/models/vae/s root/models/unet/x root/models/diffusion_models root/input/sub
	: > root/models/vae/s/b.pt
	: > root/models/vae/a.PT
	: > root/models/vae/.pt
	: > root/models/unet/x/m.gguf
	: > root/models/diffusion_models/m.gguf
	: > root/models/diffusion_models/k.gguf
	: > root/models/unet/z.pt
	: > root/input/p.png
	: > root/input/q.JPEG
	: > root/input/r.txt
	: > root/input/v.MOV
	: > root/input/sub/deep.png
	run "$VT" --facts facts.json --files root --object-info
	assert_success
	assert_output '{"L": {"input": {"required": {"a": [["a.PT", "s/b.pt", "static"]], "b": [["k.gguf", "m.gguf", "x/m.gguf", "z.pt"], {"tooltip": "t"}], "c": [["p.png", "q.JPEG"], {"image_upload": true}], "d": [["v.MOV"]]}}, "output": [], "output_node": true, "name": "L"}}'
	run "$VT" --facts facts.json --object-info
	assert_output '{"L": {"input": {"required": {"a": [["static"]], "b": [[], {"tooltip": "t"}], "c": [[], {"image_upload": true}], "d": [[]]}}, "output": [], "output_node": true, "name": "L"}}'
}

@test "/object_info of the compiled facts matches a real 0.3.64 server's core classes" {
	local core=$SHARED/node-schemas/core-object_info.comfyui-0.3.64.json
	[ -f "$core" ] || skip "no ../shared/reference/node-schemas beside the repository"
	mkdir root
	"$VT" --files root --object-info > info.json
	# the server listed files of its own in LoadImage's input folder
	run jq -n --slurpfile a info.json --slurpfile b "$core" '
	  [$a[0] | keys[] | select($b[0][.] != null and . != "LoadImage")] as $ks
	  | [$ks[] | select($a[0][.] != $b[0][.])], ($ks | length)'
	# every core class we serve (all but LoadImage), and all of them equal
	assert_output "[]
$(jq '[keys[] | select(. != "LoadImage")] | map(select(. as $k | $core_keys | index([$k]))) | length' \
	    --argjson core_keys "$(jq -c keys "$core")" info.json)"
	[ "${lines[1]}" -ge 14 ]
}

@test "a chain deeper than Python's recursion limit is cut off with RecursionError" {
	jq -n '{prompt: ({"0": {class_type: "EmptyImage", inputs: {width: 8, height: 8, batch_size: 1, color: 0}}}
	  + ([range(1; 1200) | {key: tostring, value: {class_type: "ImageInvert", inputs: {image: [(. - 1 | tostring), 0]}}}] | from_entries)
	  + {out: {class_type: "SaveImage", inputs: {images: ["1199", 0], filename_prefix: "x"}}})}' > req.json
	post req.json
	[ "$code" = 400 ]
	run jq -c '[.node_errors | to_entries[] | [.key, .value.errors[0].extra_info.exception_type]]' body.json
	assert_output '[["300","RecursionError"]]'
}
