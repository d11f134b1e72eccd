# Loaded by the suites that run the ComfyUI stand-in: starting and
# stopping it, WebSocket recorders, and comparing with the recordings.
# Everything started here is stopped in teardown, whatever happens.

CAPTURES=$SHARED/comfyui-captures
WS_RECORD=$BIN/unit/ws-record

need_captures() {
	[ -d "$CAPTURES" ] || skip "no ../shared/reference/comfyui-captures beside the repository"
}

# start_comfy [OPTIONS...]: sets COMFY (the base URL), COMFY_PORT,
# COMFY_ROOT and COMFY_PID.
start_comfy() {
	COMFY_ROOT=${COMFY_ROOT:-$BATS_TEST_TMPDIR/comfy}
	fake-comfyui --listen 127.0.0.1 --port 0 --root "$COMFY_ROOT" "$@" \
	    > "$BATS_TEST_TMPDIR/comfy.out" 2> "$BATS_TEST_TMPDIR/comfy.err" &
	COMFY_PID=$!
	wait_for 'grep -q "^listening on 127.0.0.1:" "$BATS_TEST_TMPDIR/comfy.out"' 10 || {
		cat "$BATS_TEST_TMPDIR/comfy.err" >&2
		return 1
	}
	COMFY_PORT=$(sed -n 's/^listening on 127.0.0.1://p' "$BATS_TEST_TMPDIR/comfy.out")
	COMFY=http://127.0.0.1:$COMFY_PORT
}

stop_comfy() {
	if [ -n "${COMFY_PID:-}" ]; then
		kill "$COMFY_PID" 2>/dev/null || true
		wait "$COMFY_PID" 2>/dev/null || true
		COMFY_PID=
	fi
}

RECORDERS=()

# record NAME [ws-record OPTIONS...]: a recorder writing NAME.jsonl, ready
# (it has the greeting) when this returns.
record() {
	local name=$1
	shift
	"$WS_RECORD" --port "$COMFY_PORT" "$@" > "$BATS_TEST_TMPDIR/$name.jsonl" \
	    2> "$BATS_TEST_TMPDIR/$name.err" &
	RECORDERS+=($!)
	eval "${name}_PID=$!"
	wait_for "[ -s '$BATS_TEST_TMPDIR/$name.jsonl' ]" 10
}

# finish NAME: waits for the recorder to stop by itself.
finish() {
	local pid
	eval "pid=\$${1}_PID"
	wait "$pid"
}

teardown() {
	local p
	for p in "${RECORDERS[@]}"; do kill "$p" 2>/dev/null || true; done
	stop_comfy
}

# post PATH BODY: POST with the body; prints the answer's body. Its
# status is in last_status (a file, so that $(post ...) keeps it too).
post() {
	local out
	out=$(curl -s -w '\n%{http_code}' -X POST -H 'Content-Type: application/json' \
	    --data-binary "$2" "$COMFY$1")
	printf '%s' "${out##*$'\n'}" > "$BATS_TEST_TMPDIR/.last-status"
	printf '%s' "${out%$'\n'*}"
}

last_status() {
	cat "$BATS_TEST_TMPDIR/.last-status"
}

# The request of a recording with the given prompt_id.
request() {
	jq -c --arg id "$2" '. + {prompt_id: $id}' "$CAPTURES/requests/$1.json"
}

# A message stream as the recordings compare: text messages without ids
# and times, binary frames by event and what they say.
normalize() {
	jq -c 'if .text then .text | (.data |= (del(.prompt_id, .timestamp, .sid)
	         | if .nodes | type == "object" then .nodes |= map_values(del(.prompt_id))
	           else . end
	         | del(.exception_message, .traceback, .current_inputs)))
	       elif .binary then {binary: (.binary | {event, fmt, node, text,
	         meta: (.meta // null | if . then del(.prompt_id) else . end)})}
	       else del(.t) end' "$@"
}
