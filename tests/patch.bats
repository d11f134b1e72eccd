#!/usr/bin/env bats
# pr-patch: rules semantics, the shipped workflows, exact round trips.

load helper

SCHEMAS=$SHARED/node-schemas/object_info.json

# Combine job record. Args: VIDEO N [JSON object of extra vars].
combine_job() {
	jq -nc --arg v "$1" --argjson n "$2" --argjson extra "${3:-{\}}" '
	  ($n | tostring | ("00" + .)[-3:]) as $n3
	  | {id: "\($v)/combine_\($n3)", video: $v, kind: "combine", n: $n, mode: "progressive",
	     deps: [], vars: ({video: $v, id: "\($v)/combine_\($n3)", n: $n, n3: $n3,
	       segment: "videos/\($v)/job_\($n * 2 | tostring | ("00" + .)[-3:]).mp4",
	       keep_from: 0, keep_frames: 97, output: "combined/\($v)_combined_\($n3).mp4",
	       output_role: "combined"} + $extra)}'
}

# Problems the schema check finds in the workflow of record $1 (file), when
# the outputs in $2 (JSON array of node ids) are run.
schema_problems() {
	jq -c .workflow "$1" |
	    jq -r --slurpfile schemas "$SCHEMAS" --argjson outputs "$2" -f "$REPO/tests/schema-check.jq"
}

need_schemas() {
	[ -f "$SCHEMAS" ] || skip "no ../shared/reference/node-schemas beside the repository"
}

# String, number and literal tokens of JSON text, one per line, in order.
tokens() {
	LC_ALL=C grep -oE '"([^"\\]|\\.)*"|-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?|true|false|null' "$@"
}

# A test workflow dir with a tiny graph and the given rules text.
tiny_workflows() {
	mkdir -p wf
	cat > wf/prompt.json <<'EOF'
{
  "1": {"inputs": {"value": 5}, "class_type": "INTConstant", "_meta": {"title": "LENGTH"}},
  "2": {"inputs": {"image": "a.png"}, "class_type": "LoadImage", "_meta": {"title": "IMG"}},
  "3": {"inputs": {"images": ["2", 0], "filename_prefix": "x"}, "class_type": "SaveImage", "_meta": {"title": "OUT"}},
  "4": {"inputs": {"images": ["2", 0], "filename_prefix": "y"}, "class_type": "SaveImage", "_meta": {"title": "OUT"}}
}
EOF
	printf '%s\n' "$1" > wf/prompt.rules.json
}

tiny_job() {
	printf '{"id":"v/job_001","video":"v","kind":"render","n":1,"pass":"%s","chunk":%s,"vars":{"video":"v","n3":"001","frames":97,"seed":18446744073709551615,"text":"a ${frames} $$ b","name":"clip"%s}}\n' \
	    "${1:-high}" "${2:-0}" "${3:-}"
}

# --- round trips ------------------------------------------------------------

@test "every fixture workflow round-trips exactly through empty rules" {
	need_fixtures
	local n=0
	for f in "$FIXTURES"/*.json; do
		rm -rf wf st
		mkdir wf
		cp "$f" wf/prompt.json
		echo '{"rules": []}' > wf/prompt.rules.json
		run pr-patch --workflows wf --state st < <(echo '{"id":"v/job_001","video":"v","kind":"render","vars":{}}')
		assert_success
		# the record's workflow, token by token
		sed -e 's/^.*"workflow"://' -e 's/,"stage":\[.*$//' <<< "$output" > got.json
		tokens "$f" > want.tok
		tokens got.json > got.tok
		[ -s want.tok ]
		cmp want.tok got.tok || { echo "tokens differ: $f"; diff want.tok got.tok | head; return 1; }
		# the pretty copy is byte-identical to what ComfyUI saved
		cmp <(cat "$f"; echo) st/v/workflows/job_001.json || { echo "pretty copy differs: $f"; return 1; }
		n=$((n + 1))
	done
	[ "$n" -eq 13 ]
}

@test "big integers, long doubles, Unicode and key order survive an edit" {
	mkdir wf
	cat > wf/prompt.json <<'EOF'
{"9": {"inputs": {"seed": 18446744073709551615, "cfg": 1.0000000000000002, "z": -0.0, "e": 1E+2,
  "text": "中文 — ñ 😀", "b": true, "n": null}, "class_type": "KSampler", "_meta": {"title": "é"}},
 "1": {"inputs": {"value": 3}, "class_type": "INTConstant"}}
EOF
	echo '{"rules": [{"node": "1", "set": {"value": "${frames}"}}]}' > wf/prompt.rules.json
	run pr-patch --workflows wf --no-state < <(echo '{"id":"v/job_001","video":"v","kind":"render","vars":{"frames":9007199254740993}}')
	assert_success
	assert_output --partial '"seed":18446744073709551615,"cfg":1.0000000000000002,"z":-0.0,"e":1E+2,"text":"中文 — ñ 😀","b":true,"n":null'
	assert_output --partial '"_meta":{"title":"é"}},"1":{"inputs":{"value":9007199254740993}'
	# key order: node 9 before node 1, as written
	[[ "$output" == *'"workflow":{"9":'* ]]
}

# --- the shipped workflows --------------------------------------------------

@test "shipped workflows are valid against the real node schemas" {
	need_schemas
	run jq -r --slurpfile schemas "$SCHEMAS" --argjson outputs '["344","365"]' \
	    -f "$REPO/tests/schema-check.jq" "$REPO/workflows/prompt.json"
	assert_success
	assert_output ''
	run jq -r --slurpfile schemas "$SCHEMAS" --argjson outputs '["14"]' \
	    -f "$REPO/tests/schema-check.jq" "$REPO/workflows/combine.json"
	assert_success
	assert_output ''
}

@test "HIGH job of the first chunk: HIGH model and LoRA, steps 0-4, latent saved and collected" {
	render_job clipA 1 high 0 > jobs.jsonl
	run pr-patch --workflows "$REPO/workflows" --state st < jobs.jsonl
	assert_success
	echo "$output" > rec.json
	run jq -c '.workflow | [.["4"].inputs.model, .["309:298"].inputs.lora, .["19"].inputs.value,
	    .["348"].inputs.value, .["53"].inputs.positive_prompt, .["53"].inputs.negative_prompt,
	    (.["54"].inputs | has("samples")), .["54"].inputs.start_step, .["54"].inputs.end_step,
	    (.["341"].inputs | has("samples")), .["365"].inputs.filename_prefix,
	    (.["144"].inputs | has("ref_images")), .["149"].inputs.video]' rec.json
	assert_output '["high.gguf","high.safetensors",97,0,"pos","neg",false,0,4,false,"prompt-runner/clipA/job_001",false,"src.mp4"]'
	run jq -c '[.stage, .collect, .derive]' rec.json
	assert_output '[[],[{"node":"365","role":"latent","path":"latents/clipA/job_001.latent"}],[]]'
	[ -f st/clipA/workflows/job_001.json ]
}

@test "LOW job: continues from the staged HIGH latent, collects the segment, derives the next reference" {
	render_job clipA 2 low 0 '{"input_video_path":"/data/src.mp4","reference_out":"references/clipA/job_002_ref.png","reference_frame":87}' > jobs.jsonl
	run pr-patch --workflows "$REPO/workflows" --no-state < jobs.jsonl
	assert_success
	echo "$output" > rec.json
	run jq -c '.workflow | [has("365"), .["366"].inputs.latent, .["54"].inputs.samples,
	    .["54"].inputs.start_step, .["54"].inputs.end_step, .["4"].inputs.model,
	    .["344"].inputs.filename_prefix, .["149"].inputs.video]' rec.json
	assert_output '[false,"prompt-runner/clipA/job_001.latent",["366",0],4,-1,"low.gguf","prompt-runner/clipA/job_002","prompt-runner/clipA/src.mp4"]'
	run jq -c '.stage' rec.json
	assert_output '[{"path":"/data/src.mp4","as":"prompt-runner/clipA/src.mp4"},{"path":"latents/clipA/job_001.latent","as":"prompt-runner/clipA/job_001.latent"}]'
	run jq -c '[.collect, .derive]' rec.json
	assert_output '[[{"node":"344","role":"segment","path":"videos/clipA/job_002.mp4"}],[{"from":"videos/clipA/job_002.mp4","frame":87,"path":"references/clipA/job_002_ref.png","role":"reference"}]]'
}

@test "later chunk: the previous chunk's reference image is staged into the VACE encode" {
	render_job clipA 3 high 1 '{"reference":"references/clipA/job_002_ref.png"}' > a.jsonl
	render_job clipA 4 low 1 '{"reference":"references/clipA/job_002_ref.png"}' >> a.jsonl
	run pr-patch --workflows "$REPO/workflows" --no-state < a.jsonl
	assert_success
	echo "$output" > recs.jsonl
	run jq -c '[.workflow["358"].inputs.image, .workflow["144"].inputs.ref_images, .workflow["348"].inputs.value, (.stage | map(.as))]' recs.jsonl
	assert_line --index 0 '["prompt-runner/clipA/job_002_ref.png",["358",0],97,["prompt-runner/clipA/job_002_ref.png"]]'
	assert_line --index 1 '["prompt-runner/clipA/job_002_ref.png",["358",0],97,["prompt-runner/clipA/job_002_ref.png","prompt-runner/clipA/job_003.latent"]]'
}

@test "a seed var keeps all 20 digits in the sampler" {
	render_job clipA 1 high 0 '{"seed":0}' | sed 's/"seed":0/"seed":18446744073709551615/' > jobs.jsonl
	run pr-patch --workflows "$REPO/workflows" --state st < jobs.jsonl
	assert_success
	assert_output --partial '"seed":18446744073709551615,'
	grep -q '"seed": 18446744073709551615,' st/clipA/workflows/job_001.json
	# without a seed var, the workflow's own seed stays
	render_job clipA 1 high 0 > jobs.jsonl
	run pr-patch --workflows "$REPO/workflows" --no-state < jobs.jsonl
	assert_output --partial '"seed":1013166398531279,'
}

@test "prompt text is inserted once and never expanded again" {
	render_job clipA 1 high 0 '{"positive":"a ${video} costs $$5 and \"quotes\"\nline 2"}' > jobs.jsonl
	run pr-patch --workflows "$REPO/workflows" --no-state < jobs.jsonl
	assert_success
	assert_output --partial '"positive_prompt":"a ${video} costs $$5 and \"quotes\"\nline 2"'
}

@test "combine jobs: the first loads only its segment, later ones append to the previous combined video" {
	combine_job clipA 1 '{"keep_from":2,"keep_frames":15}' > c.jsonl
	combine_job clipA 2 '{"previous":"combined/clipA_combined_001.mp4"}' >> c.jsonl
	run pr-patch --workflows "$REPO/workflows" --no-state < c.jsonl
	assert_success
	echo "$output" > recs.jsonl
	run jq -c '[(.workflow | has("30"), has("40")), .workflow["14"].inputs.images,
	    .workflow["25"].inputs.video, .workflow["25"].inputs.skip_first_frames,
	    .workflow["25"].inputs.frame_load_cap, .workflow["40"].inputs.video // null,
	    .collect, .frame_multiplier]' recs.jsonl
	assert_line --index 0 '[false,false,["33",0],"prompt-runner/clipA/job_002.mp4",2,15,null,[{"node":"14","role":"combined","path":"combined/clipA_combined_001.mp4"}],2]'
	assert_line --index 1 '[true,true,["30",0],"prompt-runner/clipA/job_004.mp4",0,97,"prompt-runner/clipA/clipA_combined_001.mp4",[{"node":"14","role":"combined","path":"combined/clipA_combined_002.mp4"}],2]'
}

@test "every kind of patched job validates against the real node schemas where it runs" {
	need_schemas
	{
		render_job clipA 1 high 0
		render_job clipA 2 low 0 '{"input_video_path":"/data/src.mp4","reference_out":"references/clipA/job_002_ref.png","reference_frame":87}'
		render_job clipA 3 high 1 '{"reference":"references/clipA/job_002_ref.png"}'
		render_job clipA 4 low 1 '{"reference":"references/clipA/job_002_ref.png"}'
		combine_job clipA 1
		combine_job clipA 2 '{"previous":"combined/clipA_combined_001.mp4"}'
	} | pr-patch --workflows "$REPO/workflows" --no-state > recs.jsonl
	local i=0 outputs
	while IFS= read -r rec; do
		printf '%s\n' "$rec" > rec.json
		# what ComfyUI runs: the outputs the job collects
		outputs=$(jq -c '[.collect[].node]' rec.json)
		[ "$outputs" != '[]' ]
		run schema_problems rec.json "$outputs"
		assert_success
		assert_output ''
		i=$((i + 1))
	done < recs.jsonl
	[ "$i" -eq 6 ]
	# a HIGH job's decode and video branch fails validation, which is what
	# makes ComfyUI prune it
	head -1 recs.jsonl > high.json
	run schema_problems high.json '["344"]'
	assert_output --partial '341 (WanVideoDecode): required input samples missing'
}

@test "combine jobs are patched only when there are some: combine.json may be absent" {
	mkdir wf
	cp "$REPO/workflows/prompt.json" "$REPO/workflows/prompt.rules.json" wf/
	render_job clipA 1 high 0 | pr-patch --workflows wf --no-state > out.jsonl
	[ "$(wc -l < out.jsonl)" -eq 1 ]
	run pr-patch --workflows wf --no-state < <(combine_job clipA 1)
	assert_failure 2
	assert_output --partial 'wf/combine.json: No such file or directory'
}

# --- rules semantics ----------------------------------------------------------

@test "set: literal, whole-var keeps its JSON type, template, link, create" {
	tiny_workflows '{"rules": [
	  {"node": "1", "set": {"value": "${frames}"}},
	  {"node": "2", "set": {"image": "prompt-runner/${video}/job_${n3}.png"}},
	  {"node": "3", "set": {"images": ["1", 0], "filename_prefix": "${seed}"}},
	  {"node": "4", "create": true, "set": {"extra": {"__value__": [1, 2]}, "flag": true}}
	]}'
	run pr-patch --workflows wf --no-state < <(tiny_job)
	assert_success
	assert_output --partial '"1":{"inputs":{"value":97}'
	assert_output --partial '"image":"prompt-runner/v/job_001.png"'
	assert_output --partial '"images":["1",0],"filename_prefix":18446744073709551615'
	assert_output --partial '"filename_prefix":"y","extra":{"__value__":[1,2]},"flag":true'
}

@test "text templates: numbers as written, \$\$ is a dollar, unknown vars and objects refused" {
	tiny_workflows '{"rules": [{"node": "3", "set": {"filename_prefix": "s${seed}-$$${name}"}}]}'
	run pr-patch --workflows wf --no-state < <(tiny_job)
	assert_success
	assert_output --partial '"filename_prefix":"s18446744073709551615-$clip"'
	tiny_workflows '{"rules": [{"node": "3", "set": {"filename_prefix": "${nope}"}}]}'
	run pr-patch --workflows wf --no-state < <(tiny_job)
	assert_failure 2
	assert_output 'pr-patch: wf/prompt.rules.json:1: rule 1 (node "3"): job v/job_001: unknown variable "${nope}" (not in the job'"'"'s vars)'
	tiny_workflows '{"rules": [{"node": "3", "set": {"filename_prefix": "x${obj}"}}]}'
	run pr-patch --workflows wf --no-state < <(tiny_job high 0 ',"obj":{"a":1}')
	assert_failure 2
	assert_output --partial 'variable "obj" is object, which cannot go into text'
	tiny_workflows '{"rules": [{"node": "3", "set": {"filename_prefix": "x${ bad }"}}]}'
	run pr-patch --workflows wf --no-state < <(tiny_job)
	assert_failure 2
	assert_output --partial 'bad variable reference'
}

@test "links must have a string node id and an index; literal lists must be wrapped" {
	tiny_workflows '{"rules": [{"node": "3", "set": {"images": [2, 0]}}]}'
	run pr-patch --workflows wf --no-state < <(tiny_job)
	assert_failure 2
	assert_output --partial 'the node id of a link must be a string (ComfyUI rejects numeric ids such as [33, 0])'
	tiny_workflows '{"rules": [{"node": "3", "set": {"images": [1, 2, 3]}}]}'
	run pr-patch --workflows wf --no-state < <(tiny_job)
	assert_failure 2
	assert_output --partial 'a literal list must be wrapped as {"__value__": [...]}'
}

@test "select by title: exactly one, or all; several without all names them" {
	tiny_workflows '{"rules": [{"title": "LENGTH", "set": {"value": 7}}, {"title": "OUT", "all": true, "set": {"filename_prefix": "z"}}]}'
	run pr-patch --workflows wf --no-state < <(tiny_job)
	assert_success
	assert_output --partial '"value":7'
	[ "$(grep -o '"filename_prefix":"z"' <<< "$output" | wc -l)" -eq 2 ]
	tiny_workflows '{"rules": [{"title": "OUT", "set": {"filename_prefix": "z"}}]}'
	run pr-patch --workflows wf --no-state < <(tiny_job)
	assert_failure 2
	assert_output --partial 'the title "OUT" matches nodes 3, 4'
	tiny_workflows '{"rules": [{"title": "NOPE", "set": {"x": 1}}]}'
	run pr-patch --workflows wf --no-state < <(tiny_job)
	assert_failure 2
	assert_output --partial 'no node has the title "NOPE"'
}

@test "a missing node or input fails before any output, naming file, line, rule, node and input" {
	tiny_workflows '{"rules": [
	  {"node": "1", "set": {"value": 1}},
	  {"node": "3", "delete": ["filename_prefx"]}
	]}'
	run --separate-stderr pr-patch --workflows wf --state st < <(tiny_job; tiny_job | sed 's/job_001/job_002/')
	assert_failure 2
	[ -z "$output" ]
	[ "$stderr" = 'pr-patch: wf/prompt.rules.json:3: rule 2 (node "3"): job v/job_001: node 3 (SaveImage) has no input "filename_prefx" (inputs: images, filename_prefix)' ]
	[ ! -e st ]
	tiny_workflows '{"rules": [{"node": "77", "set": {"value": 1}}]}'
	run pr-patch --workflows wf --no-state < <(tiny_job)
	assert_failure 2
	assert_output 'pr-patch: wf/prompt.rules.json:1: rule 1 (node "77"): job v/job_001: node 77 is not in the workflow'
	# set never adds an input silently (the original's "gguf_name" bug)
	tiny_workflows '{"rules": [{"node": "1", "set": {"gguf_name": "x"}}]}'
	run pr-patch --workflows wf --no-state < <(tiny_job)
	assert_failure 2
	assert_output --partial 'node 1 (INTConstant) has no input "gguf_name" (inputs: value)'
}

@test "optional rules skip a missing node or input" {
	tiny_workflows '{"rules": [
	  {"node": "77", "optional": true, "set": {"value": 1}},
	  {"node": "1", "optional": true, "delete": ["nope"], "set": {"value": 2}}
	]}'
	run pr-patch --workflows wf --no-state < <(tiny_job)
	assert_success
	assert_output --partial '"1":{"inputs":{"value":2}'
}

@test "deleting a node that something still links to is an error naming both; rewiring in the same job is fine" {
	tiny_workflows '{"rules": [{"node": "2", "delete_node": true}]}'
	run pr-patch --workflows wf --no-state < <(tiny_job)
	assert_failure 2
	assert_output 'pr-patch: wf/prompt.rules.json:1: rule 1 (node "2"): job v/job_001: deletes node 2, but node 3 input "images" still links to it; delete or rewire that input in the same job'"'"'s rules'
	tiny_workflows '{"rules": [
	  {"node": "2", "delete_node": true},
	  {"node": "3", "set": {"images": ["1", 0]}},
	  {"node": "4", "delete_node": true}
	]}'
	run pr-patch --workflows wf --no-state < <(tiny_job)
	assert_success
	refute_output --partial '"2":'
	# a later rule sees the earlier deletion
	tiny_workflows '{"rules": [{"node": "4", "delete_node": true}, {"node": "4", "set": {"x": 1}}]}'
	run pr-patch --workflows wf --no-state < <(tiny_job)
	assert_failure 2
	assert_output --partial 'rule 2 (node "4"): job v/job_001: node 4 was deleted by an earlier rule'
}

@test "rules apply in file order, each seeing the edits before it" {
	tiny_workflows '{"rules": [
	  {"node": "3", "delete": "filename_prefix"},
	  {"node": "3", "create": true, "set": {"filename_prefix": "again"}},
	  {"node": "1", "set": {"value": 1}},
	  {"node": "1", "set": {"value": 2}}
	]}'
	run pr-patch --workflows wf --no-state < <(tiny_job)
	assert_success
	assert_output --partial '"3":{"inputs":{"images":["2",0],"filename_prefix":"again"}'
	assert_output --partial '"1":{"inputs":{"value":2}'
}

@test "conditions: pass, chunk, combine, kind, has, lacks" {
	tiny_workflows '{"rules": [
	  {"when": {"pass": "high"}, "node": "1", "set": {"value": 10}},
	  {"when": {"pass": "low"}, "node": "1", "set": {"value": 20}},
	  {"when": {"chunk": "later"}, "node": "3", "set": {"filename_prefix": "later"}},
	  {"when": {"chunk": "first", "kind": "render"}, "node": "4", "set": {"filename_prefix": "first"}},
	  {"when": {"has": ["name", "seed"], "lacks": "nothing"}, "node": "2", "set": {"image": "has"}},
	  {"when": {"lacks": "name"}, "node": "2", "set": {"image": "lacks"}},
	  {"when": {"combine": "first"}, "node": "2", "set": {"image": "combine"}}
	]}'
	run pr-patch --workflows wf --no-state < <(tiny_job high 0)
	assert_output --partial '"value":10'
	assert_output --partial '"filename_prefix":"x"'
	assert_output --partial '"filename_prefix":"first"'
	assert_output --partial '"image":"has"'
	run pr-patch --workflows wf --no-state < <(tiny_job low 3)
	assert_output --partial '"value":20'
	assert_output --partial '"filename_prefix":"later"'
	assert_output --partial '"filename_prefix":"y"'
}

@test "stage: default server name, duplicates merged, clashes refused" {
	tiny_workflows '{"rules": [
	  {"node": "2", "stage": {"input": "image", "path": "references/v/job_002_ref.png"}},
	  {"node": "2", "stage": {"input": "image", "path": "references/v/job_002_ref.png"}},
	  {"node": "1", "create": true, "stage": {"input": "file", "path": "/abs/clip.png", "as": "mine/${name}.png"}}
	]}'
	run pr-patch --workflows wf --no-state < <(tiny_job)
	assert_success
	assert_output --partial '"stage":[{"path":"references/v/job_002_ref.png","as":"prompt-runner/v/job_002_ref.png"},{"path":"/abs/clip.png","as":"mine/clip.png"}]'
	assert_output --partial '"image":"prompt-runner/v/job_002_ref.png"'
	tiny_workflows '{"rules": [
	  {"node": "2", "stage": {"input": "image", "path": "a/x.png"}},
	  {"node": "2", "stage": {"input": "image", "path": "b/x.png"}}
	]}'
	run pr-patch --workflows wf --no-state < <(tiny_job)
	assert_failure 2
	assert_output --partial 'two different files staged as "prompt-runner/v/x.png": "a/x.png" and "b/x.png"'
}

@test "collect and derive: paths stay under --out, derive reads a collected file" {
	tiny_workflows '{"rules": [{"node": "3", "collect": {"role": "image", "path": "../escape.png"}}]}'
	run pr-patch --workflows wf --no-state < <(tiny_job)
	assert_failure 2
	assert_output --partial 'collect.path "../escape.png" must not have empty, "." or ".." parts'
	tiny_workflows '{"rules": [{"node": "3", "collect": {"role": "image", "path": "/etc/x.png"}}]}'
	run pr-patch --workflows wf --no-state < <(tiny_job)
	assert_failure 2
	assert_output --partial 'must be relative to --out'
	tiny_workflows '{"rules": [{"derive": {"from": "images/a.png", "frame": 3, "path": "r.png", "role": "reference"}}]}'
	run pr-patch --workflows wf --no-state < <(tiny_job)
	assert_failure 2
	assert_output --partial 'derives from "images/a.png", which the job does not collect'
	tiny_workflows '{"rules": [
	  {"node": "3", "collect": {"role": "image", "path": "images/a.png"}},
	  {"derive": {"from": "images/a.png", "frame": "${frames}", "path": "r.png", "role": "reference"}}
	]}'
	run pr-patch --workflows wf --no-state < <(tiny_job)
	assert_success
	assert_output --partial '"collect":[{"node":"3","role":"image","path":"images/a.png"}],"derive":[{"from":"images/a.png","frame":97,"path":"r.png","role":"reference"}]'
	tiny_workflows '{"rules": [{"node": "3", "collect": {"role": "image", "path": "a.png"}}, {"node": "3", "delete_node": true}]}'
	run pr-patch --workflows wf --no-state < <(tiny_job)
	assert_failure 2
	assert_output --partial 'collects the output of node 3, which was deleted'
}

@test "rules files are checked: unknown keys, bad conditions, rules that do nothing" {
	for rules in \
	    '{"rules": [{"node": "1", "sett": {"value": 1}}]}|rule 1: unknown key "sett"' \
	    '{"rules": [{"node": "1", "when": {"pass": "mid"}, "set": {"value": 1}}]}|when.pass must be "high" or "low"' \
	    '{"rules": [{"node": "1", "when": {"phase": "x"}, "set": {"value": 1}}]}|unknown condition "phase"' \
	    '{"rules": [{"node": "1"}]}|the rule does nothing' \
	    '{"rules": [{"set": {"value": 1}}]}|the rule edits a node but names none' \
	    '{"rules": [{"node": "1", "title": "X", "set": {"value": 1}}]}|give "node" or "title", not both' \
	    '{"rulez": []}|unknown key "rulez"' \
	    '{"rules": [], "frame_multiplier": 0}|"frame_multiplier" must be a whole number >= 1' \
	    '{"rules": [ }|invalid JSON'; do
		tiny_workflows "${rules%|*}"
		run pr-patch --workflows wf --no-state < <(tiny_job)
		assert_failure 2
		assert_output --partial "${rules#*|}"
		assert_output --partial 'wf/prompt.rules.json:'
	done
	# a bare array of rules is accepted
	tiny_workflows '[{"node": "1", "set": {"value": 3}}]'
	run pr-patch --workflows wf --no-state < <(tiny_job)
	assert_success
}

@test "a UI-format workflow is refused with a hint" {
	mkdir wf
	echo '{"last_node_id": 3, "nodes": [{"id": 1, "type": "KSampler"}], "links": [], "version": 0.4}' > wf/prompt.json
	echo '{"rules": []}' > wf/prompt.rules.json
	run pr-patch --workflows wf --no-state < <(tiny_job)
	assert_failure 2
	assert_output 'pr-patch: wf/prompt.json: this is a UI-format workflow (it has "nodes" and "links"); in ComfyUI export it with Save (API)'
	run pr-patch --list-nodes wf/prompt.json
	assert_failure 2
	echo '{"1": {"inputs": {}}}' > wf/prompt.json
	run pr-patch --workflows wf --no-state < <(tiny_job)
	assert_failure 2
	assert_output --partial 'wf/prompt.json:1: node "1" has no class_type'
}

@test "--list-nodes prints one record per node" {
	run pr-patch --list-nodes "$REPO/workflows/prompt.json"
	assert_success
	[ "${#lines[@]}" -eq "$(jq length "$REPO/workflows/prompt.json")" ]
	assert_line '{"id":"309:298","class_type":"WanVideoLoraSelect","title":"WanVideo Lora Select","inputs":["lora","strength","low_mem_load","merge_loras"]}'
	assert_line --partial '{"id":"19","class_type":"INTConstant","title":"LENGTH","inputs":["value"]}'
}

@test "--explain describes each change on stderr and leaves stdout alone" {
	render_job clipA 2 low 0 > jobs.jsonl
	run --separate-stderr pr-patch --workflows "$REPO/workflows" --no-state --explain < jobs.jsonl
	assert_success
	[ "$output" = "$(pr-patch --workflows "$REPO/workflows" --no-state < jobs.jsonl)" ]
	grep -qx 'clipA/job_002: rule 1: set 4.model = "low.gguf"' <<< "$stderr"
	grep -qx 'clipA/job_002: rule 14: delete node 365' <<< "$stderr"
	grep -qx 'clipA/job_002: rule 11: skipped: not pass "high"' <<< "$stderr"
	grep -qx 'clipA/job_002: rule 15: stage latents/clipA/job_001.latent as prompt-runner/clipA/job_001.latent' <<< "$stderr"
}

@test "state: pretty copies per job, in ComfyUI's layout; nothing written on failure" {
	{ render_job clipA 1 high 0; render_job clipA 2 low 0; render_job clipB 1 high 0; } > jobs.jsonl
	run pr-patch --workflows "$REPO/workflows" --state st < jobs.jsonl
	assert_success
	[ -f st/clipA/workflows/job_001.json ] && [ -f st/clipA/workflows/job_002.json ] && [ -f st/clipB/workflows/job_001.json ]
	head -3 st/clipA/workflows/job_002.json > head.txt
	printf '{\n  "3": {\n    "inputs": {\n' | cmp - head.txt
	# the copy and the record's workflow are the same JSON
	sed -n 2p <<< "$output" | jq -S .workflow > a.json
	jq -S . st/clipA/workflows/job_002.json > b.json
	cmp a.json b.json
}

@test "bad job records: exit 2 naming the line, nothing on stdout" {
	for bad in \
	    '{"video":"v","kind":"render"}|<stdin>:2: field "id": expected a string' \
	    '{"id":"w/job_001","video":"v","kind":"render"}|<stdin>:2: field "id": "w/job_001" must be "v/<name>"' \
	    '{"id":"v/job_001","video":"v","kind":"paint"}|<stdin>:2: field "kind": expected "render" or "combine", found "paint"' \
	    '{"id":"v/job_001","video":"v","kind":"render","vars":[]}|<stdin>:2: field "vars": expected an object, found array' \
	    '{"id":"v/job_009","video":"v v","kind":"render"}|<stdin>:2: field "video": "v v" contains '"' '" \
	    '[1]|<stdin>:2: expected a JSON object, found array' \
	    '{"id": |<stdin>:2: column 8: invalid JSON: unexpected end of input'; do
		run --separate-stderr pr-patch --workflows "$REPO/workflows" --no-state < <(render_job v 3 high 1; echo "${bad%|*}")
		assert_failure 2
		[ -z "$output" ]
		[[ "$stderr" == *"${bad#*|}"* ]] || { echo "got: $stderr"; return 1; }
	done
	run pr-patch --workflows "$REPO/workflows" --no-state < <(render_job v 1 high 0; render_job v 1 high 0)
	assert_failure 2
	assert_output 'pr-patch: <stdin>:2: job "v/job_001" again (first on line 1)'
}

@test "usage: --help, --version, bad options, /dev/full" {
	run pr-patch --help
	assert_success
	assert_output --partial 'usage: pr-patch'
	run pr-patch --version
	assert_output 'pr-patch (prompt-runner) 0.1.0'
	run pr-patch --bogus
	assert_failure 2
	run pr-patch extra-arg
	assert_failure 2
	assert_output --partial 'unexpected argument "extra-arg"'
	render_job clipA 1 high 0 > jobs.jsonl
	run sh -c 'pr-patch --workflows "$1" --no-state < jobs.jsonl > /dev/full' sh "$REPO/workflows"
	assert_failure 3
	assert_output --partial 'error writing standard output'
}
