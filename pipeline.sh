#!/usr/bin/env bash
# pipeline.sh: prompt files in, videos out. Chains the pr-* tools and keeps
# every intermediate file under the state folder, so any stage can be
# inspected, edited and rerun by hand.
#
# parse -> plan -> patch -> submit -> combine -> report -> upload ->
# shutdown; a failed video never holds up the others, and with --shutdown
# the pod is stopped at the end whatever happened (after the finals are
# uploaded).
set -eu

usage() {
	cat <<'EOF'
usage: pipeline.sh [--dry-run] [options] [PROMPT_FILE_OR_DIR ...]

Parses every prompt file (default: prompt_files/), plans its chunks and
patches every job's workflow into STATE/<video>/ (prompt.jsonl, plan.jsonl,
jobs.jsonl, workflows/<job>.json) and prints a summary. Then, unless
--dry-run, renders all of them with pr-submit into OUT/ (results in
STATE/results.jsonl) and joins each video's segments with pr-combine into
OUT/final/<video>_final.mp4 (records in STATE/finals.jsonl). With --dest it
uploads the finals with pr-upload (STATE/uploads.jsonl) and the run's
records and log (STATE/uploads-state.jsonl); with --shutdown it then stops
the pod with pr-shutdown, which refuses while a final is not uploaded. Run
it again after any failure: what finished is not rendered or sent again.

  --dry-run          plan and patch only: nothing is sent to any server
  --server URL[#AFF] ComfyUI server (repeatable; default http://127.0.0.1:8188);
                     #high, #low or #MODEL: the jobs it takes (pr-submit(1))
  --job-timeout S       }
  --wait-server S       }
  --queue-depth N       } passed to pr-submit(1)
  --model-batch N       }
  --move-after S        }
  --max-output-size B   }
  --transfer-timeout S  }
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
  --dest gs://B/P    upload finals, records and log there (pr-upload(1));
                     also PR_DEST
  --run NAME         the run's folder under the prefix (default: fixed per
                     state folder)
  --no-upload        do not upload even with --dest or PR_DEST
  --upload-chunk SIZE         resumable chunk (pr-upload --chunk-size)   }
  --resumable-threshold SIZE  files this big go resumable                } passed to
  --retry-delay S             the first wait before a retry              } pr-upload(1)
  --max-retry-time S          how long a file may go without progress    }
  --shutdown         stop this RunPod pod at the end (pr-shutdown(1)), also
                     after failures; a watchdog stops it at the deadline
  --terminate        terminate the pod instead (network volumes)
  --watchdog D       the watchdog's deadline with --shutdown (default 12h;
                     0: none)
  --background       go on in the background, immune to the SSH session
                     ending; output in STATE/pipeline.log
  -h, --help         this text

Environment: PR_DEST; pr-upload's credentials (GOOGLE_APPLICATION_CREDENTIALS,
GOOGLE_APPLICATION_CREDENTIALS_JSON, GCS_OAUTH_TOKEN, STORAGE_EMULATOR_HOST);
pr-shutdown's RUNPOD_POD_ID, RUNPOD_API_KEY (RunPod sets both).

Exit status: 0 all videos planned (and rendered, uploaded), 1 some failed
(the others are done), 2 usage error or a preflight problem, 3 no server,
upload or shutdown impossible.
EOF
}

die() {
	echo "pipeline.sh: $*" >&2
	exit 2
}

orig_args=("$@")
started_at=$(date +%s)
here=$(cd "$(dirname "$0")" && pwd)
# Tools: $PR_BIN, else the build beside this script, else $PATH.
if [ -n "${PR_BIN:-}" ]; then
	PATH=$PR_BIN:$PATH
elif [ -x "$here/bin/pr-parse" ]; then
	PATH=$here/bin:$PATH
fi
for tool in pr-parse pr-plan pr-patch pr-submit pr-combine pr-upload pr-shutdown jq; do
	command -v "$tool" >/dev/null || die "$tool not found (run make, or ./setup for jq)"
done

dry_run=0
state=state
out=out
dest=${PR_DEST:-}
upload=1
shutdown=0
watchdog=12h
background=0
upload_args=()
shutdown_args=()
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
	--server|--job-timeout|--wait-server|--queue-depth|--model-batch|--move-after|\
	--max-output-size|--transfer-timeout)
		[ $# -ge 2 ] || die "$1 needs a value"
		submit_args+=("$1" "$2"); shift ;;
	--chunk|--overlap|--combine|--seed)
		[ $# -ge 2 ] || die "$1 needs a value"
		plan_args+=("$1" "$2"); shift ;;
	--no-align) plan_args+=("$1") ;;
	--keep-intermediate|--reencode) combine_args+=("$1") ;;
	--dest) [ $# -ge 2 ] || die "--dest needs gs://BUCKET/PREFIX"; dest=$2; shift ;;
	--run) [ $# -ge 2 ] || die "--run needs a name"; upload_args+=(--run "$2"); shift ;;
	--upload-chunk) [ $# -ge 2 ] || die "$1 needs a size"; upload_args+=(--chunk-size "$2"); shift ;;
	--resumable-threshold|--retry-delay|--max-retry-time)
		[ $# -ge 2 ] || die "$1 needs a value"
		upload_args+=("$1" "$2"); shift ;;
	--no-upload) upload=0 ;;
	--shutdown) shutdown=1 ;;
	--terminate) shutdown_args+=(--terminate) ;;
	--watchdog) [ $# -ge 2 ] || die "--watchdog needs a duration"; watchdog=$2; shift ;;
	--background) background=1 ;;
	-h|--help) usage; exit 0 ;;
	--) shift; inputs+=("$@"); break ;;
	-*) die "unknown option $1 (see --help)" ;;
	*) inputs+=("$1") ;;
	esac
	shift
done
[ ${#inputs[@]} -gt 0 ] || inputs=(prompt_files)
[ "$upload" -eq 1 ] || dest=
[ "$shutdown" -eq 0 ] || [ -n "$dest" ] || [ "$dry_run" -eq 1 ] ||
	die "--shutdown needs --dest (or PR_DEST): the finals are uploaded before the pod stops"

# --background: the same command again, in its own session (an SSH
# session ending sends it no hangup) with its output in the state folder.
if [ "$background" -eq 1 ]; then
	mkdir -p "$state"
	args=()
	for a in "${orig_args[@]}"; do [ "$a" = --background ] || args+=("$a"); done
	setsid nohup "$0" "${args[@]}" > "$state/pipeline.log" 2>&1 < /dev/null &
	echo "pipeline.sh: running in the background (pid $!); its output goes to $state/pipeline.log"
	exit 0
fi

mkdir -p "$state"
prompts=$(mktemp "$state/.prompts.XXXXXX")
jobs=$(mktemp "$state/.jobs.XXXXXX")
watchdog_pid=
# shellcheck disable=SC2317 # (called by the trap)
cleanup() {
	rm -f "$prompts" "$jobs" "$state"/*/*.jsonl.tmp "$state"/*.jsonl.tmp
	# The run is over: its watchdog has nothing left to guard.
	[ -z "$watchdog_pid" ] || kill "$watchdog_pid" 2>/dev/null || true
}
trap cleanup EXIT

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
# file whenever the stage wrote any (also when some items failed), unless
# a signal killed it: then what it wrote may end mid-record, and the last
# whole file stays. Status 1 marks the run failed and goes on; others end
# it, except with --shutdown: then what finished is still uploaded and the
# pod still stopped.
fatal=0
stage() {
	local out=$1 rc=0
	shift
	"$@" > "$out.tmp" || rc=$?
	[ "$rc" -ge 128 ] || [ ! -s "$out.tmp" ] || mv "$out.tmp" "$out"
	rm -f "$out.tmp"
	case $rc in
	0) ;;
	1) failed=1 ;;
	*) [ "$shutdown" -eq 1 ] || exit "$rc"
	   [ "$fatal" -ne 0 ] || fatal=$rc ;;
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

# With --shutdown a watchdog guards the whole run: a hung stage must not
# keep the pod billing. It is killed when the run ends (cleanup).
if [ "$shutdown" -eq 1 ] && [ "$watchdog" != 0 ]; then
	pr-shutdown --watchdog "$watchdog" "${shutdown_args[@]}" \
	    > "$state/watchdog.jsonl" 2>> "$state/watchdog.log" < /dev/null &
	watchdog_pid=$!
fi

# All videos at once, so one video's failure does not hold up the others.
# Its records are kept whenever it wrote any (also when some jobs failed).
if [ -s "$jobs" ]; then
	stage "$state/results.jsonl" pr-submit --state "$state" --out "$out" "${submit_args[@]}" < "$jobs"
fi
if [ -s "$state/results.jsonl" ]; then
	jq -r '[.id, .status, (.error.message // "")] | @tsv' "$state/results.jsonl" |
		awk -F '\t' '$2 != "success" { printf "%-24s %-8s %s\n", $1, $2, $3 }' >&2
	# Every video whose segments are all there becomes a verified final;
	# the others get a record saying why.
	stage "$state/finals.jsonl" pr-combine --state "$state" --out "$out" "${combine_args[@]}" < "$state/results.jsonl"
fi

# What the run made and where its time went: seam sheets and one page
# (pr-report(1)), uploaded beside the finals. A report that cannot be
# made costs nothing else: the uploads and the shutdown still happen.
if [ -s "$state/results.jsonl" ] || [ -s "$state/finals.jsonl" ]; then
	finals=$state/finals.jsonl
	[ -f "$finals" ] || finals=/dev/null
	# The pod's price, for the report's cost: asked now, while the pod runs
	# (its stop comes after the report is uploaded). pr-report reads it.
	if [ "$shutdown" -eq 1 ]; then
		pr-shutdown --status > "$state/pod.jsonl.tmp" &&
			mv "$state/pod.jsonl.tmp" "$state/pod.jsonl"
		rm -f "$state/pod.jsonl.tmp"
	fi
	rc=0
	pr-report --state "$state" --out "$out" --started "$started_at" \
	    < "$finals" > "$state/reports.jsonl.tmp" || rc=$?
	if [ "$rc" -lt 2 ]; then
		mv "$state/reports.jsonl.tmp" "$state/reports.jsonl"
	else
		echo "pipeline: no report (pr-report exit $rc); going on" >&2
	fi
	rm -f "$state/reports.jsonl.tmp"
	[ "$rc" -eq 0 ] || failed=1
fi

# The finals, then the run's own records (the finals' upload records
# included) so whoever looks later sees what happened.
if [ -n "$dest" ]; then
	[ -s "$state/finals.jsonl" ] &&
		stage "$state/uploads.jsonl" pr-upload --dest "$dest" --state "$state" --out "$out" \
		    "${upload_args[@]}" < "$state/finals.jsonl"
	# The report is made anew by every run, so its objects are replaced.
	[ -s "$state/reports.jsonl" ] &&
		stage "$state/uploads-report.jsonl" pr-upload --dest "$dest" --state "$state" \
		    --out "$out" --overwrite "${upload_args[@]}" \
		    < <(jq -c 'select(.path) | {path}' "$state/reports.jsonl")
	# A snapshot: a log still being written would not match its upload.
	snap=$state/upload-snapshot
	rm -rf "$snap"
	mkdir -p "$snap/state"
	for f in "$state"/*.jsonl "$state"/*.log; do
		[ -f "$f" ] || continue
		case $f in */uploads-state.jsonl) continue ;; esac
		cp "$f" "$snap/state/"
		jq -nc --arg p "state/${f##*/}" '{path: $p}'
	done > "$snap/records.jsonl"
	# Objects PREFIX/RUN/state/NAME, replaced by each run.
	stage "$state/uploads-state.jsonl" pr-upload --dest "$dest" --state "$state" \
	    --out "$snap" --overwrite "${upload_args[@]}" < "$snap/records.jsonl"
	rm -rf "$snap"
fi

if [ "$shutdown" -eq 1 ]; then
	[ -f "$state/finals.jsonl" ] || : > "$state/finals.jsonl"
	[ -f "$state/uploads.jsonl" ] || : > "$state/uploads.jsonl"
	rc=0
	pr-shutdown --expect "$state/finals.jsonl" "${shutdown_args[@]}" \
	    < "$state/uploads.jsonl" > "$state/shutdown.jsonl" || rc=$?
	case $rc in
	0) ;;
	1) failed=1 ;;
	*) [ "$fatal" -ne 0 ] || fatal=$rc ;;
	esac
fi

if [ -s "$state/finals.jsonl" ]; then
	echo
	row video frames fps size final
	jq -r '[.video, (.frames // "-"), (.fps // "-"), (.size // "-"),
		(if .status == "success" then .path else "FAILED: " + .error.message end)] | @tsv' \
		"$state/finals.jsonl" | while IFS=$'\t' read -r v f r z p; do row "$v" "$f" "$r" "$z" "$p"; done
fi
if [ -n "$dest" ] && [ -s "$state/uploads.jsonl" ]; then
	echo
	jq -r 'if .verified then "uploaded  \(.uri)" else "NOT UPLOADED  \(.path): \(.error)" end' \
	    "$state/uploads.jsonl"
fi
if [ -s "$state/reports.jsonl" ]; then
	jq -r --arg out "$out" 'select(.report == "index") | "report: \($out)/\(.path)"' \
	    "$state/reports.jsonl"
fi
if [ -s "$state/shutdown.jsonl" ]; then
	jq -r '"pod \(.pod): \(.status)" + (if .error then " (\(.error))" else "" end)' "$state/shutdown.jsonl"
fi
# The run in numbers, as pr-report counted them: GPU time is each
# prompt's start to end as the server reported them, and a model load is
# counted where consecutive prompts on a server name different models:
# estimates, and labelled so.
if [ -s "$state/reports.jsonl" ]; then
	wall=$(( $(date +%s) - started_at ))
	price=null
	[ ! -s "$state/shutdown.jsonl" ] || price=$(jq '.cost_per_hr // null' "$state/shutdown.jsonl")
	echo
	jq -r --argjson wall "$wall" --argjson price "$price" 'select(.report == "index")
	  | "wall time \($wall) s; \(.prompts.run) prompts run, \(.prompts.cached) cached, \(.prompts.retried) retried",
	    (.servers[] | "server \(.server): GPU busy \(.gpu_busy * 10 | round / 10) s (\(if $wall > 0 then (.gpu_busy / $wall * 100 | round) else 0 end)% of wall, estimated from the server'"'"'s start and end times), \(.model_loads) model loads (estimated)"),
	    (if $price != null then "cost: \($wall / 3600 * $price * 10000 | round / 10000) USD (\($wall) s at \($price) USD/h, the pod'"'"'s price as RunPod reports it)" else empty end)
	' "$state/reports.jsonl"
fi
[ "$fatal" -eq 0 ] || exit "$fatal"
exit "$failed"
