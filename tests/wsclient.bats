#!/usr/bin/env bats
# The WebSocket client of the library (tools/lib/wsclient.c), driven by
# tests/unit/ws-try against fake-comfyui: greeting, whole messages in
# order, big ones, every way a connection ends, reconnects, pings.

load helper
load comfy

WS_TRY=$BIN/unit/ws-try

TINY='{"prompt": {"1": {"class_type": "EmptyImage", "inputs": {"width": 8, "height": 8, "batch_size": 1, "color": 0}},
 "2": {"class_type": "PreviewAny", "inputs": {"source": ["1", 0]}}}}'

# The tiny prompt for client $1, as prompt_id $2.
tiny() {
	jq -c --arg c "$1" --arg id "$2" '. + {client_id: $c, prompt_id: $id}' <<< "$TINY"
}

# try NAME CLIENT_ID [ws-try options and steps...]: ws-try in the
# background, writing NAME.jsonl; teardown stops it if still running.
try() {
	local name=$1 id=$2
	shift 2
	"$WS_TRY" --base "$COMFY" --client-id "$id" "$@" > "$BATS_TEST_TMPDIR/$name.jsonl" \
	    2> "$BATS_TEST_TMPDIR/$name.err" &
	RECORDERS+=($!)
	eval "${name}_PID=$!"
}

# has NAME JQ: whether some line of NAME.jsonl satisfies the filter.
has() {
	jq -e -s "any(.[]; $2)" "$BATS_TEST_TMPDIR/$1.jsonl" > /dev/null 2>&1
}

# when NAME JQ: the time (ms) of the first line satisfying the filter.
when() {
	jq -s "map(select($2)) | first | .t" "$BATS_TEST_TMPDIR/$1.jsonl"
}

greeted() {
	wait_for "has $1 '.message.type == \"status\"'" 10
}

@test "greeting: status with the client id as sid, escaped on the way" {
	start_comfy
	run "$WS_TRY" --base "$COMFY/" --client-id 'a b&c=d/é' connect until:status
	assert_success
	[ "$(jq -sc 'map(.state // empty)' <<< "$output")" = '["CONNECTING","UP"]' ]
	jq -se 'map(select(.message)) | .[0].message.data.sid == "a b&c=d/é"' <<< "$output"
	jq -se 'map(select(.state == "UP")) | .[0].connections == 1' <<< "$output"
	# /api/ws answers too: a prefix in the base is kept
	run "$WS_TRY" --base "$COMFY/api" --client-id x connect until:status
	assert_success
}

@test "a prompt's messages arrive whole and in the order sent" {
	start_comfy
	try a c1 connect until:status end
	greeted a
	post /prompt "$(tiny c1 p1)" > /dev/null
	[ "$(last_status)" = 200 ]
	finish a
	f=$BATS_TEST_TMPDIR/a.jsonl
	# the executing sequence, ending with node null for our prompt
	[ "$(jq -sc 'map(.message | select(.type == "executing") | .data.node)' "$f")" = '["1","2",null]' ]
	jq -se 'map(select(.message)) | last.message.data.prompt_id == "p1"' "$f"
	# the messages history keeps came in that order, with the same data
	diff <(curl -s "$COMFY/history/p1" | jq -c '.p1.status.messages[]') \
	    <(jq -c 'select(.message.type | IN("execution_start", "execution_cached", "execution_success"))
	        | [.message.type, .message.data]' "$f")
	# still UP, and nothing else happened to the connection
	[ "$(jq -sc 'map(.state // empty)' "$f")" = '["CONNECTING","UP"]' ]
}

@test "binary frames are dropped; the text around them is not" {
	start_comfy
	try a c1 connect until:status end
	greeted a
	post /prompt "$(jq -c '.prompt["2"] = {class_type: "SaveImageWebsocket", inputs: {images: ["1", 0]}}
	    | .prompt["1"].inputs.batch_size = 3' <<< "$(tiny c1 p1)")" > /dev/null
	finish a
	# progress ticks of the node, one per image, around its previews
	[ "$(jq -sc 'map(select(.message.type == "progress")) | length' "$BATS_TEST_TMPDIR/a.jsonl")" = 3 ]
	has a '.message.type == "execution_success"'
}

@test "a 3 MB message arrives whole across many receive buffers" {
	start_comfy --fault '{"kind": "exec_error", "node": "1"}'
	try a big connect until:status end
	greeted a
	jq -n '{prompt: {"1": {class_type: "WanVideoTextEncode", inputs: {positive_prompt: ("x" * 3000000), negative_prompt: ""}},
	        "2": {class_type: "PreviewAny", inputs: {source: ["1", 0]}}}, client_id: "big"}' > p.json
	curl -sf -X POST --data-binary @p.json "$COMFY/prompt" > /dev/null
	finish a
	jq -se 'map(select(.message.type == "execution_error")) | length == 1 and
	    (.[0].message.data.current_inputs.positive_prompt[0] | length == 3000000 and test("^x+$"))' \
	    "$BATS_TEST_TMPDIR/a.jsonl"
}

@test "a message over 64 MiB is dropped and the connection closed" {
	start_comfy --fault '{"kind": "exec_error", "node": "1"}'
	try a huge connect until:status state:DOWN:60000
	greeted a
	jq -n '{prompt: {"1": {class_type: "WanVideoTextEncode", inputs: {positive_prompt: ("x" * 67200000), negative_prompt: ""}},
	        "2": {class_type: "PreviewAny", inputs: {source: ["1", 0]}}}, client_id: "huge"}' > p.json
	curl -sf -X POST --data-binary @p.json "$COMFY/prompt" > /dev/null
	rm p.json
	finish a
	has a '.state == "DOWN" and .error == "message over 64 MiB"'
	run ! has a '.message.type == "execution_error"'
}

@test "connection refused: DOWN with the reason" {
	start_comfy
	stop_comfy
	run "$WS_TRY" --base "$COMFY" --client-id x connect state:DOWN:5000
	assert_success
	jq -se 'map(select(.state == "DOWN")) | .[0].error == "connection refused" and .[0].connections == 0' <<< "$output"
}

# ws_server MODE: a one-shot server in Perl, for what fake-comfyui never
# does. MODE 403 refuses the upgrade. MODE peer-close accepts it, sends a
# text that is not JSON, a binary frame, a JSON message and a close frame
# (1001). MODE ack sends a message, and answers the client's close frame
# 300 ms late. Both then write the opcode and close code of the client's
# frame to answer. The request goes to request.txt, the port to port.
ws_server() {
	perl -MIO::Socket::INET -MDigest::SHA=sha1_base64 -e '
	    my $mode = shift;
	    my $s = IO::Socket::INET->new(LocalAddr => "127.0.0.1", LocalPort => 0, Listen => 1) or die;
	    open my $p, ">", "port.tmp" or die; print $p $s->sockport, "\n"; close $p;
	    rename "port.tmp", "port";
	    my $c = $s->accept;
	    my ($req, $key) = ("", "");
	    while (<$c>) { $req .= $_; $key = $1 if /^Sec-WebSocket-Key:\s*(\S+)/i; last if /^\r?$/ }
	    open my $r, ">", "request.txt" or die; print $r $req; close $r;
	    if ($mode eq "403") {
	        print $c "HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
	        exit 0;
	    }
	    my $acc = sha1_base64($key . "258EAFA5-E914-47DA-95CA-C5AB0DC85B11") . "=";
	    $c->autoflush(1);
	    print $c "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n",
	        "Connection: Upgrade\r\nSec-WebSocket-Accept: $acc\r\n\r\n";
	    sub frame { my ($op, $d) = @_; print $c chr(0x80 | $op), chr(length $d), $d }
	    if ($mode eq "peer-close") {
	        frame(1, "not JSON");
	        frame(2, "\x00\x00\x00\x01binary");
	    }
	    frame(1, q({"type": "hello", "data": {"n": 18446744073709551615}}));
	    frame(8, pack("n", 1001) . "bye") if $mode eq "peer-close";
	    # the client frame: masked, short
	    my ($h, $m, $d) = ("", "", "");
	    read($c, $h, 2) == 2 or die "no frame";
	    my $len = ord(substr($h, 1)) & 127;
	    read($c, $m, 4); read($c, $d, $len);
	    $d ^= substr($m x ($len + 4), 0, $len);
	    open my $a, ">", "answer.tmp" or die;
	    print $a ord($h) & 15, " ", ($len >= 2 ? unpack("n", $d) : 0), "\n"; close $a;
	    rename "answer.tmp", "answer";
	    if ($mode eq "ack") {
	        select(undef, undef, undef, 0.3);
	        frame(8, pack("n", 1000));
	    }
	    1 while read($c, $d, 1);
	    close $c' "$1" &
	RECORDERS+=($!)
	wait_for '[ -s port ]' 5
}

@test "the handshake: path, Host, no Origin, no subprotocol; a 403 is in the reason" {
	ws_server 403
	run "$WS_TRY" --base "http://127.0.0.1:$(cat port)/pre/fix/" --client-id 'x y' connect state:DOWN:5000
	assert_success
	jq -se 'map(select(.state == "DOWN")) | .[0].error == "handshake refused: HTTP 403"' <<< "$output"
	grep -q $'^GET /pre/fix/ws?clientId=x%20y HTTP/1.1\r$' request.txt
	grep -qi "^Host: 127.0.0.1:$(cat port)"$'\r$' request.txt
	run ! grep -qi '^Origin:' request.txt
	run ! grep -qi '^Sec-WebSocket-Protocol:' request.txt
}

@test "a peer's close frame; text that is not JSON and binary frames are dropped" {
	ws_server peer-close
	run "$WS_TRY" --base "http://127.0.0.1:$(cat port)" --client-id x connect state:DOWN:5000
	assert_success
	# one message, its number exact (jq itself would round it)
	[ "$(grep -c '"message"' <<< "$output")" = 1 ]
	grep -qF '"message":{"type":"hello","data":{"n":18446744073709551615}}' <<< "$output"
	jq -se 'map(select(.state == "DOWN")) | .[0].error == "closed by peer (code 1001)"' <<< "$output"
	# the client answered with a close frame
	wait_for '[ -s answer ]' 5
	[ "$(cut -d' ' -f1 answer)" = 8 ]
}

@test "our close waits for the peer's close frame" {
	ws_server ack
	run "$WS_TRY" --base "http://127.0.0.1:$(cat port)" --client-id x connect until:hello close state:DOWN:5000
	assert_success
	jq -se 'map(select(.state == "DOWN")) | .[0].error == "closed by us"' <<< "$output"
	# a close frame with 1000, normal closure
	[ "$(cat answer)" = "8 1000" ]
	# DOWN only once the answer came, 300 ms later
	delay=$(jq -s '(map(select(.state == "DOWN")) | .[0].t) - (map(select(.state == "CLOSING")) | .[0].t)' <<< "$output")
	[ "$delay" -ge 250 ]
	[ "$delay" -lt 2000 ]
}

@test "wss: a certificate nobody vouches for is refused" {
	command -v openssl > /dev/null || skip "no openssl"
	openssl req -x509 -newkey rsa:2048 -nodes -keyout key.pem -out cert.pem -days 1 \
	    -subj /CN=127.0.0.1 2> /dev/null
	port=$(perl -MIO::Socket::INET -e 'print IO::Socket::INET->new(LocalAddr => "127.0.0.1", LocalPort => 0, Listen => 1)->sockport')
	openssl s_server -accept "127.0.0.1:$port" -cert cert.pem -key key.pem -www > tls.out 2>&1 &
	RECORDERS+=($!)
	wait_for 'grep -q ACCEPT tls.out' 5
	# (lws logs the certificate error on stderr)
	run --separate-stderr "$WS_TRY" --base "https://127.0.0.1:$port" --client-id x connect state:DOWN:5000
	assert_success
	# not the HTTP answer behind it: the TLS handshake failed
	jq -se 'map(select(.state == "DOWN")) | .[0].error | startswith("cannot connect: ") and test("SSL")' <<< "$output"
}

@test "a name that does not resolve fails inside pr_ws_connect" {
	run "$WS_TRY" --base http://name.invalid:8188 --client-id x connect
	assert_success
	jq -se '.[0] | .connect == -1 and (.error | startswith("cannot connect to name.invalid:8188"))' <<< "$output"
	run "$WS_TRY" --base ftp://x --client-id x connect
	[ "$status" = 2 ]
}

@test "the server drops the socket: DOWN, connection lost, at once" {
	start_comfy
	try a c1 connect until:status state:DOWN:5000
	greeted a
	post /fake/drop '{"client_id": "c1"}' > /dev/null
	finish a
	has a '.state == "DOWN" and .error == "connection lost"'
	# within a second of the drop (the greeting came at the start)
	[ "$(( $(when a '.state == "DOWN"') - $(when a '.message') ))" -lt 2000 ]
}

@test "a clean close: the close handshake completes, the server has no socket left" {
	start_comfy
	try a c1 connect until:status close state:DOWN run:5000
	wait_for 'has a ".state == \"DOWN\""' 10
	has a '.state == "DOWN" and .error == "closed by us" and .connections == 1'
	# lws waits 5 s for the server's close frame: it came
	[ "$(( $(when a '.state == "DOWN"') - $(when a '.state == "CLOSING"') ))" -lt 2000 ]
	# while the client still runs, the server forgot the socket
	wait_for '[ "$(curl -s "$COMFY/fake/state" | jq .sockets)" = 0 ]' 5
}

@test "reconnecting with the same client id after a close: greeting and messages again" {
	start_comfy
	# connect while CLOSING waits for the old socket to be gone
	# (COMFYUI-PROTOCOL.md §11), then the prompt's messages reach us
	try a c1 connect until:status close connect until:status end
	wait_for '[ "$(jq -s "map(select(.message.type == \"status\")) | length" a.jsonl)" = 2 ]' 10
	post /prompt "$(tiny c1 p1)" > /dev/null
	finish a
	[ "$(jq -sc 'map(.state // empty)' a.jsonl)" = '["CONNECTING","UP","CLOSING","CONNECTING","UP"]' ]
	has a '.state == "UP" and .connections == 2'
	jq -se 'map(select(.message)) | last.message | .type == "executing" and .data.prompt_id == "p1"' a.jsonl
	# and after DOWN, the other way
	run "$WS_TRY" --base "$COMFY" --client-id c2 connect until:status close state:DOWN connect until:status
	assert_success
	[ "$(jq -sc 'map(select(.message.type == "status") | .message.data.sid)' <<< "$output")" = '["c2","c2"]' ]
}

@test "a server restart: connecting fails while it is down, then succeeds" {
	start_comfy
	try a c1 connect until:status state:DOWN:5000 retry:10000 run:500
	greeted a
	post /fake/restart '{"down": 1}' > /dev/null
	finish a
	f=$BATS_TEST_TMPDIR/a.jsonl
	# lost, refused at least once, then up again with a greeting
	jq -se 'map(select(.state == "DOWN")) | .[0].error == "connection lost" and length >= 2
	    and (.[1].error | startswith("cannot connect"))' "$f"
	jq -se 'last(.[] | select(.state)) | .state == "UP" and .connections == 2' "$f"
	[ "$(jq -s 'map(select(.message.type == "status")) | length' "$f")" = 2 ]
}

@test "pings: a server that stops answering is DOWN with no pong in about 2 x ping" {
	start_comfy
	try a c1 --ping 1 connect until:status state:DOWN:8000
	greeted a
	kill -STOP "$COMFY_PID"
	wait "$a_PID" || { kill -CONT "$COMFY_PID"; false; }
	kill -CONT "$COMFY_PID"
	has a '.state == "DOWN" and .error == "no pong"'
	up=$(when a '.state == "UP"')
	down=$(when a '.state == "DOWN"')
	[ "$((down - up))" -ge 1500 ]
	[ "$((down - up))" -lt 3500 ]
}

@test "pings: a server that answers them keeps the connection" {
	start_comfy
	run "$WS_TRY" --base "$COMFY" --client-id c1 --ping 1 connect until:status run:3500
	assert_success
	[ "$(jq -sc 'map(.state // empty)' <<< "$output")" = '["CONNECTING","UP"]' ]
}

@test "pr_ws_run keeps its deadline when nothing happens" {
	start_comfy
	run "$WS_TRY" --base "$COMFY" --client-id c1 idle:200 connect until:status idle:200 idle:0
	assert_success
	# a hang check, not a benchmark
	[ "$(jq -sc 'map(select(.step == "idle") | .ran < 2000) | all' <<< "$output")" = true ]
	[ "$(jq -sc 'map(select(.step == "idle")) | .[0].ran >= 150' <<< "$output")" = true ]
}

@test "pr_ws_free and pr_wsctx_free with connections in every state" {
	start_comfy
	# UP, then the server has no socket left while the program runs on
	try a c1 connect until:status free run:5000
	wait_for 'has a ".step == \"free\""' 10
	wait_for '[ "$(curl -s "$COMFY/fake/state" | jq .sockets)" = 0 ]' 5
	# CONNECTING; CLOSING; closed while CONNECTING; left to pr_wsctx_free
	run "$WS_TRY" --base "$COMFY" --client-id c2 connect free connect until:status close free
	assert_success
	run "$WS_TRY" --base "$COMFY" --client-id c3 connect close
	assert_success
	jq -se 'map(select(.state == "DOWN")) | .[0].error == "closed by us"' <<< "$output"
	run "$WS_TRY" --base "$COMFY" --client-id c4 connect until:status leave
	assert_success
	run "$WS_TRY" --base "$COMFY" --client-id c5 connect until:status close leave
	assert_success
	run "$WS_TRY" --base "$COMFY" --client-id c6 connect leave
	assert_success
}
