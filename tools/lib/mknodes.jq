# Makes the project's node facts (tools/lib/nodes.json) from node schemas
# in /object_info shape annotated as in ../shared/reference/node-schemas/.
# Run through tools/lib/mknodes, which keeps every number literal exact
# (jq 1.6 would round big integers and turn 8.0 into 8).
#
# ($only = null keeps every class.) Each class keeps what a server sends in
# /object_info, plus three keys of ours that a server never sends:
#   "x-files"    in an input's option dict: the combo is a list of files,
#                [{dirs, ext | match, top}] in list order, filled at run time
#   "x-bare"     that option dict exists only to carry x-files: drop it
#   "x-static"   "after": the static options follow the files (default before)
#   "x-validate" {args, varkw, check, message}: the node validates these
#                inputs itself (VALIDATE_INPUTS); check names the rule
#   "x-links"    {inputs: {name: [types]}, outputs: {index: [types]}}: link
#                types whose Python type object overrides __ne__ ("*" = any)

# The VALIDATE_INPUTS rules of the classes that have one (see each class's
# _validate_inputs.rule for the source's own words).
def checks: {
  "LoadImage":          {check: "annotated_file", message: "Invalid image file"},
  "LoadLatent":         {check: "annotated_file", message: "Invalid latent file"},
  "VHS_LoadVideo":      {check: "annotated_file", message: "Invalid video file"},
  "LoadImageFromPath":  {check: "annotated_path", message: "Invalid image path"},
  "VHS_LoadVideoPath":  {check: "file_path",      message: "Invalid file path"},
  "CustomLoadLatent":   {check: "cwd_path",       message: "Invalid latent file"},
  "WanVideoDecode":     {check: "tiles"},
  "LoadLastLatent":     {check: "always"},
  "SaveLatentWithPath": {check: "not_empty"}
};

def input_match($filter):
  if ($filter | test("image/\\*")) then {match: "image"}
  elif ($filter | test("\\.latent")) then {match: ".latent"}
  elif ($filter | test("webm, mp4")) then {match: "video"}
  else error("unknown input-folder filter: \($filter)") end;

def files($o):
  if $o._dynamic == "input" then [{dirs: ["input"], top: true} + input_match($o._dynamic_filter)]
  else [$o._dynamic_folder_keys[] as $k | {dirs: $o._dynamic_dirs[$k], ext: $o._dynamic_extensions[$k]}]
  end;

def option_dict:
  if type == "object" and has("_dynamic") then
    . as $o
    | with_entries(select(.key | startswith("_") | not))
    | . + {"x-files": files($o)}
    + (if $o._annotation_only_dict then {"x-bare": true} else {} end)
    + (if ($o._dynamic_static_options // "" | test("after")) then {"x-static": "after"} else {} end)
  elif type == "object" then with_entries(select(.key | startswith("_") | not))
  else . end;

def link_types($text):
  if ($text | test("any ")) then ["*"]
  else [$text | scan("\\b[A-Z][A-Z_]{2,}\\b")] + (if ($text | test("\"\\*\"")) then ["*"] else [] end)
  end;

def links($rules):
  {inputs: ($rules | to_entries | map(select(.key | startswith("input:")))
            | map({key: (.key | ltrimstr("input:")), value: link_types(.value)}) | from_entries),
   outputs: ($rules | to_entries | map(select(.key | startswith("output:")))
            | map({key: (.key | ltrimstr("output:")), value: link_types(.value)}) | from_entries)};

with_entries(select($only == null or (.key as $k | $only | index([$k]))))
| map_values(
    . as $c
    | (with_entries(select(.key | startswith("_") | not))
       | .input |= map_values(map_values(if type == "array" then map(option_dict) else . end)))
    + (if $c._validate_inputs then
         {"x-validate": ({args: $c._validate_inputs.args, varkw: $c._validate_inputs.varkw}
                         + (checks[$c.name] // error("no check for \($c.name)")))}
       else {} end)
    + (if $c._link_type_rules then {"x-links": links($c._link_type_rules)} else {} end)
  )
