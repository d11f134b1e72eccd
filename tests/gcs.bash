# Loaded by the suites that run the GCS stand-in: starting and stopping
# it, requests with curl, resumable sessions, and service-account JWTs
# made with openssl. Everything started here is stopped in teardown.

# start_gcs [OPTIONS...]: the stand-in on 127.0.0.1 with bucket "b". Sets
# GCS (the base URL), GCS_PORT, GCS_ROOT and GCS_PID.
start_gcs() {
	GCS_ROOT=${GCS_ROOT:-$BATS_TEST_TMPDIR/root}
	fake-gcs --listen 127.0.0.1 --port 0 --root "$GCS_ROOT" --bucket b "$@" \
	    > "$BATS_TEST_TMPDIR/gcs.out" 2> "$BATS_TEST_TMPDIR/gcs.err" &
	GCS_PID=$!
	wait_for 'grep -q "^listening on 127.0.0.1:" "$BATS_TEST_TMPDIR/gcs.out"' 10 || {
		cat "$BATS_TEST_TMPDIR/gcs.err" >&2
		return 1
	}
	GCS_PORT=$(sed -n 's/^listening on 127.0.0.1://p' "$BATS_TEST_TMPDIR/gcs.out")
	GCS=http://127.0.0.1:$GCS_PORT
	UPLOAD=$GCS/upload/storage/v1/b/b/o
}

stop_gcs() {
	if [ -n "${GCS_PID:-}" ]; then
		kill "$GCS_PID" 2>/dev/null || true
		wait "$GCS_PID" 2>/dev/null || true
		GCS_PID=
	fi
}

# Other processes a test starts, killed in teardown.
OTHER_PIDS=()

teardown() {
	local p
	for p in "${OTHER_PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
	stop_gcs
}

# req METHOD URL [CURL ARGS...]: prints the status code; the body is in
# body.out and the headers in headers.out (of the test's directory).
req() {
	local m=$1 url=$2
	shift 2
	curl -s -o body.out -D headers.out -w '%{http_code}' -X "$m" "$@" "$url"
}

# hdr NAME: that header of the last answer, or nothing.
hdr() {
	sed -n "s/^$1: *//Ip" headers.out | tr -d '\r'
}

# ctl PATH [JSON]: a control request (GET without JSON, POST with).
ctl() {
	if [ $# -gt 1 ]; then
		curl -s -X POST --data-binary "$2" "$GCS$1"
	else
		curl -s "$GCS$1"
	fi
}

# Base64 of a file's MD5, as GCS's md5Hash.
md5_of() {
	openssl dgst -md5 -binary "$1" | openssl base64 -A
}

# media NAME FILE [CURL ARGS...]: a simple upload of content type $CT
# (default application/octet-stream); prints the status.
media() {
	local name=$1 file=$2
	shift 2
	req POST "$UPLOAD?uploadType=media&name=$name" --data-binary "@$file" \
	    -H "Content-Type: ${CT:-application/octet-stream}" "$@"
}

# initiate NAME [CURL ARGS...]: a resumable session, its URI kept in
# session.uri (so that it survives $(...)); prints the status.
initiate() {
	local name=$1 code body=(--data-binary '')
	shift
	case " $* " in *" --data-binary "*) body=() ;; esac
	code=$(req POST "$UPLOAD?uploadType=resumable&name=$name" "${body[@]}" "$@")
	hdr Location > session.uri
	echo "$code"
}

# The URI of the last session initiated.
session() {
	cat session.uri
}

# chunk FILE FIRST LAST TOTAL [CURL ARGS...]: PUTs bytes FIRST..LAST of
# FILE on the session; prints the status.
chunk() {
	local file=$1 first=$2 last=$3 total=$4
	shift 4
	tail -c +$((first + 1)) "$file" | head -c $((last - first + 1)) > chunk.bin
	req PUT "$(session)" --data-binary @chunk.bin -H 'Content-Type:' \
	    -H "Content-Range: bytes $first-$last/$total" "$@"
}

# status_query [TOTAL]: PUT with an empty body; prints the status.
status_query() {
	req PUT "$(session)" --data-binary '' -H "Content-Range: bytes */${1:-*}"
}

# --- service-account JWTs ---

b64url() {
	openssl base64 -A | tr '+/' '-_' | tr -d '='
}

# make_key NAME: NAME.pem (private) and NAME.pub (public, PEM).
make_key() {
	openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$1.pem" 2>/dev/null
	openssl pkey -in "$1.pem" -pubout -out "$1.pub"
}

# claims [JQ FILTER]: good claims for this server, changed by the filter.
claims() {
	jq -nc --arg aud "$GCS/token" --argjson now "$(date +%s)" '
	  {iss: "uploader@test.iam.gserviceaccount.com",
	   scope: "https://www.googleapis.com/auth/devstorage.read_write",
	   aud: $aud, iat: $now, exp: ($now + 3600)} | '"${1:-.}"
}

JWT_HEADER='{"alg":"RS256","typ":"JWT"}'

# jwt KEY.pem CLAIMS [HEADER]: an RS256 assertion signed with openssl.
jwt() {
	local h c s
	h=$(printf '%s' "${3:-$JWT_HEADER}" | b64url)
	c=$(printf '%s' "$2" | b64url)
	s=$(printf '%s.%s' "$h" "$c" | openssl dgst -sha256 -sign "$1" -binary | b64url)
	printf '%s.%s.%s' "$h" "$c" "$s"
}

# exchange JWT: POST /token; prints the status, the answer in body.out.
exchange() {
	req POST "$GCS/token" \
	    --data-urlencode 'grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer' \
	    --data-urlencode "assertion=$1"
}

# metadata_token: a token from the GCE metadata endpoint.
metadata_token() {
	curl -s -H 'Metadata-Flavor: Google' \
	    "$GCS/computeMetadata/v1/instance/service-accounts/default/token" | jq -r .access_token
}
