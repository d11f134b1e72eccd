#!/usr/bin/env bash
# make demo: the whole pipeline on this machine, no GPU, no cloud. Starts
# the stand-ins (fake-comfyui, fake-gcs, fake-runpod) on free loopback
# ports, makes identity-coded source videos for the bundled prompt files,
# runs pipeline.sh with upload and shutdown on, shows what came out, and
# stops the stand-ins however it ends (Ctrl-C included).
#
#   tools/demo.sh [DIR]      (default: demo/ beside this script's folder)
set -eu

here=$(cd "$(dirname "$0")/.." && pwd)
demo=${1:-$here/demo}
# Tools: $PR_BIN (the tests set it), else the build beside this script.
PATH=${PR_BIN:-$here/bin}:$PATH
for t in fake-comfyui fake-gcs fake-runpod fake-frameid pr-parse jq; do
	command -v "$t" > /dev/null || { echo "demo: $t not found (run make, or ./setup)" >&2; exit 2; }
done

pids=()
# shellcheck disable=SC2317 # (called by the trap)
stop_all() {
	local p
	for p in "${pids[@]}"; do kill "$p" 2> /dev/null || true; done
	for p in "${pids[@]}"; do wait "$p" 2> /dev/null || true; done
	pids=()
}
trap stop_all EXIT
run_pid=
# Ctrl-C: the pipeline and whatever it runs (its own process group), then
# the stand-ins (the EXIT trap).
trap 'echo "demo: interrupted" >&2; [ -z "$run_pid" ] || kill -- "-$run_pid" 2> /dev/null; exit 130' INT TERM

rm -rf "$demo"
mkdir -p "$demo/prompts" "$demo/comfy" "$demo/gcs/demo-bucket"

# start NAME CMD...: runs a stand-in and waits for its ready line; its
# port in $port. (Not in $(...): the stand-in must be this shell's child.)
start() {
	local name=$1 i
	shift
	: > "$demo/$name.out"
	"$@" > "$demo/$name.out" 2> "$demo/$name.err" &
	pids+=($!)
	for ((i = 0; i < 500; i++)); do
		port=$(sed -n 's/^listening on 127.0.0.1://p' "$demo/$name.out")
		[ -z "$port" ] || return 0
		kill -0 "${pids[-1]}" 2> /dev/null || break
		sleep 0.02
	done
	echo "demo: $name did not start:" >&2
	cat "$demo/$name.err" >&2
	exit 3
}

# The models the workflows name, as empty files: the stand-in checks names.
while read -r m; do
	case $m in '#'* | '') continue ;; esac
	mkdir -p "$demo/comfy/models/$(dirname "$m")"
	: > "$demo/comfy/models/$m"
done < "$here/workflows/models.txt"

# Each source video as long as the longest prompt that uses it needs.
cp "$here"/prompt_files/*.txt "$demo/prompts/"
pr-parse "$demo"/prompts/*.txt | jq -r '[.input_video, .total_frames] | @tsv' |
	sort -k1,1 -k2,2nr | sort -u -k1,1 | while IFS=$'\t' read -r src frames; do
	fake-frameid --make "$demo/prompts/$src" --frames "$frames" --size 64x48 > /dev/null
done

echo "demo: starting the stand-ins"
start comfy fake-comfyui --listen 127.0.0.1 --port 0 --root "$demo/comfy" \
    --step-time 0.005 --node-time 0.005
comfy=$port
start gcs fake-gcs --listen 127.0.0.1 --port 0 --root "$demo/gcs"
gcs=$port
export FAKE_RUNPOD_API_KEY=demo-key-not-a-secret
start runpod fake-runpod --listen 127.0.0.1 --port 0 --pod demo-pod --price 0.69
runpod=$port

export STORAGE_EMULATOR_HOST=127.0.0.1:$gcs
export RUNPOD_POD_ID=demo-pod RUNPOD_API_KEY=$FAKE_RUNPOD_API_KEY
export RUNPOD_API_URL=http://127.0.0.1:$runpod/v1 RUNPOD_GRAPHQL_URL=http://127.0.0.1:$runpod/graphql
echo "demo: ComfyUI on :$comfy, Cloud Storage on :$gcs, RunPod on :$runpod"
echo

rc=0
setsid "$here/pipeline.sh" --server "http://127.0.0.1:$comfy" --state "$demo/state" --out "$demo/out" \
    --dest gs://demo-bucket/videos --run demo --shutdown --watchdog 10m \
    "$demo/prompts" &
run_pid=$!
wait "$run_pid" || rc=$?
run_pid=

echo
echo "demo: finals in $demo/out/final/:"
find "$demo/out/final" -maxdepth 1 -type f -printf '  %f  %s bytes\n' 2> /dev/null | sort
echo "demo: uploaded to the Cloud Storage stand-in ($demo/gcs/demo-bucket/):"
(cd "$demo/gcs/demo-bucket" && find . -type f | sort | sed 's|^\./|  gs://demo-bucket/|')
[ ! -f "$demo/out/report/index.html" ] || echo "demo: the report (seam sheets, GPU timeline): $demo/out/report/index.html"
state=$(curl -sf "http://127.0.0.1:$runpod/fake/state" | jq -r '.pods[0].desiredStatus')
echo "demo: the pod is now $state"
exit "$rc"
