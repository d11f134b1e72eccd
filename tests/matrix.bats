#!/usr/bin/env bats
# The fault matrix: the whole pipeline on the stand-ins (render, combine,
# upload, stop the pod) with one fault per cell, then the same command
# again with the fault gone, as a user would rerun it. Every attempt is
# judged on what a user relies on:
#   false success  a final said "success" that does not hold the right
#                  frames, an upload said "verified" that is not the file,
#                  the pod stopped while a finished final was not safely
#                  uploaded, or the run exited 0 with a video not done;
#   duplicated     a job sampled (the GPU's work: its sampler ran, not
#                  cached) more often than once, beyond a re-execution its
#                  fault forced (an output the server itself truncated);
#   lost           a video the rerun did not finish, verified and uploaded.
# Each cell adds a row to the table the last test prints and writes to
# build/matrix/table.md (PR_MATRIX_OUT). kill -9 cells strike each tool at
# seeded points among those its clean run passes (tools/lib/crash.h):
# MATRIX_SEEDS (default "1 2"; make check-slow runs more).
#
# tests/run: alone
# Plain pass only: every cell is two full pipeline runs, and the sanitizer
# pass runs each tool's own suites already.

load helper
load submit
load gcs
load runpod
load stand-ins

MATRIX_SEEDS=${MATRIX_SEEDS:-1 2}
MATRIX_OUT=${PR_MATRIX_OUT:-$REPO/build/matrix}
ROWS=$BATS_RUN_TMPDIR/matrix-rows
POINTS=$BATS_RUN_TMPDIR/matrix-points
SHIM=$BIN/shim/libenospc.so

suite_setup() {
	[[ $BATS_TEST_DESCRIPTION == secrets:* ]] || plain_pass_only
}

teardown() {
	local p
	for p in "${OTHER_PIDS[@]}"; do kill -9 -- "-$p" 2>/dev/null || kill -9 "$p" 2>/dev/null || true; done
	stop_all
}

stop_all() {
	stop_comfy
	stop_gcs
	stop_runpod
}

# fresh NAME: an attempt of its own in ./NAME: new stand-ins (a GCS that
# wants a service-account token, a running pod) and the two videos.
fresh() {
	stop_all
	mkdir -p "$BATS_TEST_TMPDIR/$1"
	cd "$BATS_TEST_TMPDIR/$1" || return 1
	rm -f "$BATS_TEST_TMPDIR"/{comfy,gcs,rp}.out
	COMFY_ROOT=$PWD/comfy GCS_ROOT=$PWD/gcs
	SA_KEY=$BATS_TEST_TMPDIR/sa
	[ -f "$SA_KEY.pem" ] || make_key "$SA_KEY"
	stand_ins --step-time 0.002 --node-time 0.002
}

# The frames each video must hold, from source frame 0 on.
declare -gA FRAMES=([one]=41 [two]=150)

# pipeline NAME [ENV...]: the user's command, in the foreground, bounded;
# output in NAME.out and NAME.err, status in NAME.rc.
pipeline() {
	local name=$1 rc=0
	shift
	timeout 240 env "$@" "$REPO/pipeline.sh" --server "$COMFY" --dest gs://bkt/v --run r \
	    --shutdown --watchdog 10m --job-timeout "${JOB_TIMEOUT:-60}" \
	    --retry-delay 0.05 --max-retry-time 20 --resumable-threshold 1 --upload-chunk 256K \
	    p > "$name.out" 2> "$name.err" || rc=$?
	echo "$rc" > "$name.rc"
}

clear_faults() {
	curl -sf -X POST "$COMFY/fake/faults/clear" > /dev/null
	curl -sf -X POST "$GCS/fake/faults/clear" > /dev/null
	curl -sf -X POST "$RP/fake/faults/clear" > /dev/null
}

# judge NAME: the claims the run named made that do not hold (false
# successes) on stdout, one per line; the videos it finished in NAME.done.
judge() {
	local name=$1 v rec path obj done=0 stopped
	for v in "${!FRAMES[@]}"; do
		rec=$(jq -c --arg v "$v" 'select(.video == $v)' state/finals.jsonl 2>/dev/null | tail -n 1)
		[ "$(jq -r '.status // ""' <<< "$rec")" = success ] || continue
		path=out/$(jq -r .path <<< "$rec")
		if ! [ -f "$path" ] ||
		    [ "$(fake-frameid "$path" 2>/dev/null | jq -c .runs)" != "[[0,$((FRAMES[$v] - 1))]]" ]; then
			echo "$name: $v: final says success, but $path does not hold frames 0-$((FRAMES[$v] - 1))"
			continue
		fi
		obj=$GCS_ROOT/bkt/v/r/$(jq -r .path <<< "$rec")
		if jq -s -e --arg p "$(jq -r .path <<< "$rec")" 'any(.[]; .path == $p and .verified)' \
		    state/uploads.jsonl > /dev/null 2>&1; then
			if ! cmp -s "$path" "$obj"; then
				echo "$name: $v: upload says verified, but the object is not the final"
				continue
			fi
			done=$((done + 1))
		fi
	done
	stopped=$(pod_status pod1)
	if [ "$stopped" != RUNNING ] && [ "$done" -lt "$(produced)" ]; then
		echo "$name: the pod is $stopped with $(( $(produced) - done )) finished final(s) not safely uploaded"
	fi
	if [ "$(cat "$name.rc")" = 0 ] && [ "$done" -lt "${#FRAMES[@]}" ]; then
		echo "$name: exit 0 with $done of ${#FRAMES[@]} videos done"
	fi
	echo "$done" > "$name.done"
}

# The finals that say success.
produced() {
	jq -s 'map(select(.status == "success")) | length' state/finals.jsonl 2>/dev/null || echo 0
}

# Executions that sampled (the GPU's work, not cached) beyond one per job,
# on stdout, one line per surplus execution: the job's id.
surplus() {
	curl -sf "$COMFY/fake/state" > fake-state.json
	jq -s -c '[.[] | select(.ev == "submit") | {key: .prompt_id, value: .job}] | from_entries' \
	    state/journal.jsonl > prompt-jobs.json
	jq -r --slurpfile m prompt-jobs.json '
	    ([.posts[] | select(.path == "/prompt") | .body
	      | {key: .prompt_id, value: [.prompt | to_entries[]
	          | select(.value.class_type | test("Sampler")) | .key]}] | from_entries) as $samplers
	    | .runs[]
	    | select(.status == "success") | . as $run
	    | select(any(.executed[]; . as $n | ($samplers[$run.prompt_id] // []) | index($n) != null))
	    | $m[0][.prompt_id] // "unjournaled:\(.prompt_id)"' fake-state.json |
	    sort | uniq -c | awk '$1 > 1 { for (i = 1; i < $1; i++) print $2 }'
}

# The faults still armed after a run, one per line: a cell whose fault
# never struck would prove nothing.
unfired() {
	curl -sf "$COMFY/fake/state" | jq -c '.faults[]'
	curl -sf "$GCS/fake/faults" | jq -c '.[]'
	curl -sf "$RP/fake/faults" | jq -c '.[]'
}

# attempt NAME ARM [ENV...]: one attempt: fresh stand-ins, ARM (a
# function arming the fault), the run with ENV (by the function RUN1
# names, default pipeline), faults cleared, the pod
# running again (as the user would start it to finish), the rerun.
# Appends "false lost surplus" to ./tally and details to ./notes.
attempt() {
	local name=$1 arm=$2 falses lost
	shift 2
	fresh "$name"
	"$arm"
	"${RUN1:-pipeline}" run1 "$@"
	falses=$(judge run1)
	unfired > unfired.txt
	clear_faults
	curl -sf -X POST "$RP/fake/pods" -d '{"id":"pod1"}' > /dev/null
	pipeline run2
	falses+=${falses:+$'\n'}$(judge run2)
	lost=$(( ${#FRAMES[@]} - $(cat run2.done) ))
	[ "$(cat run2.rc)" = 0 ] || lost=$(( lost > 0 ? lost : 1 ))
	surplus > surplus.txt
	cd "$BATS_TEST_TMPDIR" || return 1
	{
		printf '%s: run 1 exit %s, rerun exit %s' "$name" "$(cat "$name/run1.rc")" "$(cat "$name/run2.rc")"
		[ ! -s "$name/surplus.txt" ] || printf ', ran again: %s' "$(tr '\n' ' ' < "$name/surplus.txt")"
		[ ! -s "$name/unfired.txt" ] || printf ', NEVER STRUCK: %s' "$(tr '\n' ' ' < "$name/unfired.txt")"
		echo
		[ -z "$falses" ] || echo "$falses"
	} >> notes
	echo "$(grep -c . <<< "$falses") $lost $(grep -c . "$name/surplus.txt") $(grep -c . "$name/unfired.txt")" >> tally
}

# row FAULT STAGE [ALLOWED]: the cell's row from ./tally (ALLOWED
# re-executions per attempt forced by the fault itself); fails the test
# when anything was lost, duplicated or falsely reported, or a fault
# armed for the cell never struck.
row() {
	local fault=$1 stage=$2 allowed=${3:-0} runs survived falses lost dups unfired
	read -r runs survived falses lost dups unfired < <(awk -v a="$allowed" '
	    { d = $3 - a; if (d < 0) d = 0
	      n++; f += $1; l += $2; dd += d; u += $4; if ($1 == 0 && $2 == 0 && d == 0) s++ }
	    END { printf "%d %d %d %d %d %d\n", n, s, f, l, dd, u }' tally)
	mkdir -p "$ROWS"
	printf '| %s | %s | %d | %d | %d | %d | %d |\n' "$fault" "$stage" "$runs" "$survived" \
	    "$lost" "$dups" "$falses" > "$ROWS/$(printf '%03d' "$BATS_TEST_NUMBER")"
	cat notes >&2
	sed 's/^/# /' notes >&3
	[ "$runs" -gt 0 ] && [ "$falses" = 0 ] && [ "$lost" = 0 ] && [ "$dups" = 0 ] && [ "$unfired" = 0 ]
}

# comfy_fault JSON: arms it on the ComfyUI stand-in.
comfy_fault() { curl -sf -X POST "$COMFY/fake/faults" -d "$1" > /dev/null; }
gcs_fault() { curl -sf -X POST "$GCS/fake/faults" -d "$1" > /dev/null; }
runpod_fault() { curl -sf -X POST "$RP/fake/faults" -d "$1" > /dev/null; }
no_fault() { :; }

# --- baseline ---

@test "matrix: no fault (the baseline; counts each tool's crash points)" {
	attempt clean no_fault PR_CRASH_TRACE="$BATS_TEST_TMPDIR/trace"
	# Each tool's most points in one process.
	awk '{ n[$1 " " $2]++ } END { for (k in n) { split(k, a, " ");
	    if (n[k] > m[a[1]]) m[a[1]] = n[k] } for (t in m) print t, m[t] }' trace > "$POINTS"
	row none - 0
	# The clean run did it all the first time, and the rerun nothing.
	grep -q '; 0 prompts run, 6 cached' clean/run2.out
}

# --- ComfyUI ---

@test "matrix: ComfyUI drops the WebSocket mid-job" {
	arm() { comfy_fault '{"kind":"ws_drop","prompt":2}'; }
	attempt a arm
	row "socket drop" ComfyUI
}

@test "matrix: ComfyUI restarts mid-job (queue, history and cache lost)" {
	arm() { comfy_fault '{"kind":"restart","prompt":3,"down":1}'; }
	attempt a arm
	row "restart mid-job" ComfyUI
}

http_cell() {
	local route=$1
	arm_status() { comfy_fault "{\"kind\":\"http\",\"route\":\"$route\",\"status\":500,\"times\":2}"; }
	arm_close() { comfy_fault "{\"kind\":\"http\",\"route\":\"$route\",\"close\":true,\"times\":2}"; }
	attempt status arm_status
	attempt close arm_close
	row "500, connection reset on ${route%/\*}" ComfyUI
}

@test "matrix: ComfyUI answers 500 and resets connections on /prompt" { http_cell /prompt; }
@test "matrix: ComfyUI answers 500 and resets connections on /history" { http_cell '/history/*'; }
@test "matrix: ComfyUI answers 500 and resets connections on /view" { http_cell /view; }
@test "matrix: ComfyUI answers 500 and resets connections on /upload/image" { http_cell /upload/image; }

@test "matrix: a node hangs (the job times out)" {
	arm() { comfy_fault '{"kind":"hang","node":"WanVideoSampler","prompt":2}'; }
	JOB_TIMEOUT=3 attempt a arm
	row "hung node" ComfyUI
}

@test "matrix: execution errors: out of memory, and another" {
	arm_oom() { comfy_fault '{"kind":"exec_error","prompt":2}'; }
	arm_other() { comfy_fault '{"kind":"exec_error","prompt":2,"exception_type":"RuntimeError","message":"bad input"}'; }
	attempt oom arm_oom
	attempt other arm_other
	row "execution error (OOM, other)" ComfyUI
}

@test "matrix: truncated and empty outputs" {
	arm_cut() { comfy_fault '{"kind":"truncate","prompt":2}'; }
	arm_empty() { comfy_fault '{"kind":"empty","prompt":4}'; }
	attempt truncate arm_cut
	attempt empty arm_empty
	# The server's own output is bad: running that job again is the cure.
	row "truncated, empty output" ComfyUI 1
}

# --- GCS ---

@test "matrix: GCS answers 503, 429 and 401" {
	arm_503() { gcs_fault '{"kind":"status","code":503,"times":3}'; }
	arm_429() { gcs_fault '{"kind":"status","code":429,"retry_after":0,"times":3}'; }
	arm_401() { gcs_fault '{"kind":"unauthorized","times":2}'; }
	attempt s503 arm_503
	attempt s429 arm_429
	attempt s401 arm_401
	row "503, 429, 401" GCS
}

@test "matrix: GCS cuts a chunk midway, and expires a session" {
	arm_cut() { gcs_fault '{"kind":"cut","times":2}'; }
	arm_expire() { gcs_fault '{"kind":"expire","times":1}'; }
	attempt cut arm_cut
	attempt expire arm_expire
	row "cut mid-chunk, session expiry" GCS
}

# --- RunPod ---

@test "matrix: RunPod's API fails: REST 500, GraphQL error, timeout" {
	arm_500() { runpod_fault '{"kind":"status","code":500,"on":"rest_stop"}'; }
	arm_gql() { runpod_fault '[{"kind":"status","code":500,"on":"rest_stop"},{"kind":"graphql_error"}]'; }
	arm_slow() { runpod_fault '{"kind":"timeout","seconds":3,"on":"rest_stop"}'; }
	attempt r500 arm_500
	attempt gql arm_gql
	attempt slow arm_slow
	row "API 500, GraphQL error, timeout" RunPod
}

# --- a full disk ---

@test "matrix: the disk fills up while collecting outputs" {
	[ -f "$SHIM" ] || skip "no $SHIM (make builds it)"
	attempt a no_fault LD_PRELOAD="$SHIM" PR_ENOSPC_DIR="$BATS_TEST_TMPDIR/a/out" \
	    PR_ENOSPC_PROGS=pr-submit PR_ENOSPC_AFTER=60000
	grep -q 'No space left on device' a/run1.err
	row "disk full" "pr-submit collecting"
}

@test "matrix: the disk fills up while combining" {
	[ -f "$SHIM" ] || skip "no $SHIM (make builds it)"
	attempt a no_fault LD_PRELOAD="$SHIM" PR_ENOSPC_DIR="$BATS_TEST_TMPDIR/a/out/final" \
	    PR_ENOSPC_PROGS=pr-combine,ffmpeg PR_ENOSPC_AFTER=10000
	grep -q 'No space left on device' a/run1.err
	row "disk full" "pr-combine"
}

# --- kill -9 ---

# points TOOL: how many crash points one process of TOOL passes in a
# clean run (the baseline test counts them; alone, this counts them).
points() {
	if ! [ -s "$POINTS" ]; then
		(attempt count no_fault PR_CRASH_TRACE="$BATS_TEST_TMPDIR/trace"; stop_all) > /dev/null
		cd "$BATS_TEST_TMPDIR" || return 1
		awk '{ n[$1 " " $2]++ } END { for (k in n) { split(k, a, " ");
		    if (n[k] > m[a[1]]) m[a[1]] = n[k] } for (t in m) print t, m[t] }' trace > "$POINTS"
		: > tally
		: > notes
	fi
	awk -v t="$1" '$1 == t { print $2 }' "$POINTS"
}

# kill_cell TOOL: for each seed, kills every TOOL process at its Nth crash
# point, N drawn from the seed, and checks the kill struck.
kill_cell() {
	local tool=$1 seed n max
	max=$(points "$tool")
	[ -n "$max" ] || { echo "no crash points counted for $tool" >&2; return 1; }
	for seed in $MATRIX_SEEDS; do
		n=$(awk -v s="$seed" -v m="$max" 'BEGIN { srand(s); print int(rand() * m) + 1 }')
		attempt "s$seed" no_fault PR_CRASH_AT="$tool/*:$n" PR_CRASH_TRACE="$BATS_TEST_TMPDIR/s$seed.trace"
		grep " kill$" "s$seed.trace" | sed "s/^/seed $seed, point $n of $max: /" >> struck
		grep -q " kill$" "s$seed.trace" || { echo "seed $seed: $tool never reached point $n" >&2; return 1; }
	done
	cat struck >&2
	row "kill -9 ($(awk '{ print $NF == "kill" ? $(NF - 1) : "" }' struck | sort -u | tr '\n' ' ' | sed 's/ $//'))" "$tool"
}

@test "matrix: kill -9 of pr-parse at seeded points" { kill_cell pr-parse; }
@test "matrix: kill -9 of pr-plan at seeded points" { kill_cell pr-plan; }
@test "matrix: kill -9 of pr-patch at seeded points" { kill_cell pr-patch; }
@test "matrix: kill -9 of pr-submit at seeded points" { kill_cell pr-submit; }
@test "matrix: kill -9 of pr-combine at seeded points" { kill_cell pr-combine; }
@test "matrix: kill -9 of pr-upload at seeded points" { kill_cell pr-upload; }
@test "matrix: kill -9 of pr-shutdown at seeded points" { kill_cell pr-shutdown; }

# killed NAME: the user's command, killed -9 at $MS ms; what it started
# goes on alone, and the user's rerun comes after (one during it is
# refused: run-all.bats).
killed() {
	local name=$1 pg
	setsid "$REPO/pipeline.sh" --server "$COMFY" --dest gs://bkt/v --run r --shutdown \
	    --watchdog 10m --retry-delay 0.05 --resumable-threshold 1 --upload-chunk 256K \
	    p > "$name.out" 2> "$name.err" &
	pg=$!
	OTHER_PIDS+=("$pg")
	sleep "$(awk -v ms="$MS" 'BEGIN { print ms / 1000 }')"   # the moment is the point
	kill -9 "$pg" 2>/dev/null || true
	echo 137 > "$name.rc"
	wait_for "! pgrep -g $pg -f 'pr-(parse|plan|patch|submit|combine|upload)|pr-shutdown --expect' > /dev/null" 120
	# Its watchdog would still stop the pod at its deadline.
	kill -9 -- "-$pg" 2>/dev/null || true
}

@test "matrix: kill -9 of pipeline.sh at seeded moments, its children left orphaned" {
	local seed
	for seed in $MATRIX_SEEDS; do
		MS=$(awk -v s="$seed" 'BEGIN { srand(s); print int(rand() * 1500) + 100 }')
		RUN1=killed attempt "s$seed" no_fault
		echo "seed $seed: killed after $MS ms" >> struck
	done
	cat struck >&2
	row "kill -9 (timed), orphans" pipeline.sh
}

# --- secrets ---

@test "secrets: no key, token or session URI in any argv, log, record, upload or output of a run" {
	arm() {
		# Resumable sessions cut and resumed, a REST stop that fails:
		# the paths where a secret would most likely slip out.
		gcs_fault '{"kind":"cut","times":2}'
		runpod_fault '{"kind":"status","code":500,"on":"rest_stop"}'
		while :; do
			for f in /proc/[0-9]*/cmdline; do { tr '\0' ' ' < "$f"; echo; } 2> /dev/null || true; done
			sleep 0.01
		done > "$BATS_TEST_TMPDIR/cmdlines" &
		SAMPLER=$!
		OTHER_PIDS+=("$SAMPLER")
	}
	attempt a arm
	kill "$SAMPLER" 2> /dev/null || true
	cd a
	[ -s state/uploads.jsonl ] && [ "$(pod_status pod1)" = EXITED ]
	grep -q 'pipeline.sh' "$BATS_TEST_TMPDIR/cmdlines"
	# Everything a user or a log collector could see.
	{
		cat run1.out run1.err run2.out run2.err "$BATS_TEST_TMPDIR/cmdlines"
		find state -type f ! -path 'state/upload-sessions/*' -exec cat {} +
		find gcs/bkt -type f -exec cat {} +
		cat "$BATS_TEST_TMPDIR"/{comfy,gcs,rp}.{out,err} 2> /dev/null
	} > all.txt
	[ "$(wc -c < all.txt)" -gt 10000 ]
	! grep -qF -- "$RP_KEY" all.txt
	! grep -qF -- "$(sed -n 2p "$BATS_TEST_TMPDIR/sa.pem")" all.txt
	! grep -q 'ya29\.' all.txt
	! grep -q 'upload_id=' all.txt
	# The sessions kept on purpose for a resume are the owner's alone.
	if [ -d state/upload-sessions ]; then
		[ -z "$(find state/upload-sessions -type f -perm /077)" ]
	fi
}

# --- the table ---

@test "matrix: the summary table: nothing lost, duplicated or falsely reported" {
	[ -d "$ROWS" ] || skip "no cell ran in this run"
	mkdir -p "$MATRIX_OUT"
	{
		echo '| fault | stage | runs | survived | lost | duplicated | false success |'
		echo '|---|---|---|---|---|---|---|'
		cat "$ROWS"/*
	} > "$MATRIX_OUT/table.md.tmp"
	mv "$MATRIX_OUT/table.md.tmp" "$MATRIX_OUT/table.md"
	sed 's/^/# /' "$MATRIX_OUT/table.md" >&3
	# Every row: all survived, 0 lost, 0 duplicated, 0 false.
	awk -F' *\\| *' 'NR > 2 && ($5 != $4 || $6 != 0 || $7 != 0 || $8 != 0) { bad = 1 } END { exit bad }' \
	    "$MATRIX_OUT/table.md"
}
