#!/usr/bin/env bats
# pr-upload against fake-gcs on loopback: records, verification, every
# network fault, kill and resume, credentials, and no secret anywhere.

load helper
load gcs

MIB=$((1024 * 1024))
# The size of the big file of the fault and kill tests; make check-slow
# runs them with 300.
BIG=${UPLOAD_MIB:-32}

# gcs [OPTIONS...]: fake-gcs (gcs.bash) with the bucket "bkt", and
# pr-upload pointed at it.
gcs() {
	start_gcs --bucket bkt "$@"
	export STORAGE_EMULATOR_HOST=127.0.0.1:$GCS_PORT
}

teardown() {
	if [ -n "${UPLOAD_PID:-}" ]; then
		kill -9 "$UPLOAD_PID" 2>/dev/null || true
		wait "$UPLOAD_PID" 2>/dev/null || true
	fi
	stop_gcs
}

gcs_state() { curl -sf "$GCS/fake/state"; }
sent_total() { gcs_state | jq .upload_bytes; }
arm() { curl -sf -X POST --data-binary "$1" "$GCS/fake/faults" > /dev/null; }

# Each file extracted under x/ is its original under out/, mtime included.
extracted_as_sent() {
	local f
	for f; do
		cmp "x/$f" "out/$f"
		[ "$(stat -c %Y "x/$f")" = "$(stat -c %Y "out/$f")" ]
	done
}

# The same upload again, of in.jsonl: everything is found, nothing is sent.
rerun_sends_nothing() {
	local before
	before=$(sent_total)
	run --separate-stderr upload "$@" < in.jsonl
	assert_success
	echo "$output" | jq -se 'all(.existed)'
	[ "$(sent_total)" -eq "$before" ]
}

# A file under out/ of N MiB of incompressible bytes.
make_file() {
	mkdir -p "out/$(dirname "$1")"
	head -c $(($2 * MIB)) /dev/urandom > "out/$1"
}

record() { jq -nc --arg p "$1" '{video: "v", status: "success", path: $p}'; }

# upload [OPTIONS...] < records: quick retries, small chunks.
upload() {
	pr-upload --dest gs://bkt/pre --run r1 --retry-delay 0.05 --timeout 2 "$@"
}

object() { echo "$GCS_ROOT/bkt/pre/${RUN:-r1}/$1"; }

@test "pr-upload: --help, --version and usage errors" {
	run pr-upload --help
	assert_success
	assert_output --partial 'usage: pr-upload --dest gs://BUCKET'
	run pr-upload --version
	assert_output --regexp '^pr-upload \(prompt-runner\) '
	run pr-upload < /dev/null
	assert_failure 2
	assert_output --partial '--dest is required'
	run pr-upload --dest s3://bkt < /dev/null
	assert_failure 2
	assert_output --partial 'expected gs://BUCKET'
	run pr-upload --dest gs://Bad_Bucket < /dev/null
	assert_failure 2
	assert_output --partial 'is not a bucket name'
	run pr-upload --dest gs://bkt --chunk-size 300K < /dev/null
	assert_failure 2
	assert_output --partial 'multiple of 256K'
	run pr-upload --dest gs://bkt --archive a.rar < /dev/null
	assert_failure 2
	run pr-upload --dest gs://bkt --run ../x < /dev/null
	assert_failure 2
}

@test "pr-upload: a bad record is an error naming its line, and nothing is sent" {
	gcs
	make_file a.bin 1
	{ record a.bin; echo '{"video":"v","status":"success"}'; } > in.jsonl
	run upload < in.jsonl
	assert_failure 2
	assert_output --partial '<stdin>:2: path: missing'
	{ record a.bin; record ../etc/passwd; } > in.jsonl
	run upload < in.jsonl
	assert_failure 2
	assert_output --partial '<stdin>:2: path: "../etc/passwd": has a "." or ".." segment'
	{ record a.bin; record /etc/passwd; } > in.jsonl
	run upload < in.jsonl
	assert_failure 2
	assert_output --partial 'absolute'
	printf '%s\n{"path": \n' "$(record a.bin)" > in.jsonl
	run upload < in.jsonl
	assert_failure 2
	assert_output --partial '<stdin>:2:'
	[ "$(sent_total)" -eq 0 ]
	[ ! -e "$(object a.bin)" ]
}

@test "pr-upload: small and large files land verified, with the crc32c GCS computes" {
	gcs
	mkdir -p out/final
	printf 'hello world' > out/final/hello.txt
	make_file final/big.mp4 3
	{ record final/hello.txt; record final/big.mp4; jq -nc '{video: "w", status: "failed", error: {message: "x"}}'; record final/hello.txt; } > in.jsonl
	run --separate-stderr upload --chunk-size 1M --resumable-threshold 1M < in.jsonl
	assert_success
	[ "$(echo "$output" | wc -l)" -eq 2 ]
	# The well-known CRC-32C of "hello world", as GCS writes it.
	echo "$output" | jq -se '.[0] | .path == "final/hello.txt" and .crc32c == "yZRlqg=="
	    and .size == 11 and .verified and .status == "uploaded" and .existed == false
	    and .uri == "gs://bkt/pre/r1/final/hello.txt" and .video == "v"'
	echo "$output" | jq -se '.[1] | .verified and .size == 3145728 and .sent == 3145728
	    and (.generation | test("^[0-9]+$"))'
	cmp out/final/hello.txt "$(object final/hello.txt)"
	cmp out/final/big.mp4 "$(object final/big.mp4)"
	# One multipart request, one session of three chunks.
	gcs_state | jq -e '.requests.multipart == 1 and .requests.initiate == 1 and .requests.chunk == 3'
	# The metadata the server keeps agrees with the record.
	curl -sf "$GCS/storage/v1/b/bkt/o/pre%2Fr1%2Ffinal%2Fbig.mp4" > meta.json
	[ "$(jq -r .crc32c meta.json)" = "$(echo "$output" | jq -sr '.[1].crc32c')" ]
	[ "$(jq -r .contentType meta.json)" = video/mp4 ]
}

@test "pr-upload: a rerun sends nothing; other content is kept unless --overwrite" {
	gcs
	make_file final/a.mp4 2
	record final/a.mp4 > in.jsonl
	run upload --chunk-size 256K --resumable-threshold 1M < in.jsonl
	assert_success
	before=$(sent_total)
	run --separate-stderr upload < in.jsonl
	assert_success
	echo "$output" | jq -e '.existed and .verified and .sent == 0'
	[ "$(sent_total)" -eq "$before" ]
	gen=$(echo "$output" | jq -r .generation)
	# The file changes: the object is not replaced without --overwrite.
	make_file final/a.mp4 1
	run --separate-stderr upload < in.jsonl
	assert_failure 1
	echo "$output" | jq -e '.status == "failed" and (.verified | not)
	    and (.error | test("exists with other content.*--overwrite"))'
	! cmp -s out/final/a.mp4 "$(object final/a.mp4)"
	run --separate-stderr upload --overwrite < in.jsonl
	assert_success
	echo "$output" | jq -e --arg g "$gen" '.verified and .generation != $g'
	cmp out/final/a.mp4 "$(object final/a.mp4)"
}

# One big file (32 MiB) in 256 KiB chunks per fault, each armed halfway.
@test "pr-upload: a ${BIG} MiB resumable upload survives every fault and ends verified" {
	gcs
	make_file final/big.mp4 "$BIG"
	record final/big.mp4 > in.jsonl
	half=$((BIG / 2 * MIB))
	faults=(
		'{"kind":"status","code":503,"on":"chunk","after_bytes":'$half'}'
		'{"kind":"status","code":429,"on":"chunk","retry_after":0,"after_bytes":'$half'}'
		'{"kind":"status","code":500,"on":"chunk","times":3,"after_bytes":'$half'}'
		'{"kind":"status","code":408,"on":"query"}'
		'{"kind":"cut","on":"chunk","bytes":100000,"after_bytes":'$half'}'
		'{"kind":"cut","on":"chunk","persist":true,"after_bytes":'$half'}'
		'{"kind":"partial","keep":0,"after_bytes":'$half'}'
		'{"kind":"partial","keep":262144,"times":4,"after_bytes":'$half'}'
		'{"kind":"expire","code":404,"on":"chunk","after_bytes":'$half'}'
		'{"kind":"expire","code":410,"on":"chunk","after_bytes":'$half'}'
		'{"kind":"status","code":503,"on":"initiate"}'
		'{"kind":"stall","seconds":4,"on":"chunk","after_bytes":'$half'}'
		'{"kind":"drop","on":"chunk","after_bytes":'$half'}'
	)
	# Not "i": bats' own functions change a global i.
	local nth=0
	for f in "${faults[@]}"; do
		nth=$((nth + 1))
		arm "$f"
		# The query fault needs a query: a chunk failure first.
		case $f in *'"query"'*) arm '{"kind":"status","code":503,"on":"chunk","after_bytes":'$half'}' ;; esac
		before=$(gcs_state | jq .faults_fired)
		RUN=f$nth run --separate-stderr upload --run "f$nth" --chunk-size 256K < in.jsonl
		[ "$status" -eq 0 ] || { echo "fault $f: $stderr" >&2; false; }
		echo "$output" | jq -e '.verified' > /dev/null
		RUN=f$nth cmp out/final/big.mp4 "$(RUN=f$nth object final/big.mp4)"
		[ "$(gcs_state | jq .faults_fired)" -gt "$before" ] || { echo "fault $f never fired" >&2; false; }
		curl -sf -X POST "$GCS/fake/faults/clear" > /dev/null
	done
	# Nothing is left to resume.
	[ -z "$(ls -A state/upload-sessions 2>/dev/null)" ]
}

@test "pr-upload: kill -9 mid-upload, then a rerun resumes from the committed offset" {
	gcs
	make_file final/big.mp4 "$BIG"
	record final/big.mp4 > in.jsonl
	# Hold the upload just past the middle, so the kill lands mid-file.
	arm '{"kind":"stall","seconds":30,"on":"chunk","after_bytes":'$((BIG / 2 * MIB + MIB))'}'
	pr-upload --dest gs://bkt/pre --run r1 --retry-delay 0.05 --chunk-size 256K --timeout 60 \
	    < in.jsonl > first.jsonl 2> first.err &
	UPLOAD_PID=$!
	wait_for '[ "$(gcs_state | jq .persisted_bytes)" -ge $((BIG / 2 * MIB)) ] && [ "$(gcs_state | jq .faults_fired)" -ge 1 ]' 30
	kill -9 "$UPLOAD_PID"
	wait "$UPLOAD_PID" || true
	UPLOAD_PID=
	[ ! -s first.jsonl ]
	# The session is kept for the rerun, readable by its owner only.
	f=$(ls state/upload-sessions/*.json)
	[ "$(stat -c %a "$f")" = 600 ]
	[ "$(stat -c %a state/upload-sessions)" = 700 ]
	curl -sf -X POST "$GCS/fake/faults/clear" > /dev/null
	run --separate-stderr upload --chunk-size 256K < in.jsonl
	assert_success
	echo "$output" | jq -e --argjson half $((BIG / 2 * MIB)) '.verified and .sent <= $half'
	cmp out/final/big.mp4 "$(object final/big.mp4)"
	# Bytes the server received in all, both runs: well under 1.5 times.
	total=$(sent_total)
	echo "# sent $total bytes in all for a $((BIG * MIB))-byte file" >&3
	[ "$total" -lt $((BIG * MIB * 3 / 2)) ]
	gcs_state | jq -e '.requests.initiate == 1'
	[ -z "$(ls -A state/upload-sessions)" ]
}

@test "pr-upload: an upload that fails or cannot be verified is a failed record and status 1" {
	gcs
	make_file final/a.mp4 1
	make_file final/b.mp4 1
	{ record final/a.mp4; record final/missing.mp4; record final/b.mp4; } > in.jsonl
	# The server corrupts what it stores for a.mp4: the check must see it.
	arm '{"kind":"corrupt"}'
	run --separate-stderr upload --resumable-threshold 256K --chunk-size 256K < in.jsonl
	assert_failure 1
	[ "$(echo "$output" | wc -l)" -eq 3 ]
	echo "$output" | jq -se '.[0] | .status == "failed" and (.verified | not)
	    and (.error | test("does not match the file.*; it was deleted"))'
	# The bad copy is gone, so the next run can send a good one.
	[ ! -e "$(object final/a.mp4)" ]
	echo "$output" | jq -se '.[1] | .status == "failed" and (.error | test("missing.mp4: No such file"))'
	echo "$output" | jq -se '.[2] | .verified'
	# A server that keeps failing: the file fails when retrying runs out.
	arm '{"kind":"status","code":503,"times":-1,"on":"any"}'
	run --separate-stderr upload --run r2 --max-retry-time 0.5 < <(record final/b.mp4)
	assert_failure 1
	echo "$output" | jq -e '.status == "failed" and (.error | test("503"))'
	# A refusal that no retry can change fails at once.
	curl -sf -X POST "$GCS/fake/faults/clear" > /dev/null
	run --separate-stderr pr-upload --dest gs://nobucket/p --retry-delay 0.05 < <(record final/b.mp4)
	assert_failure 1
	echo "$output" | jq -e '.status == "failed" and (.error | test("404"))'
}

@test "pr-upload: --archive uploads one deterministic tar of the files (long names in pax), once" {
	gcs
	make_file final/a.mp4 1
	make_file final/b.mp4 1
	# A name no ustar header holds: it goes in a pax header.
	long=final/$(printf 'n%.0s' $(seq 1 120)).mp4
	make_file "$long" 1
	{ record final/a.mp4; record final/b.mp4; record "$long"; } > in.jsonl
	run --separate-stderr upload --archive all.tar < in.jsonl
	assert_success
	echo "$output" | jq -se 'length == 4 and (.[3] | .archive and .path == "all.tar" and .verified)'
	tar -tf "$(object all.tar)" > list
	printf 'final/a.mp4\nfinal/b.mp4\n%s\n' "$long" | diff - list
	mkdir x && tar -xf "$(object all.tar)" -C x
	extracted_as_sent final/a.mp4 final/b.mp4 "$long"
	rerun_sends_nothing --archive all.tar
}

# A service-account key file NAME.json for this server, from make_key's
# NAME.pem and NAME.pub.
sa_key() {
	[ -f "$1.pem" ] || make_key "$1"
	jq -n --rawfile pem "$1.pem" --arg uri "$GCS/token" '{type: "service_account",
	    project_id: "p", private_key_id: "k1", private_key: $pem,
	    client_email: "runner@p.iam.gserviceaccount.com", token_uri: $uri}' > "$1.json"
}

# Every file the test captured, for secret hunting.
captured() {
	cat "$BATS_TEST_TMPDIR"/*.jsonl "$BATS_TEST_TMPDIR"/*.err "$BATS_TEST_TMPDIR"/gcs.out 2>/dev/null
	# The state folder too, but for the sessions kept on purpose (0600).
	find state -type f ! -path 'state/upload-sessions/*' -exec cat {} +
	curl -sf "$GCS/fake/log"
}

@test "pr-upload: --archive NAME.zip: unzip tests, lists and extracts it, mtimes kept; reruns send nothing" {
	command -v unzip > /dev/null || skip "unzip is not installed"
	gcs
	long=final/$(printf 'n%.0s' $(seq 1 120)).mp4
	make_file final/a.mp4 1
	make_file "$long" 1
	touch -d '2024-03-05 06:07:08 UTC' out/final/a.mp4
	touch -d '2031-12-31 23:59:58 UTC' "out/$long"
	{ record final/a.mp4; record "$long"; } > in.jsonl
	run --separate-stderr upload --archive all.zip < in.jsonl
	assert_success
	echo "$output" | jq -se 'length == 3 and (.[2] | .archive and .path == "all.zip" and .verified)'
	zip=$(object all.zip)
	# An independent reader checks every CRC-32 and finds stored entries
	# in the records' order, no folders.
	unzip -tq "$zip"
	printf '%s\n' final/a.mp4 "$long" | diff - <(unzip -Z1 "$zip")
	unzip -Zv "$zip" | grep -c 'compression method: *none (stored)' | grep -qx 2
	# Unzipped in another time zone: the mtimes come from the extended
	# timestamp, not from the zone-less DOS time.
	mkdir x && (cd x && TZ=Asia/Tokyo unzip -q "$zip")
	extracted_as_sent final/a.mp4 "$long"
	rerun_sends_nothing --archive all.zip
}

@test "pr-upload: service-account key from a file and from a variable; a wrong key is refused" {
	make_key sa
	gcs --public-key sa.pub --token-ttl 3600
	sa_key sa
	sa_key other
	make_file final/a.mp4 1
	make_file final/b.mp4 1
	# Without credentials the server says no.
	record final/a.mp4 | upload > anon.jsonl 2> anon.err && false
	grep -q '401' anon.jsonl
	GOOGLE_APPLICATION_CREDENTIALS=$PWD/sa.json upload < <(record final/a.mp4) > file.jsonl 2> file.err
	jq -e .verified file.jsonl
	GOOGLE_APPLICATION_CREDENTIALS_JSON=$(cat sa.json) upload < <(record final/b.mp4) > var.jsonl 2> var.err
	jq -e .verified var.jsonl
	gcs_state | jq -e '.tokens_issued == 2'
	# A key the server does not know: refused, clearly, with status 3.
	run --separate-stderr env GOOGLE_APPLICATION_CREDENTIALS=$PWD/other.json \
	    pr-upload --dest gs://bkt/pre --run r2 < <(record final/a.mp4)
	assert_failure 3
	echo "$stderr" > wrong.err
	echo "$output" > wrong.jsonl
	grep -q 'token endpoint .*refused: HTTP 400: invalid_grant' wrong.err
	jq -e '.status == "failed"' wrong.jsonl
	# A key file that is not one.
	echo '{"type": "authorized_user"}' > user.json
	run env GOOGLE_APPLICATION_CREDENTIALS=$PWD/user.json pr-upload --dest gs://bkt/p < /dev/null
	assert_failure 3
	assert_output --partial 'only service-account keys'
	# No private key line and no token in anything captured.
	captured > all.txt
	[ -s all.txt ]
	key_line=$(sed -n 2p sa.pem)
	! grep -qF -- "$key_line" all.txt
	! grep -q 'ya29\.' all.txt
	! grep -q 'upload_id=' all.txt
}

@test "pr-upload: tokens are renewed before they expire, and after a 401" {
	make_key sa
	gcs --public-key sa.pub --token-ttl 2
	sa_key sa
	export GOOGLE_APPLICATION_CREDENTIALS=$PWD/sa.json
	for i in 1 2 3; do make_file final/$i.mp4 1; done
	# The server revokes the token of one request: a new one is fetched.
	arm '{"kind":"unauthorized","on":"metadata"}'
	# A slow chunk makes the short-lived token expire mid-file.
	arm '{"kind":"stall","seconds":1.5,"on":"chunk","times":2}'
	{ record final/1.mp4; record final/2.mp4; record final/3.mp4; } > in.jsonl
	run --separate-stderr upload --chunk-size 256K --resumable-threshold 256K --timeout 5 < in.jsonl
	assert_success
	echo "$output" | jq -se 'all(.verified)'
	gcs_state | jq -e '.tokens_issued >= 3 and .unauthorized >= 1'
}

@test "pr-upload: --token-command, GCS_OAUTH_TOKEN and the metadata server" {
	gcs --token static-token-1 --token cmd-token-2
	make_file final/a.mp4 1
	GCS_OAUTH_TOKEN=static-token-1 upload --run t1 < <(record final/a.mp4) > t1.jsonl 2> t1.err
	jq -e .verified t1.jsonl
	upload --run t2 --token-command 'echo cmd-token-2' < <(record final/a.mp4) > t2.jsonl 2> t2.err
	jq -e .verified t2.jsonl
	run --separate-stderr upload --run t3 --token-command 'echo oops >&2; exit 4' < <(record final/a.mp4)
	assert_failure 3
	[[ $stderr == *'--token-command: exit status 4: oops'* ]]
	run --separate-stderr env GCS_OAUTH_TOKEN=wrong pr-upload --dest gs://bkt/p --run t4 < <(record final/a.mp4)
	assert_failure 3
	[[ $stderr == *'GCS_OAUTH_TOKEN was refused'* ]]
	# The metadata server stands in for a Google Cloud machine's.
	GCE_METADATA_HOST=127.0.0.1:$GCS_PORT upload --run t5 < <(record final/a.mp4) > t5.jsonl 2> t5.err
	jq -e .verified t5.jsonl
	gcs_state | jq -e '.requests.metadata_token == 1'
	# Nobody there: a clear message, quickly.
	run --separate-stderr env GCE_METADATA_HOST=127.0.0.1:1 pr-upload --dest gs://bkt/p < <(record final/a.mp4)
	assert_failure 3
	[[ $stderr == *'no credentials'* ]]
	! grep -q 'cmd-token-2\|static-token-1' t1.err t2.err t5.err t1.jsonl t2.jsonl
}
