# Loaded by the suites that run the RunPod stand-in: starting and stopping
# it, REST and GraphQL requests with curl. The API key travels in the
# environment (FAKE_RUNPOD_API_KEY) and in a header file, never in argv.
# Everything started here is stopped in teardown.

# The key the stand-in is started with; empty: no authentication.
RP_KEY=rp-test-key-4c1d2e

# start_runpod [OPTIONS...]: the stand-in on 127.0.0.1 with the key
# $RP_KEY. Sets RP (the base URL), RP_PORT and RP_PID; writes auth.hdr,
# the header curl sends (-H @auth.hdr).
start_runpod() {
	FAKE_RUNPOD_API_KEY=$RP_KEY fake-runpod --listen 127.0.0.1 --port 0 "$@" \
	    > "$BATS_TEST_TMPDIR/rp.out" 2> "$BATS_TEST_TMPDIR/rp.err" &
	RP_PID=$!
	wait_for 'grep -q "^listening on 127.0.0.1:" "$BATS_TEST_TMPDIR/rp.out"' 10 || {
		cat "$BATS_TEST_TMPDIR/rp.err" >&2
		return 1
	}
	RP_PORT=$(sed -n 's/^listening on 127.0.0.1://p' "$BATS_TEST_TMPDIR/rp.out")
	RP=http://127.0.0.1:$RP_PORT
	printf 'Authorization: Bearer %s\n' "$RP_KEY" > "$BATS_TEST_TMPDIR/auth.hdr"
}

stop_runpod() {
	if [ -n "${RP_PID:-}" ]; then
		kill "$RP_PID" 2>/dev/null || true
		wait "$RP_PID" 2>/dev/null || true
		RP_PID=
	fi
}

# Other processes a test starts, killed in teardown.
OTHER_PIDS=()

teardown() {
	local p
	for p in "${OTHER_PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
	stop_runpod
}

# rest METHOD PATH [CURL ARGS...]: a REST request with the key; prints
# the status, the body in body.out.
rest() {
	local m=$1 path=$2
	shift 2
	curl -s -o body.out -w '%{http_code}' -X "$m" -H @"$BATS_TEST_TMPDIR/auth.hdr" "$@" "$RP$path"
}

# rest_noauth METHOD PATH [CURL ARGS...]: the same without the key.
rest_noauth() {
	local m=$1 path=$2
	shift 2
	curl -s -o body.out -w '%{http_code}' -X "$m" "$@" "$RP$path"
}

# gql_body QUERY [VARIABLES]: the JSON body of a GraphQL request.
gql_body() {
	jq -nc --arg q "$1" --argjson v "${2:-null}" \
	    'if $v == null then {query: $q} else {query: $q, variables: $v} end'
}

# gql QUERY [VARIABLES [CURL ARGS...]]: POST /graphql with the key in the
# header; prints the status, the body in body.out.
gql() {
	local q=$1 v=${2:-null}
	shift 2 || shift $#
	gql_body "$q" "$v" > gql.json
	curl -s -o body.out -w '%{http_code}' -H @"$BATS_TEST_TMPDIR/auth.hdr" \
	    -H 'Content-Type: application/json' --data-binary @gql.json "$@" "$RP/graphql"
}

# gql_url URL-SUFFIX QUERY: POST /graphql+SUFFIX without the header.
gql_url() {
	gql_body "$2" > gql.json
	curl -s -o body.out -w '%{http_code}' -H 'Content-Type: application/json' \
	    --data-binary @gql.json "$RP/graphql$1"
}

# ctl PATH [JSON]: a control request (GET without JSON, POST with).
ctl() {
	if [ $# -gt 1 ]; then
		curl -s -X POST --data-binary "$2" "$RP$1"
	else
		curl -s "$RP$1"
	fi
}

# state FILTER: jq -r FILTER over /fake/state.
state() {
	ctl /fake/state | jq -r "$1"
}

# pod_status ID: the pod's desiredStatus as /fake/state has it.
pod_status() {
	state ".pods[] | select(.id == \"$1\") | .desiredStatus"
}

# body FILTER: jq -c FILTER over the last answer.
body() {
	jq -c "$1" body.out
}
