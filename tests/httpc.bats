#!/usr/bin/env bats
# The HTTP client of the library (tools/lib/httpc.c), driven through
# tests/unit/http-try against the ComfyUI stand-in.

load helper
load comfy

TRY=$BIN/unit/http-try

# Processes a test stopped with SIGSTOP: resumed before teardown stops
# them, or the server would never see its SIGTERM.
STOPPED=()
eval "comfy_teardown() $(declare -f teardown | sed 1d)"
teardown() {
	local p
	for p in "${STOPPED[@]}"; do kill -CONT "$p" 2>/dev/null || true; done
	[ -z "${TRY_PID:-}" ] || kill "$TRY_PID" 2>/dev/null || true
	comfy_teardown
}

history_status() {
	curl -s "$COMFY/history/$1" | jq -r --arg id "$1" '.[$id].status.status_str // "none"'
}

# output_file ID PREFIX [BYTES]: runs EmptyImage -> SaveImage as prompt ID,
# the file extended to BYTES (sparse) when given; prints /view's query.
output_file() {
	local p
	if [ -n "${3:-}" ]; then
		post /fake/faults "{\"kind\": \"size\", \"node\": \"2\", \"prompt_id\": \"$1\", \"bytes\": $3}" > /dev/null
	fi
	p=$(jq -nc --arg id "$1" --arg pre "$2" --argjson c "$RANDOM" '{prompt_id: $id, prompt: {
	  "1": {class_type: "EmptyImage", inputs: {width: 64, height: 48, batch_size: 1, color: $c}},
	  "2": {class_type: "SaveImage", inputs: {images: ["1", 0], filename_prefix: $pre}}}}')
	post /prompt "$p" > /dev/null
	[ "$(last_status)" = 200 ] || return 1
	wait_for "[ \"\$(history_status $1)\" = success ]" || return 1
	curl -s "$COMFY/history/$1" | jq -r --arg id "$1" \
	    '.[$id].outputs["2"].images[0] | "/view?filename=\(.filename | @uri)&subfolder=\(.subfolder | @uri)&type=output"'
}

# The stand-in's file behind a /view query.
served() {
	local f s
	f=$(sed 's/.*filename=\([^&]*\).*/\1/' <<< "$1")
	s=$(sed 's/.*subfolder=\([^&]*\).*/\1/' <<< "$1")
	printf '%s\n' "$COMFY_ROOT/output/$s/$f"
}

# Waits until a download's temporary file has data in it.
part_started() {
	local f
	for f in "$1".part.*; do [ -s "$f" ] && return 0; done
	return 1
}

millis() {
	echo $(($(date +%s%N) / 1000000))
}

@test "GET: JSON answers, whole, with their status" {
	start_comfy
	run "$TRY" get "$COMFY" /prompt
	assert_success
	assert_output $'status 200\n{"exec_info": {"queue_remaining": 0}}'
	run "$TRY" get "$COMFY" /object_info/SaveImage
	assert_success
	[ "${lines[0]}" = "status 200" ]
	jq -e '.SaveImage.name == "SaveImage" and .SaveImage.output_node == true' <<< "${output#status 200$'\n'}"
	# an unknown route: a status, not a failure
	run "$TRY" get "$COMFY" /nowhere
	assert_success
	[ "${lines[0]}" = "status 404" ]
}

@test "GET: the base may end in a slash and the path may lack one" {
	start_comfy
	run "$TRY" get "$COMFY/" prompt
	assert_success
	[ "${lines[0]}" = "status 200" ]
	run "$TRY" base "$COMFY//"
	assert_output "$COMFY"
	run "$TRY" base "https://example.org:8443/comfy/"
	assert_output "https://example.org:8443/comfy"
	for bad in "ftp://x" "http://" "127.0.0.1:8188" "http:///x" "http://a b" ""; do
		run "$TRY" base "$bad"
		assert_failure 1
		assert_output invalid
	done
}

@test "GET: calls on one handle share one connection" {
	command -v strace > /dev/null || skip "strace is not installed"
	start_comfy
	# LeakSanitizer cannot run under ptrace; the other checks can
	ASAN_OPTIONS=${ASAN_OPTIONS:-}:detect_leaks=0 \
	    run strace -f -e trace=connect -o "$BATS_TEST_TMPDIR/trace" "$TRY" get "$COMFY" /prompt /queue /history /system_stats
	assert_success
	[ "$(grep -c '^status 200$' <<< "$output")" = 4 ]
	[ "$(grep -c "sin_port=htons($COMFY_PORT)" "$BATS_TEST_TMPDIR/trace")" = 1 ]
}

@test "GET: a body over the limit is a failure; one at the limit is not" {
	start_comfy
	body='{"exec_info": {"queue_remaining": 0}}'
	run "$TRY" get "$COMFY" /prompt ${#body}
	assert_success
	assert_output "status 200"$'\n'"$body"
	run "$TRY" get "$COMFY" /prompt $((${#body} - 1))
	assert_failure 1
	assert_output "error: GET $COMFY/prompt: response larger than $((${#body} - 1)) bytes"
	# the limit holds for error bodies too
	run "$TRY" get "$COMFY" /object_info/SaveImage 100
	assert_failure 1
	assert_output --partial "response larger than 100 bytes"
}

@test "POST JSON: a rejected prompt comes back as 400 with its JSON" {
	start_comfy
	run "$TRY" post "$COMFY" /prompt '{"prompt": {}}'
	assert_success
	[ "${lines[0]}" = "status 400" ]
	jq -e '.error.type == "prompt_no_outputs" and .node_errors == {}' <<< "${lines[1]}"
}

@test "POST JSON: the exact body goes out, numbers as written" {
	start_comfy
	run "$TRY" post "$COMFY" /prompt '{"prompt": {"1": {"class_type": "EmptyImage", "inputs": {"width": 8, "height": 8, "batch_size": 1, "color": 0}}, "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "n/x"}}}, "prompt_id": "exact", "extra_data": {"big": 18446744073709551615, "f": 8.0, "u": "é\u0001"}}'
	assert_success
	[ "${lines[0]}" = "status 200" ]
	jq -e '.prompt_id == "exact" and .number == 0' <<< "${lines[1]}"
	# the stand-in keeps the body it parsed; its numbers are the literals sent
	curl -s "$COMFY/fake/state" | grep -qF '"extra_data": {"big": 18446744073709551615, "f": 8.0, "u": "\u00e9\u0001"}'
}

@test "POST: an empty body (/interrupt)" {
	start_comfy
	run "$TRY" post-empty "$COMFY" /interrupt
	assert_success
	assert_output "status 200"
	curl -s "$COMFY/fake/state" | jq -e '.posts[-1] | .path == "/interrupt" and (has("body") or has("text") | not)'
}

@test "a port nothing listens on: a failure that says so, on one line" {
	start_comfy
	port=$COMFY_PORT
	stop_comfy
	run "$TRY" get "http://127.0.0.1:$port" /history/x
	assert_failure 1
	assert_output --regexp "^error: GET http://127\.0\.0\.1:$port/history/x: .*Connection refused"
	[ "${#lines[@]}" = 1 ]
	run "$TRY" post-empty "http://127.0.0.1:$port" /interrupt
	assert_failure 1
	assert_output --regexp "^error: POST http://127\.0\.0\.1:$port/interrupt: .*Connection refused"
	# a long URL gives way to the reason
	run "$TRY" get "http://127.0.0.1:$port" "/view?filename=$(printf 'x%.0s' {1..400})"
	assert_failure 1
	assert_output --regexp "^error: GET http://127\.0\.0\.1:$port/view\?filename=x+\.\.\.: .*\(Connection refused\)$"
}

@test "https: TLS is attempted, and a server that does not speak it is a failure" {
	start_comfy
	run "$TRY" get "https://127.0.0.1:$COMFY_PORT" /prompt
	assert_failure 1
	assert_output --regexp "^error: GET https://127\.0\.0\.1:$COMFY_PORT/prompt: .*SSL"
}

@test "a connection closed without an answer is a failure" {
	start_comfy --fault '{"kind": "http", "route": "/history", "close": true}'
	run "$TRY" get "$COMFY" /history
	assert_failure 1
	assert_output "error: GET $COMFY/history: Empty reply from server"
}

@test "a POST whose connection closes unanswered is not sent again" {
	start_comfy
	post /fake/faults '{"kind": "http", "route": "/prompt", "method": "POST", "close": true}' > /dev/null
	# the first call leaves a kept-alive connection for the second
	run "$TRY" post "$COMFY" /free '{}' /prompt '{"prompt": {}}'
	assert_failure 1
	assert_output $'status 200\n'"error: POST $COMFY/prompt: Empty reply from server"
	[ "$(curl -s "$COMFY/fake/state" | jq -c '[.posts[].path]')" = '["/fake/faults","/free","/prompt"]' ]
}

@test "a 500 is an answer, not a failure" {
	start_comfy --fault '{"kind": "http", "route": "/queue", "status": 500}'
	run "$TRY" get "$COMFY" /queue
	assert_success
	[ "${lines[0]}" = "status 500" ]
	assert_output --partial "Server got itself in trouble"
}

@test "a server that does not answer: a failure after the stall time" {
	start_comfy --fault '{"kind": "http", "route": "/queue", "delay": 5}'
	t0=$(millis)
	HTTP_TRY_STALL=1 run "$TRY" get "$COMFY" /queue
	t=$(($(millis) - t0))
	assert_failure 1
	assert_output "error: GET $COMFY/queue: stalled: no data for 1 s"
	[ "$t" -ge 900 ] && [ "$t" -lt 3500 ]
}

@test "upload: the file lands byte for byte; overwrite replaces it" {
	start_comfy
	head -c 300000 /dev/urandom > a.bin
	head -c 1000 /dev/urandom > b.bin
	run "$TRY" upload "$COMFY" a.bin "x.png" sub
	assert_success
	[ "${lines[0]}" = "status 200" ]
	[ "${lines[1]}" = '{"name": "x.png", "subfolder": "sub", "type": "input"}' ]
	cmp a.bin "$COMFY_ROOT/input/sub/x.png"
	# the same name, other bytes: the server picks another name
	run "$TRY" upload "$COMFY" b.bin "x.png" sub
	assert_success
	jq -e '.name == "x (1).png"' <<< "${lines[1]}"
	cmp a.bin "$COMFY_ROOT/input/sub/x.png"
	run "$TRY" upload "$COMFY" b.bin "x.png" sub overwrite
	assert_success
	jq -e '.name == "x.png"' <<< "${lines[1]}"
	cmp b.bin "$COMFY_ROOT/input/sub/x.png"
	# no subfolder
	run "$TRY" upload "$COMFY" b.bin "top.png" ""
	assert_success
	cmp b.bin "$COMFY_ROOT/input/top.png"
	# a Content-Length and no Expect: the stand-in would wait a second otherwise
	head -c 3000000 /dev/urandom > big.bin
	t0=$(millis)
	run "$TRY" upload "$COMFY" big.bin "big.bin" sub
	assert_success
	[ $(($(millis) - t0)) -lt 900 ]
	cmp big.bin "$COMFY_ROOT/input/sub/big.bin"
}

@test "upload: names with spaces, quotes and dollars arrive as given" {
	start_comfy
	head -c 5000 /dev/urandom > 'local $file'
	for name in "my image.png" "it's \$HOME.png" "\`cmd\` & *.png" "ünï cödé.png"; do
		run "$TRY" upload "$COMFY" 'local $file' "$name" "a b"
		assert_success
		jq -e --arg n "$name" '.name == $n and .subfolder == "a b"' <<< "${lines[1]}"
		cmp 'local $file' "$COMFY_ROOT/input/a b/$name"
	done
	# libcurl percent-encodes a double quote in the part's filename, and
	# neither aiohttp nor the stand-in decode it: the answer tells the name
	run "$TRY" upload "$COMFY" 'local $file' 'say "hi".png' ""
	assert_success
	jq -e '.name == "say %22hi%22.png"' <<< "${lines[1]}"
	cmp 'local $file' "$COMFY_ROOT/input/say %22hi%22.png"
}

@test "upload: a missing local file fails before anything is sent" {
	start_comfy
	run "$TRY" upload "$COMFY" nothere.png x.png ""
	assert_failure 1
	assert_output "error: POST $COMFY/upload/image: nothere.png: No such file or directory"
	mkdir adir
	run "$TRY" upload "$COMFY" adir x.png ""
	assert_failure 1
	assert_output "error: POST $COMFY/upload/image: adir: not a regular file"
	[ "$(curl -s "$COMFY/fake/state" | jq '[.posts[] | select(.path == "/upload/image")] | length')" = 0 ]
}

@test "download: a prompt's output, byte for byte, with the usual mode" {
	start_comfy
	q=$(output_file d1 "dl/img")
	umask 027
	run "$TRY" download "$COMFY" "$q" "out/deep/x.png"
	assert_success
	assert_output "status 200"$'\n'"size $(stat -c %s "$(served "$q")")"
	cmp "out/deep/x.png" "$(served "$q")"
	[ "$(stat -c %a out/deep/x.png)" = 640 ]
	[ "$(ls out/deep)" = x.png ]
	# again, over the existing file
	umask 022
	run "$TRY" download "$COMFY" "$q" "out/deep/x.png"
	assert_success
	[ "$(stat -c %a out/deep/x.png)" = 644 ]
	[ "$(ls out/deep)" = x.png ]
}

@test "download: a 404 leaves nothing behind, an existing file untouched" {
	start_comfy
	run "$TRY" download "$COMFY" "/view?filename=nope.png&type=output" "out/x.png"
	assert_success
	assert_output $'status 404\nsize 0'
	[ -z "$(ls out)" ]
	echo old > out/x.png
	run "$TRY" download "$COMFY" "/view?filename=nope.png&type=output" "out/x.png"
	assert_success
	[ "$(cat out/x.png)" = old ]
	[ "$(ls out)" = x.png ]
	# an error body is kept for messages (the stand-in's 500 text)
	post /fake/faults '{"kind": "http", "route": "/view", "status": 500}' > /dev/null
	run "$TRY" download "$COMFY" "/view?filename=nope.png&type=output" "out/y.png"
	assert_success
	[ "${lines[0]}" = "status 500" ]
	assert_output --partial "Server got itself in trouble"
	[ "$(ls out)" = x.png ]
}

@test "download: a server that closes without answering, or a directory that cannot be made" {
	start_comfy
	post /fake/faults '{"kind": "http", "route": "/view", "close": true}' > /dev/null
	run "$TRY" download "$COMFY" "/view?filename=x.png&type=output" "out/x.png"
	assert_failure 1
	assert_output "error: GET $COMFY/view?filename=x.png&type=output: Empty reply from server"
	[ -z "$(ls out)" ]
	touch file
	run "$TRY" download "$COMFY" "/view?filename=x.png&type=output" "file/x.png"
	assert_failure 1
	assert_output "error: GET $COMFY/view?filename=x.png&type=output: file: Not a directory"
}

@test "download: a file that cannot be written fails and leaves nothing" {
	start_comfy
	q=$(output_file full "full/img" 100000)
	# a file size limit makes write() fail with EFBIG, as a full disk would
	run bash -c 'trap "" XFSZ; ulimit -f 10; exec "$@"' - "$TRY" download "$COMFY" "$q" out/x.png
	assert_failure 1
	assert_output --regexp "^error: GET $COMFY/view\?.*: writing out/x\.png\.part\.[A-Za-z0-9]{6}: File too large$"
	[ -z "$(ls out)" ]
}

@test "download: a connection closed mid-body fails and leaves nothing" {
	start_comfy
	q=$(output_file cut "cut/img" 4294967296)
	"$TRY" download "$COMFY" "$q" out/x.png > try.out 2>&1 &
	TRY_PID=$!
	wait_for 'part_started out/x.png'
	# hold the client while the served file shrinks: the stand-in then
	# finds less to read than it announced, and drops the connection
	kill -STOP "$TRY_PID"
	STOPPED+=("$TRY_PID")
	truncate -s 1000 "$(served "$q")"
	kill -CONT "$TRY_PID"
	rc=0
	wait "$TRY_PID" || rc=$?
	TRY_PID=
	[ "$rc" = 1 ]
	run cat try.out
	assert_output --regexp "^error: GET $COMFY/view\?.*: transfer closed with [0-9]+ bytes remaining to read$"
	[ -z "$(ls out)" ]
}

@test "download: a server that stalls mid-body fails after the stall time and leaves nothing" {
	start_comfy
	q=$(output_file stall "st/img" 4294967296)
	HTTP_TRY_STALL=1 "$TRY" download "$COMFY" "$q" out/x.png > try.out 2>&1 &
	TRY_PID=$!
	wait_for 'part_started out/x.png'
	kill -STOP "$COMFY_PID"
	STOPPED+=("$COMFY_PID")
	t0=$(millis)
	rc=0
	wait "$TRY_PID" || rc=$?
	t=$(($(millis) - t0))
	TRY_PID=
	kill -CONT "$COMFY_PID"
	[ "$rc" = 1 ]
	run cat try.out
	assert_output --regexp "^error: GET $COMFY/view\?.*: stalled: no data for 1 s$"
	[ "$t" -lt 3500 ]
	[ -z "$(ls out)" ]
}

@test "download: 1 GiB streams to disk in flat memory" {
	[ -x /usr/bin/time ] || skip "no /usr/bin/time to measure memory"
	start_comfy
	q=$(output_file big "big/img" 1073741824)
	/usr/bin/time -f %M -o rss "$TRY" download "$COMFY" "$q" out/big.png > try.out
	[ "$(cat try.out)" = $'status 200\nsize 1073741824' ]
	cmp out/big.png "$(served "$q")"
	rm out/big.png
	echo "# max RSS $(cat rss) KiB" >&3
	if [ -n "${PR_SANITIZED:-}" ]; then
		echo "# (not checked: the sanitizers' shadow memory and quarantine inflate RSS)" >&3
	else
		[ "$(cat rss)" -lt 32768 ]
	fi
}

@test "escape: a query value" {
	run "$TRY" escape 'a b/c?d&e=é+'
	assert_success
	assert_output 'a%20b%2Fc%3Fd%26e%3D%C3%A9%2B'
	run "$TRY" escape ''
	assert_output ''
	run "$TRY" escape 'AZaz09-._~'
	assert_output 'AZaz09-._~'
}
