# Checks an API-format workflow against node schemas in /object_info shape
# ($schemas), the way ComfyUI validates: only nodes reachable from the given
# output node ids ($outputs) are checked. Prints one line per problem.
# Run as: jq -r --slurpfile schemas object_info.json --argjson outputs '["9"]' -f schema-check.jq
# (Fine with jq: what it compares are names, types and small integers.)
def links: [.inputs[] | select(type == "array") | .[0]];
def reach($wf):
  def grow: . as $s | ($s + [$s[] | $wf[.] // empty | links[]]) | unique;
  until(. == grow; grow);

$schemas[0] as $schemas
| . as $wf
| ($outputs | reach($wf)) as $live
| $live[] as $id
| if $wf[$id] == null then "\($id): linked but missing"
  else
    $wf[$id] as $n
    | $schemas[$n.class_type] as $s
    | if $s == null then "\($id): unknown class \($n.class_type)"
      else
        ( ($s.input.required // {}) | keys[]
          | select($n.inputs[.] == null)
          | "\($id) (\($n.class_type)): required input \(.) missing" ),
        ( $n.inputs | to_entries[]
          | .key as $k | .value as $v
          | (($s.input.required // {})[$k] // ($s.input.optional // {})[$k]) as $spec
          | if $spec == null then
              (if ($n.class_type == "VHS_VideoCombine" and
                   ($k | IN("pix_fmt", "crf", "save_metadata", "trim_to_audio"))) then empty
               else "\($id) (\($n.class_type)): unknown input \($k)" end)
            elif ($v | type) == "array" then
              ($schemas[$wf[$v[0]].class_type // ""].output[$v[1]]) as $out
              | if $out == null then "\($id).\($k): link to a missing output \($v)"
                elif ($spec[0] | type) == "string" and $spec[0] != $out and $spec[0] != "*" and $out != "*"
                then "\($id).\($k): \($out) into \($spec[0])"
                else empty end
            elif ($spec[0] | type) == "array" then
              if ($spec[1]._dynamic != null) or ($spec[0] | index([$v])) != null then empty
              else "\($id).\($k): \($v | tojson) not in the node's list" end
            elif ({"INT": "number", "FLOAT": "number", "BOOLEAN": "boolean", "STRING": "string"}[$spec[0]]) as $t
                 | $t != null and ($v | type) != $t then
              "\($id).\($k): \($v | tojson) is not \($spec[0])"
            else empty end )
      end
  end
