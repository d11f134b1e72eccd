#!/usr/bin/env bash
# pipeline.sh: prompt files in, videos out. Chains the pr-* tools and keeps
# every intermediate file under the state folder, so any stage can be
# inspected, edited and rerun by hand.
#
# Today it runs parse, plan, patch, renders with pr-submit and joins with
# pr-combine; uploading and shutting the pod down come next.
set -eu

usage() {
	cat <<'EOF'
usage: pipeline.sh [--dry-run] [options] [PROMPT_FILE_OR_DIR ...]

Parses every prompt file (default: prompt_files/), plans its chunks and
patches every job's workflow into STATE/<video>/ (prompt.jsonl, plan.jsonl,
jobs.jsonl, workflows/<job>.json) and prints a summary. Then, unless
--dry-run, renders all of them with pr-submit into OUT/ (results in
STATE/results.jsonl) and joins each video's segments with pr-combine into
OUT/final/<video>_final.mp4 (records in STATE/finals.jsonl). Run it again
after any failure: what finished is not rendered again.

  --dry-run          plan and patch only: nothing is sent to any server
  --server URL       ComfyUI server (repeatable; default http://127.0.0.1:8188)
  --job-timeout S    } passed to pr-submit(1)
  --wait-server S    }
  --out DIR          rendered files (default: out)
  --state DIR        state folder (default: state)
  --workflows DIR    workflows and rules (default: the workflows/ folder
                     beside this script)
  --chunk N          frames per chunk (default 100)     } passed to
  --no-align         the plan document's literal rule   } pr-plan(1)
  --overlap K        frames each chunk overlaps         }
  --combine MODE     none, segments or progressive      }
  --seed N|random    sampler seed                       }
  --keep-intermediate  keep segments, latents, references } passed to
  --reencode           convert mismatched segments       } pr-combine(1)
  -h, --help         this text

Exit status: 0 all videos planned (and rendered), 1 some failed (the
others are done), 2 usage error or a preflight problem, 3 no server.
EOF
}

die() {
	echo "pipeline.sh: $*" >&2
	exit 2
}

here=$(cd "$(dirname "$0")" && pwd)
# Tools: $PR_BIN, else the build beside this script, else $PATH.
if [ -n "${PR_BIN:-}" ]; then
	PATH=$PR_BIN:$PATH
elif [ -x "$here/bin/pr-parse" ]; then
	PATH=$here/bin:$PATH
fi
for tool in pr-parse pr-plan pr-patch pr-submit pr-combine jq; do
	command -v "$tool" >/dev/null || die "$tool not found (run make, or ./setup for jq)"
done

dry_run=0
state=state
out=out
submit_args=()
combine_args=()
workflows=$here/workflows
plan_args=()
inputs=()
while [ $# -gt 0 ]; do
	case $1 in
	--dry-run) dry_run=1 ;;
	--state) [ $# -ge 2 ] || die "--state needs a directory"; state=$2; shift ;;
	--workflows) [ $# -ge 2 ] || die "--workflows needs a directory"; workflows=$2; shift ;;
	--out) [ $# -ge 2 ] || die "--out needs a directory"; out=$2; shift ;;
	--server|--job-timeout|--wait-server)
		[ $# -ge 2 ] || die "$1 needs a value"
		submit_args+=("$1" "$2"); shift ;;
	--chunk|--overlap|--combine|--seed)
		[ $# -ge 2 ] || die "$1 needs a value"
		plan_args+=("$1" "$2"); shift ;;
	--no-align) plan_args+=("$1") ;;
	--keep-intermediate|--reencode) combine_args+=("$1") ;;
	-h|--help) usage; exit 0 ;;
	--) shift; inputs+=("$@"); break ;;
	-*) die "unknown option $1 (see --help)" ;;
	*) inputs+=("$1") ;;
	esac
	shift
done
[ ${#inputs[@]} -gt 0 ] || inputs=(prompt_files)

mkdir -p "$state"
prompts=$(mktemp "$state/.prompts.XXXXXX")
jobs=$(mktemp "$state/.jobs.XXXXXX")
trap 'rm -f "$prompts" "$jobs" "$state"/*/*.jsonl.tmp "$state"/results.jsonl.tmp "$state"/finals.jsonl.tmp' EXIT

# Bad prompt files are reported by pr-parse; the good ones still go on.
failed=0
pr-parse --keep-going -- "${inputs[@]}" > "$prompts" || {
	rc=$?
	[ "$rc" -eq 1 ] || exit "$rc"
	failed=1
}

# Runs a stage with its stdout going to $1 through a temp file: the file is
# replaced only when the stage succeeded, never left half-written.
into() {
	local out=$1
	shift
	if "$@" > "$out.tmp"; then
		mv "$out.tmp" "$out"
	else
		rm -f "$out.tmp"
		return 1
	fi
}

# Runs an executing stage with its records going to $1: they replace the
# file whenever the stage wrote any (also when some items failed). Status 1
# marks the run failed and goes on; 2 and 3 end it.
stage() {
	local out=$1 rc=0
	shift
	"$@" > "$out.tmp" || rc=$?
	[ ! -s "$out.tmp" ] || mv "$out.tmp" "$out"
	case $rc in
	0) ;;
	1) failed=1 ;;
	*) exit "$rc" ;;
	esac
}

row() {
	printf '%-24s %7s %7s %5s  %s\n' "$@"
}

summary=()
while IFS= read -r record; do
	video=$(jq -r .video <<< "$record")
	dir=$state/$video
	mkdir -p "$dir"
	into "$dir/prompt.jsonl" printf '%s\n' "$record"
	# A failed stage leaves no older plan or jobs behind that no longer
	# match the prompt.
	if ! into "$dir/plan.jsonl" pr-plan "${plan_args[@]}" < "$dir/prompt.jsonl"; then
		rm -rf "$dir/plan.jsonl" "$dir/jobs.jsonl" "$dir/workflows"
		summary+=("$(row "$video" - - - "plan failed")")
		failed=1
		continue
	fi
	# pr-patch writes one file per job: start from an empty folder so no
	# workflow of an earlier, longer plan is left behind.
	rm -rf "$dir/workflows"
	if ! into "$dir/jobs.jsonl" pr-patch --workflows "$workflows" --state "$state" < "$dir/plan.jsonl"; then
		rm -rf "$dir/jobs.jsonl" "$dir/workflows"
		summary+=("$(row "$video" - - - "patch failed")")
		failed=1
		continue
	fi
	read -r frames chunks njobs < <(jq -rs '[.[0].vars.total_frames, (map(select(.pass == "high")) | length), length] | @tsv' "$dir/jobs.jsonl")
	summary+=("$(row "$video" "$frames" "$chunks" "$njobs" "$dir/")")
	cat "$dir/jobs.jsonl" >> "$jobs"
done < "$prompts"

row video frames chunks jobs state
for line in "${summary[@]}"; do printf '%s\n' "$line"; done

[ "$dry_run" -eq 0 ] || exit "$failed"
[ -s "$jobs" ] || exit "$failed"

# All videos at once, so one video's failure does not hold up the others.
# Its records are kept whenever it wrote any (also when some jobs failed).
stage "$state/results.jsonl" pr-submit --state "$state" --out "$out" "${submit_args[@]}" < "$jobs"
jq -r '[.id, .status, (.error.message // "")] | @tsv' "$state/results.jsonl" |
	awk -F '\t' '$2 != "success" { printf "%-24s %-8s %s\n", $1, $2, $3 }' >&2

# Every video whose segments are all there becomes a verified final; the
# others get a record saying why.
stage "$state/finals.jsonl" pr-combine --state "$state" --out "$out" "${combine_args[@]}" < "$state/results.jsonl"
echo
row video frames fps size final
jq -r '[.video, (.frames // "-"), (.fps // "-"), (.size // "-"),
	(if .status == "success" then .path else "FAILED: " + .error.message end)] | @tsv' \
	"$state/finals.jsonl" | while IFS=$'\t' read -r v f r z p; do row "$v" "$f" "$r" "$z" "$p"; done
exit "$failed"
