#!/usr/bin/env bats
# fake-gcs: the Google Cloud Storage stand-in, driven with curl and openssl
# as a client sees it: uploads of every kind, resumable sessions and their
# refusals, checksums, preconditions, tokens, every fault kind, counters.

load helper
load gcs

G=262144    # the resumable granule, 256 KiB

setup_file() {
	cd "$BATS_FILE_TMPDIR" || return 1
	make_key good
	make_key other
	export KEYS=$BATS_FILE_TMPDIR
}

# multipart_body JSON FILE [BOUNDARY]: a multipart/related body on stdout.
multipart_body() {
	local b=${3:-BOUNDARY}
	printf -- '--%s\r\nContent-Type: application/json; charset=UTF-8\r\n\r\n%s\r\n' "$b" "$1"
	printf -- '--%s\r\nContent-Type: application/octet-stream\r\n\r\n' "$b"
	cat "$2"
	printf -- '\r\n--%s--\r\n' "$b"
}

multipart() {
	req POST "$UPLOAD?uploadType=multipart${2:-}" --data-binary "@$1" \
	    -H 'Content-Type: multipart/related; boundary=BOUNDARY'
}

state() {
	ctl /fake/state | jq -r "$1"
}

# --- options and the socket ---

@test "usage: --help, --version, required options, only loopback addresses" {
	run fake-gcs --help
	assert_success
	assert_output --partial 'usage: fake-gcs --listen'
	run fake-gcs --version
	assert_output --regexp '^fake-gcs \(prompt-runner\) [0-9.]+$'
	run fake-gcs --listen 127.0.0.1 --port 0
	[ "$status" = 2 ]
	assert_output --partial 'required'
	for a in 0.0.0.0 10.1.2.3 192.168.0.1 128.0.0.1 ::1 localhost; do
		run fake-gcs --listen "$a" --port 0 --root r
		[ "$status" = 2 ]
		assert_output --partial 'only loopback addresses'
	done
	[ ! -e r ]
	run fake-gcs --listen 127.0.0.1 --port 0 --root r --fault '{"kind": "melt"}'
	[ "$status" = 2 ]
	assert_output --partial 'unknown fault kind "melt"'
	run fake-gcs --listen 127.0.0.1 --port 0 --root r --fault '{"kind": "partial", "on": "media"}'
	[ "$status" = 2 ]
	run fake-gcs --listen 127.0.0.1 --port 0 --root r --public-key /nonexistent
	[ "$status" = 2 ]
	assert_output --partial 'cannot open'
	run fake-gcs --listen 127.0.0.1 --port 0 --root r --public-key "$KEYS/good.pem"
	[ "$status" = 2 ]
	run fake-gcs --listen 127.0.0.1 --port 0 --root r --bucket .meta
	[ "$status" = 2 ]
	run fake-gcs --listen 127.0.0.1 --port 0 --root r --token-ttl 0
	[ "$status" = 2 ]
}

@test "ready line: exactly 'listening on ADDR:PORT', and only that address is served" {
	start_gcs
	run cat gcs.out
	assert_output "listening on 127.0.0.1:$GCS_PORT"
	[ "$(curl -s -o /dev/null -w '%{http_code}' "$GCS/fake/state")" = 200 ]
	run curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.2:$GCS_PORT/fake/state"
	[ "$output" = 000 ]
	fake-gcs --listen 127.0.0.2 --port 0 --root r2 > out2 &
	OTHER_PIDS+=($!)
	wait_for 'grep -q "^listening on 127.0.0.2:[0-9]*$" out2'
	[ "$(curl -s -o /dev/null -w '%{http_code}' "http://$(sed 's/^listening on //' out2)/fake/state")" = 200 ]
}

@test "SIGTERM: exits 0 at once, even with a stalled request and an idle connection open" {
	start_gcs --fault '{"kind": "stall", "seconds": 60, "on": "metadata"}'
	printf 'x' > x
	[ "$(media x x)" = 200 ]
	initiate s.bin > /dev/null
	exec 5<>"/dev/tcp/127.0.0.1/$GCS_PORT"    # idle: no request on it
	curl -s "$GCS/storage/v1/b/b/o/x" -o /dev/null &
	OTHER_PIDS+=($!)
	wait_for '[ "$(state .requests.metadata)" = 1 ]'
	SECONDS=0
	kill -TERM "$GCS_PID"
	rc=0
	wait "$GCS_PID" || rc=$?
	GCS_PID=
	[ "$rc" = 0 ]
	[ "$SECONDS" -lt 5 ]
	# sessions and temporary files do not outlive it; objects do
	exec 5>&-
	[ -z "$(find root/.sessions root/.tmp -mindepth 1)" ]
	cmp x root/b/x
}

# --- uploads ---

@test "media: the object resource, checksums from known vectors, the bytes on disk and back" {
	start_gcs
	printf 'hello world' > hw
	[ "$(CT=text/plain media hello.txt hw)" = 200 ]
	run jq -r '[.kind, .name, .bucket, .size, .crc32c, .md5Hash, .contentType,
	            .storageClass, .metageneration] | join(" ")' body.out
	assert_output "storage#object hello.txt b 11 yZRlqg== $(md5_of hw) text/plain STANDARD 1"
	jq -e '(.generation | test("^[0-9]+$")) and .id == "b/hello.txt/\(.generation)"
	       and (.timeCreated | test("^[0-9-]{10}T[0-9:]{8}\\.[0-9]{3}Z$")) and (has("metadata") | not)' body.out
	gen=$(jq -r .generation body.out)
	cmp hw root/b/hello.txt

	[ "$(req GET "$GCS/storage/v1/b/b/o/hello.txt")" = 200 ]
	jq -e --arg g "$gen" '.generation == $g and .crc32c == "yZRlqg==" and .size == "11"' body.out
	link=$(jq -r .mediaLink body.out)
	[ "$(req GET "$GCS/storage/v1/b/b/o/hello.txt?alt=media")" = 200 ]
	cmp hw body.out
	[ "$(hdr x-goog-hash)" = "crc32c=yZRlqg==,md5=$(md5_of hw)" ]
	[ "$(hdr x-goog-generation)" = "$gen" ]
	[ "$(hdr Content-Type)" = text/plain ]
	[ "$(req GET "$link")" = 200 ]
	cmp hw body.out

	# two more CRC-32C vectors: "123456789" and 32 zero bytes
	printf '123456789' > nine
	[ "$(media nine nine)" = 200 ]
	[ "$(jq -r .crc32c body.out)" = 4waSgw== ]
	head -c 32 /dev/zero > zeros
	[ "$(media zeros zeros)" = 200 ]
	[ "$(jq -r .crc32c body.out)" = ipE2qg== ]
	[ "$(state .objects)" = 3 ]
}

@test "media: names with slashes make folders; big bodies stream; overwrite gives a newer generation" {
	start_gcs
	head -c $((3 * 1048576 + 7)) /dev/urandom > big
	[ "$(media 'videos%2Fdancer%2Ffinal%20v1.mp4' big -H 'Expect: 100-continue')" = 200 ]
	[ "$(jq -r .name body.out)" = 'videos/dancer/final v1.mp4' ]
	[ "$(jq -r .md5Hash body.out)" = "$(md5_of big)" ]
	crc=$(jq -r .crc32c body.out)
	gen1=$(jq -r .generation body.out)
	cmp big 'root/b/videos/dancer/final v1.mp4'
	[ "$(req GET "$GCS/storage/v1/b/b/o/videos%2Fdancer%2Ffinal%20v1.mp4?alt=media")" = 200 ]
	cmp big body.out
	[ "$(hdr x-goog-hash)" = "crc32c=$crc,md5=$(md5_of big)" ]
	# the resumable path computes the same crc32c for the same bytes
	[ "$(initiate again.bin)" = 200 ]
	[ "$(chunk big 0 $((3 * 1048576 + 6)) $((3 * 1048576 + 7)))" = 200 ]
	[ "$(jq -r .crc32c body.out)" = "$crc" ]
	# overwrite without a precondition
	printf 'v2' > v2
	[ "$(media 'videos%2Fdancer%2Ffinal%20v1.mp4' v2)" = 200 ]
	gen2=$(jq -r .generation body.out)
	[ "$gen2" -gt "$gen1" ]
	cmp v2 'root/b/videos/dancer/final v1.mp4'
	# delete
	[ "$(req DELETE "$GCS/storage/v1/b/b/o/videos%2Fdancer%2Ffinal%20v1.mp4")" = 204 ]
	[ "$(req GET "$GCS/storage/v1/b/b/o/videos%2Fdancer%2Ffinal%20v1.mp4")" = 404 ]
	[ ! -e root/b/videos ]
}

@test "multipart: metadata and bytes in one request; the boundary found in a binary stream" {
	start_gcs
	{ head -c 300000 /dev/urandom; printf '\r\n--BOUNDAR\r\n--BOUNDARX x--BOUNDARY--\r\n'; head -c 70000 /dev/urandom; } > data
	multipart_body '{"name": "dir/clip.mp4", "contentType": "video/mp4",
	  "metadata": {"video": "dancer", "job": "7"}}' data > body
	[ "$(multipart body)" = 200 ]
	run jq -c '[.name, .contentType, .metadata, .size]' body.out
	assert_output "[\"dir/clip.mp4\",\"video/mp4\",{\"video\":\"dancer\",\"job\":\"7\"},\"$(stat -c %s data)\"]"
	[ "$(jq -r .md5Hash body.out)" = "$(md5_of data)" ]
	cmp data root/b/dir/clip.mp4
	[ "$(req GET "$GCS/storage/v1/b/b/o/dir%2Fclip.mp4")" = 200 ]
	[ "$(jq -r .metadata.job body.out)" = 7 ]

	# the checksums in the metadata are checked: right, then wrong
	printf '123456789' > nine
	multipart_body '{"name": "nine", "crc32c": "4waSgw==", "md5Hash": "'"$(md5_of nine)"'"}' nine > body
	[ "$(multipart body)" = 200 ]
	[ "$(jq -r .contentType body.out)" = application/octet-stream ]
	multipart_body '{"name": "bad", "crc32c": "AAAAAA=="}' nine > body
	[ "$(multipart body)" = 400 ]
	[ "$(jq -r .error.message body.out)" = 'Provided CRC32C "AAAAAA==" doesn'"'"'t match calculated CRC32C "4waSgw==".' ]
	[ "$(req GET "$GCS/storage/v1/b/b/o/bad")" = 404 ]
	[ ! -e root/b/bad ]
	# a name in the query wins; three parts and no name are refused
	multipart_body '{"name": "inner"}' nine > body
	[ "$(multipart body '&name=outer')" = 200 ]
	[ "$(jq -r .name body.out)" = outer ]
	{ multipart_body '{"name": "three"}' nine | head -c -4; printf '\r\nContent-Type: x\r\n\r\nmore\r\n--BOUNDARY--\r\n'; } > body
	[ "$(multipart body)" = 400 ]
	multipart_body '{"contentType": "text/plain"}' nine > body
	[ "$(multipart body)" = 400 ]
	[ "$(jq -r .error.errors[0].reason body.out)" = required ]
}

@test "resumable: initiate, two 256 KiB chunks answered 308 + Range, a final chunk, the object" {
	start_gcs
	total=$((2 * G + 1000))
	head -c $total /dev/urandom > f
	[ "$(initiate 'seg%2F001.mp4' -H 'X-Upload-Content-Type: video/mp4' \
	    -H "X-Upload-Content-Length: $total")" = 200 ]
	[[ $(session) =~ ^http://127\.0\.0\.1:$GCS_PORT/upload/storage/v1/b/b/o\?uploadType=resumable\&name=seg%2F001\.mp4\&upload_id=[A-Za-z0-9_-]{32,}$ ]]
	[ ! -s body.out ]
	[ "$(state .sessions)" = 1 ]
	[ "$(chunk f 0 $((G - 1)) '*')" = 308 ]
	[ "$(hdr Range)" = "bytes=0-262143" ]
	[ "$(hdr Content-Length)" = 0 ]
	[ "$(chunk f $G $((2 * G - 1)) '*')" = 308 ]
	[ "$(hdr Range)" = "bytes=0-524287" ]
	[ "$(chunk f $((2 * G)) $((total - 1)) $total)" = 200 ]
	run jq -r '[.name, .contentType, .size, .md5Hash] | join(" ")' body.out
	assert_output "seg/001.mp4 video/mp4 $total $(md5_of f)"
	cmp f root/b/seg/001.mp4
	# the finished session answers with the object again
	gen=$(jq -r .generation body.out)
	[ "$(status_query $total)" = 200 ]
	[ "$(jq -r .generation body.out)" = "$gen" ]
	[ "$(chunk f $((2 * G)) $((total - 1)) $total)" = 200 ]
	[ "$(state .sessions)" = 0 ]
	[ "$(state .persisted_bytes)" = $total ]
}

@test "resumable: status queries, resent and overlapping chunks, completing with bytes */TOTAL" {
	start_gcs
	head -c $((3 * G)) /dev/urandom > f
	initiate f.bin > /dev/null
	[ "$(status_query)" = 308 ]
	[ -z "$(hdr Range)" ]
	[ "$(chunk f 0 $((G - 1)) '*')" = 308 ]
	[ "$(status_query)" = 308 ]
	[ "$(hdr Range)" = "bytes=0-262143" ]
	# a chunk already persisted is taken again without harm
	[ "$(chunk f 0 $((G - 1)) '*')" = 308 ]
	[ "$(hdr Range)" = "bytes=0-262143" ]
	# an overlapping chunk: only the bytes past the committed offset count
	[ "$(chunk f 0 $((2 * G - 1)) '*')" = 308 ]
	[ "$(hdr Range)" = "bytes=0-524287" ]
	[ "$(chunk f $((2 * G)) $((3 * G - 1)) '*')" = 308 ]
	[ "$(hdr Range)" = "bytes=0-786431" ]
	# the total becomes known with an empty PUT: that completes the upload
	[ "$(status_query $((3 * G)))" = 200 ]
	[ "$(jq -r .size body.out)" = $((3 * G)) ]
	cmp f root/b/f.bin
	# an empty object: the whole upload is one query
	initiate empty > /dev/null
	[ "$(status_query 0)" = 200 ]
	[ "$(jq -r '.size + " " + .crc32c' body.out)" = "0 AAAAAA==" ]
	[ -f root/b/empty ] && [ ! -s root/b/empty ]
}

@test "resumable: chunk refusals (not 256 KiB, beyond the committed offset, totals, ranges)" {
	start_gcs
	head -c $((2 * G)) /dev/urandom > f
	initiate f.bin -H "X-Upload-Content-Length: $((2 * G))" > /dev/null
	[ "$(chunk f 0 99999 '*')" = 400 ]
	assert_equal "$(jq -r .error.message body.out)" "Invalid request. The number of bytes uploaded is required to be equal or greater than 262144, except for the final request (it's recommended to be the exact multiple of 262144). The received request contained 100000 bytes, which does not meet this requirement."
	[ "$(chunk f $G $((2 * G - 1)) '*')" = 400 ]
	run jq -r .error.message body.out
	assert_output --partial 'the upload offset is 262144 byte(s), which exceeds already uploaded size of 0 byte(s)'
	[ "$(chunk f 0 $((G - 1)) $((5 * G)))" = 400 ]
	jq -e '.error.message | contains("does not match the one given before")' body.out
	[ "$(chunk f 0 $((G - 1)) 1000)" = 400 ]
	# Content-Range and body disagree; malformed Content-Range
	printf '0123456789' > ten
	[ "$(req PUT "$(session)" --data-binary @ten -H 'Content-Range: bytes 0-19/*')" = 400 ]
	[ "$(req PUT "$(session)" --data-binary @ten -H 'Content-Range: bytes=0-9/10')" = 400 ]
	[ "$(req PUT "$(session)" --data-binary '' -H 'Content-Range: bytes */*' -H 'Content-Length: 0' -H 'Transfer-Encoding:')" = 308 ]
	# nothing was persisted by any of them
	[ -z "$(hdr Range)" ]
	[ "$(state .persisted_bytes)" = 0 ]
	# an unknown session
	[ "$(req PUT "$(session | sed "s/upload_id=.*//")upload_id=nope" --data-binary '' -H 'Content-Range: bytes */*')" = 404 ]
}

@test "resumable: checksums in the initial metadata are checked at finalize; a mismatch drops the session" {
	start_gcs
	printf 'hello world' > hw
	initiate good -H 'Content-Type: application/json' --data-binary '{"crc32c": "yZRlqg==", "metadata": {"k": "v"}}' > /dev/null
	[ "$(chunk hw 0 10 11)" = 200 ]
	[ "$(jq -r '.crc32c + " " + .metadata.k' body.out)" = "yZRlqg== v" ]

	initiate bad -H 'Content-Type: application/json' --data-binary '{"crc32c": "AAAAAA=="}' > /dev/null
	[ "$(chunk hw 0 10 11)" = 400 ]
	jq -e '.error.message == "Provided CRC32C \"AAAAAA==\" doesn'"'"'t match calculated CRC32C \"yZRlqg==\"."' body.out
	[ "$(req GET "$GCS/storage/v1/b/b/o/bad")" = 404 ]
	[ ! -e root/b/bad ]
	[ "$(status_query 11)" = 404 ]

	initiate badmd5 -H 'Content-Type: application/json' --data-binary '{"md5Hash": "AAAAAAAAAAAAAAAAAAAAAA=="}' > /dev/null
	[ "$(chunk hw 0 10 11)" = 400 ]
	jq -e '.error.message | startswith("Provided MD5 hash")' body.out
	# X-Goog-Hash on the final request is checked too
	[ "$(media hg hw -H 'X-Goog-Hash: crc32c=AAAAAA==')" = 400 ]
	[ "$(media hg hw -H "X-Goog-Hash: crc32c=yZRlqg==,md5=$(md5_of hw)")" = 200 ]
	# a value that is not base64 of 4 bytes is refused at initiation
	[ "$(initiate x -H 'Content-Type: application/json' --data-binary '{"crc32c": "abc"}')" = 400 ]
}

@test "ifGenerationMatch: 0 means create only; a generation must be the live one; resumable checks at finalize" {
	start_gcs
	printf 'one' > one
	[ "$(media obj one '--url-query' 'ifGenerationMatch=0')" = 200 ]
	gen=$(jq -r .generation body.out)
	[ "$(req POST "$UPLOAD?uploadType=media&name=obj&ifGenerationMatch=0" --data-binary @one)" = 412 ]
	[ "$(jq -r '.error.code, .error.errors[0].reason' body.out | paste -sd' ')" = "412 conditionNotMet" ]
	[ "$(req POST "$UPLOAD?uploadType=media&name=obj&ifGenerationMatch=$gen" --data-binary @one)" = 200 ]
	gen2=$(jq -r .generation body.out)
	[ "$gen2" -gt "$gen" ]
	[ "$(req POST "$UPLOAD?uploadType=media&name=obj&ifGenerationMatch=$gen" --data-binary @one)" = 412 ]
	# resumable: the initiation passes, the finalize answers 412
	[ "$(initiate 'obj&ifGenerationMatch=0')" = 200 ]
	[ "$(chunk one 0 2 3)" = 412 ]
	[ "$(req GET "$GCS/storage/v1/b/b/o/obj")" = 200 ]
	[ "$(jq -r .generation body.out)" = "$gen2" ]
	# multipart, create-only on a new name
	multipart_body '{"name": "fresh"}' one > body
	[ "$(multipart body '&ifGenerationMatch=0')" = 200 ]
	[ "$(multipart body '&ifGenerationMatch=0')" = 412 ]
}

@test "names: traversal and odd names refused, nothing written outside the root; missing buckets" {
	start_gcs
	printf 'x' > x
	for n in '..%2Fescape' '%2E%2E%2Fescape' 'a%2F..%2F..%2F..%2Fescape' '%2Ftmp%2Fescape' \
	    'a%2F%2Fb' '.' 'a%2F.%2Fb' 'x%0Ay' 'x%0Dy' 'dir%2F' '' '%00' '%zz'; do
		[ "$(media "$n" x)" = 400 ] || { echo "name $n"; false; }
	done
	long=$(printf 'a%.0s' {1..1025})
	[ "$(media "$long" x)" = 400 ]
	[ "$(req GET "$GCS/storage/v1/b/b/o/..%2F..%2Fescape")" = 400 ]
	[ "$(req GET "$GCS/storage/v1/b/b/o/%2E%2E" --path-as-is)" = 400 ]
	multipart_body '{"name": "../escape"}' x > body
	[ "$(multipart body)" = 400 ]
	[ "$(initiate '..%2Fescape')" = 400 ]
	# buckets: odd names refused, missing ones are 404
	[ "$(req POST "$GCS/upload/storage/v1/b/%2E%2E/o?uploadType=media&name=escape" --data-binary @x)" = 400 ]
	[ "$(req POST "$GCS/upload/storage/v1/b/.meta/o?uploadType=media&name=escape" --data-binary @x)" = 400 ]
	[ "$(req POST "$GCS/upload/storage/v1/b/nope/o?uploadType=media&name=x" --data-binary @x)" = 404 ]
	[ "$(jq -r .error.message body.out)" = 'The specified bucket does not exist.' ]
	[ "$(req GET "$GCS/storage/v1/b/nope/o/x")" = 404 ]
	[ "$(req GET "$GCS/storage/v1/b/b/o/none")" = 404 ]
	[ "$(jq -r .error.message body.out)" = 'No such object: b/none' ]
	run find "$BATS_TEST_TMPDIR" /tmp -maxdepth 3 -name 'escape*'
	assert_output ''
	[ -z "$(ls -A root/b)" ]
	# a UTF-8 name is fine
	[ "$(media 'caf%C3%A9%20%E2%9C%93' x)" = 200 ]
	[ -f 'root/b/café ✓' ]
}

@test "sessions: DELETE cancels with 499; --session-ttl expires them" {
	start_gcs --session-ttl 1
	initiate a > /dev/null
	[ "$(req DELETE "$(session)")" = 499 ]
	[ "$(status_query)" = 404 ]
	initiate b > /dev/null
	[ "$(status_query)" = 308 ]
	[ "$(state .sessions)" = 1 ]
	sleep 1.1
	[ "$(status_query)" = 404 ]
	[ "$(state .sessions)" = 0 ]
	[ -z "$(ls -A root/.sessions)" ]
}

# --- faults ---

@test "fault status: a chunk answered 503 with Retry-After, twice, nothing persisted; a 429 on media" {
	start_gcs --fault '{"kind": "status", "code": 503, "retry_after": 7, "on": "chunk", "times": 2}'
	head -c $G /dev/urandom > f
	initiate f > /dev/null
	[ "$(chunk f 0 $((G - 1)) '*')" = 503 ]
	[ "$(hdr Retry-After)" = 7 ]
	[ "$(jq -r .error.code body.out)" = 503 ]
	[ "$(status_query)" = 308 ]
	[ -z "$(hdr Range)" ]
	[ "$(chunk f 0 $((G - 1)) '*')" = 503 ]
	[ "$(chunk f 0 $((G - 1)) $G)" = 200 ]
	[ "$(state .faults_fired)" = 2 ]
	[ "$(state .upload_bytes)" = $((3 * G)) ]
	ctl /fake/faults '{"kind": "status", "code": 429, "on": "media"}' > /dev/null
	[ "$(media m f)" = 429 ]
	[ -z "$(hdr Retry-After)" ]
	[ "$(req GET "$GCS/storage/v1/b/b/o/m")" = 404 ]
}

@test "fault cut: the connection closes mid-body with no answer; nothing persisted, or whole granules with persist" {
	start_gcs
	head -c $((2 * G)) /dev/urandom > f
	initiate f > /dev/null
	ctl /fake/faults '{"kind": "cut", "bytes": 300000}' > /dev/null
	code=$(chunk f 0 $((2 * G - 1)) '*' || true)
	[ "$code" = 000 ]
	[ ! -s headers.out ]
	[ "$(state .upload_bytes)" = 300000 ]
	[ "$(status_query)" = 308 ]
	[ -z "$(hdr Range)" ]
	ctl /fake/faults '{"kind": "cut", "bytes": 300000, "persist": true}' > /dev/null
	code=$(chunk f 0 $((2 * G - 1)) '*' || true)
	[ "$code" = 000 ]
	[ "$(status_query)" = 308 ]
	[ "$(hdr Range)" = "bytes=0-262143" ]
	[ "$(chunk f $G $((2 * G - 1)) $((2 * G)))" = 200 ]
	cmp f root/b/f
	# on a media upload: no object
	ctl /fake/faults '{"kind": "cut", "on": "media"}' > /dev/null
	code=$(media m f || true)
	[ "$code" = 000 ]
	[ "$(req GET "$GCS/storage/v1/b/b/o/m")" = 404 ]
	[ -z "$(ls -A root/.tmp)" ]
}

@test "fault cut with after_bytes: strikes the chunk that crosses the offset, there" {
	start_gcs --fault '{"kind": "cut", "after_bytes": 600000, "persist": true}'
	head -c $((4 * G)) /dev/urandom > f
	initiate f > /dev/null
	[ "$(chunk f 0 $((G - 1)) '*')" = 308 ]
	[ "$(chunk f $G $((2 * G - 1)) '*')" = 308 ]
	code=$(chunk f $((2 * G)) $((4 * G - 1)) $((4 * G)) || true)
	[ "$code" = 000 ]
	[ "$(status_query)" = 308 ]
	[ "$(hdr Range)" = "bytes=0-524287" ]
	# it read up to offset 600000 of the object: 75712 bytes of that chunk
	[ "$(state .upload_bytes)" = 600000 ]
	[ "$(chunk f $((2 * G)) $((4 * G - 1)) $((4 * G)))" = 200 ]
	cmp f root/b/f
}

@test "fault partial: a chunk fully read but only part kept; 308 says so; the rest is resent" {
	start_gcs --fault '{"kind": "partial", "keep": 300000}'
	head -c $((3 * G + 5)) /dev/urandom > f
	initiate f > /dev/null
	[ "$(chunk f 0 $((3 * G - 1)) '*')" = 308 ]
	[ "$(hdr Range)" = "bytes=0-262143" ]
	[ "$(chunk f $G $((3 * G + 4)) $((3 * G + 5)))" = 200 ]
	cmp f root/b/f
	# keep 0: 308 without Range
	ctl /fake/faults '{"kind": "partial", "keep": 0}' > /dev/null
	initiate g > /dev/null
	[ "$(chunk f 0 $((G - 1)) '*')" = 308 ]
	[ -z "$(hdr Range)" ]
	[ "$(state .persisted_bytes)" = $((3 * G + 5)) ]
}

@test "fault expire: the session answers 404 (or 410) and is gone" {
	start_gcs --fault '{"kind": "expire"}'
	head -c $G /dev/urandom > f
	initiate a > /dev/null
	[ "$(chunk f 0 $((G - 1)) '*')" = 404 ]
	[ "$(status_query)" = 404 ]
	ctl /fake/faults '{"kind": "expire", "code": 410, "on": "query"}' > /dev/null
	initiate b > /dev/null
	[ "$(chunk f 0 $((G - 1)) '*')" = 308 ]
	[ "$(status_query)" = 410 ]
	[ "$(chunk f $G $G '*')" = 404 ]
	[ "$(state .sessions)" = 0 ]
}

@test "fault unauthorized: 401 and the token is revoked; a new token works" {
	start_gcs --token static-token
	printf 'x' > x
	t1=$(metadata_token)
	[ "$(media a x -H "Authorization: Bearer $t1")" = 200 ]
	ctl /fake/faults '{"kind": "unauthorized"}' > /dev/null
	[ "$(media a x -H "Authorization: Bearer $t1")" = 401 ]
	[[ $(hdr WWW-Authenticate) == 'Bearer realm="https://accounts.google.com/"'* ]]
	[ "$(jq -r .error.errors[0].reason body.out)" = authError ]
	[ "$(media a x -H "Authorization: Bearer $t1")" = 401 ]
	t2=$(metadata_token)
	[ "$t2" != "$t1" ]
	[ "$(media a x -H "Authorization: Bearer $t2")" = 200 ]
	[ "$(state .unauthorized)" = 2 ]
	# a --token is revoked the same way
	ctl /fake/faults '{"kind": "unauthorized", "on": "metadata"}' > /dev/null
	[ "$(req GET "$GCS/storage/v1/b/b/o/a" -H 'Authorization: Bearer static-token')" = 401 ]
	[ "$(media a x -H 'Authorization: Bearer static-token')" = 401 ]
}

@test "fault corrupt: stored bytes altered after arrival; the returned crc32c shows it; metadata checks skipped" {
	start_gcs --fault '{"kind": "corrupt"}'
	printf 'hello world' > hw
	[ "$(media hw hw)" = 200 ]
	crc=$(jq -r .crc32c body.out)
	[ "$crc" != yZRlqg== ]
	[ "$(jq -r .md5Hash body.out)" != "$(md5_of hw)" ]
	run cmp -s hw root/b/hw
	[ "$status" = 1 ]
	[ "$(cmp -l hw root/b/hw | wc -l)" = 1 ]
	[ "$(md5_of root/b/hw)" = "$(jq -r .md5Hash body.out)" ]
	[ "$(req GET "$GCS/storage/v1/b/b/o/hw?alt=media")" = 200 ]
	[ "$(hdr x-goog-hash)" = "crc32c=$crc,md5=$(md5_of root/b/hw)" ]
	# with a crc32c given at initiation, the finalize still succeeds
	ctl /fake/faults '{"kind": "corrupt"}' > /dev/null
	initiate r -H 'Content-Type: application/json' --data-binary '{"crc32c": "yZRlqg=="}' > /dev/null
	[ "$(chunk hw 0 10 11)" = 200 ]
	[ "$(jq -r .crc32c body.out)" = "$crc" ]
}

@test "fault stall: the answer comes late, so a client's timeout fires; drop: closed after the head" {
	start_gcs --fault '{"kind": "stall", "seconds": 1.5, "on": "metadata"}'
	printf 'x' > x
	[ "$(media x x)" = 200 ]
	run curl -s --max-time 0.5 "$GCS/storage/v1/b/b/o/x"
	[ "$status" = 28 ]
	SECONDS=0
	[ "$(req GET "$GCS/storage/v1/b/b/o/x")" = 200 ]
	[ "$SECONDS" -lt 2 ]
	ctl /fake/faults '{"kind": "stall", "seconds": 0.6}' > /dev/null
	initiate s > /dev/null
	start=$(date +%s%N)
	[ "$(chunk x 0 0 1)" = 200 ]
	[ $(( ($(date +%s%N) - start) / 1000000 )) -ge 500 ]

	ctl /fake/faults '{"kind": "drop", "on": "metadata"}' > /dev/null
	run curl -s "$GCS/storage/v1/b/b/o/x"
	[ "$status" = 52 ]    # empty reply from server
	[ "$(req GET "$GCS/storage/v1/b/b/o/x")" = 200 ]
	ctl /fake/log | jq -e '[.[] | select(.fault == "drop")] | length == 1 and .[0].status == null'
}

@test "faults: listed with their defaults, counted down, for ever with times -1, cleared; bad ones refused" {
	start_gcs
	run ctl /fake/faults '[{"kind": "status", "code": 500, "times": -1, "on": "metadata"}, {"kind": "expire"}]'
	run ctl /fake/faults
	assert_output --partial '"on": "session"'
	[ "$(jq -c '[.[] | [.kind, .on, .times]]' <<< "$output")" = '[["status","metadata",-1],["expire","session",1]]' ]
	for i in 1 2 3; do
		[ "$(req GET "$GCS/storage/v1/b/b/o/x")" = 500 ]
	done
	[ "$(ctl /fake/faults | jq length)" = 2 ]
	[ "$(ctl /fake/faults/clear x)" = '[]' ]
	[ "$(req GET "$GCS/storage/v1/b/b/o/x")" = 404 ]
	for bad in '{"kind": "status", "code": 99}' '{"kind": "cut", "bytes": -1}' \
	    '{"kind": "partial", "on": "query"}' '{"kind": "status", "colour": 1}' \
	    '{"kind": "status", "times": 0}' '{"kind": "stall", "on": "nowhere"}' 'nope'; do
		[ "$(req POST "$GCS/fake/faults" --data-binary "$bad")" = 400 ] || { echo "$bad"; false; }
	done
	[ "$(ctl /fake/faults)" = '[]' ]
}

# --- tokens and authentication ---

@test "token endpoint: a JWT signed with the key gives a token that opens the storage endpoints" {
	start_gcs --public-key "$KEYS/good.pub" --token-ttl 120 --verbose
	a=$(jwt "$KEYS/good.pem" "$(claims)")
	[ "$(exchange "$a")" = 200 ]
	jq -e '(.access_token | test("^ya29\\.fake-[A-Za-z0-9_-]{30,}$")) and .expires_in == 120
	       and .token_type == "Bearer"' body.out
	tok=$(jq -r .access_token body.out)
	printf 'x' > x
	[ "$(media x x -H "Authorization: Bearer $tok")" = 200 ]
	[ "$(req GET "$GCS/storage/v1/b/b/o/x" -H "Authorization: Bearer $tok")" = 200 ]
	# scopes: any one of the three, among others
	[ "$(exchange "$(jwt "$KEYS/good.pem" "$(claims '.scope = "openid https://www.googleapis.com/auth/cloud-platform"')")")" = 200 ]
	[ "$(exchange "$(jwt "$KEYS/good.pem" "$(claims '.scope = "https://www.googleapis.com/auth/devstorage.full_control"')")")" = 200 ]
	[ "$(state .tokens_issued)" = 3 ]
	# neither the assertion nor the token is ever logged
	! grep -qF "${a##*.}" gcs.err
	! grep -qF "$tok" gcs.err
	grep -q 'POST /token token -> 200' gcs.err
}

@test "token endpoint: wrong key, audience, times, scope, header and grant refused as Google does" {
	start_gcs --public-key "$KEYS/good.pub"
	[ "$(exchange "$(jwt "$KEYS/other.pem" "$(claims)")")" = 400 ]
	[ "$(jq -c . body.out)" = '{"error":"invalid_grant","error_description":"Invalid JWT Signature."}' ]
	# claims changed after signing
	a=$(jwt "$KEYS/good.pem" "$(claims)")
	forged=$(printf '%s' "$(claims '.iss = "mallory@x"')" | b64url)
	[ "$(exchange "${a%%.*}.$forged.${a##*.}")" = 400 ]
	[ "$(jq -r .error_description body.out)" = 'Invalid JWT Signature.' ]
	[ "$(exchange "$(jwt "$KEYS/good.pem" "$(claims '.aud = "https://oauth2.googleapis.com/token"')")")" = 400 ]
	[ "$(jq -r .error_description body.out)" = "Invalid JWT: Failed audience check. The right audience is $GCS/token" ]
	for f in '.iat -= 7200 | .exp -= 7200' '.exp += 1' '.iat += 600 | .exp += 600' '.exp = .iat' '.iat = "now"'; do
		[ "$(exchange "$(jwt "$KEYS/good.pem" "$(claims "$f")")")" = 400 ]
		jq -e '.error == "invalid_grant" and (.error_description | startswith("Invalid JWT: Token must be a short-lived token (60 minutes)"))' body.out
	done
	for f in 'del(.scope)' '.scope = "https://www.googleapis.com/auth/devstorage.read_only"'; do
		[ "$(exchange "$(jwt "$KEYS/good.pem" "$(claims "$f")")")" = 400 ]
		[ "$(jq -r .error body.out)" = invalid_scope ]
	done
	[ "$(exchange "$(jwt "$KEYS/good.pem" "$(claims 'del(.iss)')")")" = 400 ]
	[ "$(exchange "$(jwt "$KEYS/good.pem" "$(claims)" '{"alg":"none"}')")" = 400 ]
	[ "$(exchange "$(jwt "$KEYS/good.pem" "$(claims)" '{"alg":"RS256","typ":"JWS"}')")" = 400 ]
	[ "$(exchange 'not.a.jwt')" = 400 ]
	[ "$(req POST "$GCS/token" --data 'grant_type=password&assertion=x')" = 400 ]
	[ "$(jq -r .error body.out)" = unsupported_grant_type ]
	[ "$(state .tokens_issued)" = 0 ]
}

@test "token endpoint without --public-key: invalid_grant, no public key configured; no auth required" {
	start_gcs
	[ "$(exchange "$(jwt "$KEYS/good.pem" "$(claims)")")" = 400 ]
	[ "$(jq -c . body.out)" = '{"error":"invalid_grant","error_description":"no public key configured"}' ]
	printf 'x' > x
	[ "$(media x x)" = 200 ]
	[ "$(media y x -H 'Authorization: Bearer whatever')" = 200 ]
}

@test "auth: storage endpoints need a live bearer token; session URIs and the control endpoint do not" {
	start_gcs --public-key "$KEYS/good.pub" --token-ttl 1
	printf 'x' > x
	[ "$(media x x)" = 401 ]
	[ "$(hdr WWW-Authenticate)" = 'Bearer realm="https://accounts.google.com/"' ]
	[ "$(jq -r '.error.code, .error.errors[0].reason' body.out | paste -sd' ')" = "401 required" ]
	[ "$(media x x -H 'Authorization: Bearer ya29.fake-forged')" = 401 ]
	[ "$(jq -r .error.errors[0].reason body.out)" = authError ]
	[ "$(req GET "$GCS/storage/v1/b/b/o/x")" = 401 ]
	[ "$(initiate s)" = 401 ]
	exchange "$(jwt "$KEYS/good.pem" "$(claims)")" > /dev/null
	tok=$(jq -r .access_token body.out)
	[ "$(initiate s -H "Authorization: Bearer $tok")" = 200 ]
	[ "$(chunk x 0 0 1)" = 200 ]
	[ "$(ctl /fake/state | jq .unauthorized)" = 4 ]
	# the token lives --token-ttl seconds
	sleep 1.1
	[ "$(req GET "$GCS/storage/v1/b/b/o/s" -H "Authorization: Bearer $tok")" = 401 ]
}

@test "metadata token: needs Metadata-Flavor: Google; its token is accepted" {
	start_gcs --token t0 --token-ttl 300
	path=/computeMetadata/v1/instance/service-accounts/default/token
	[ "$(req GET "$GCS$path")" = 403 ]
	[ "$(req GET "$GCS$path" -H 'Metadata-Flavor: google-ish')" = 403 ]
	[ "$(req GET "$GCS$path" -H 'Metadata-Flavor: Google')" = 200 ]
	[ "$(hdr Metadata-Flavor)" = Google ]
	jq -e '(.access_token | startswith("ya29.fake-")) and .expires_in == 300 and .token_type == "Bearer"' body.out
	tok=$(jq -r .access_token body.out)
	printf 'x' > x
	[ "$(media x x -H "Authorization: Bearer $tok")" = 200 ]
	[ "$(media x x -H 'Authorization: Bearer t0')" = 200 ]
	[ "$(state '.requests.metadata_token')" = 3 ]
}

# --- counters, log, HTTP ---

@test "counters and log: upload_bytes counts every body byte, cut ones too; upload ids are hidden" {
	start_gcs
	total=$((3 * G + 1000))
	head -c $total /dev/urandom > f
	initiate f > /dev/null
	id=$(session | sed "s/.*upload_id=//")
	[ "$(chunk f 0 $((G - 1)) '*')" = 308 ]
	ctl /fake/faults '{"kind": "cut", "bytes": 100000}' > /dev/null
	chunk f $G $((2 * G - 1)) '*' || true
	[ "$(status_query)" = 308 ]
	[ "$(chunk f $G $((2 * G - 1)) '*')" = 308 ]
	[ "$(chunk f $((2 * G)) $((total - 1)) $total)" = 200 ]
	run ctl /fake/state
	[ "$(jq .upload_bytes <<< "$output")" = $((total + 100000)) ]
	[ "$(jq .persisted_bytes <<< "$output")" = $total ]
	[ "$(jq -c '.requests | [.initiate, .chunk, .query, .media]' <<< "$output")" = '[1,4,1,0]' ]
	[ "$(jq '[.sessions, .objects, .faults_fired]' -c <<< "$output")" = '[0,1,1]' ]
	# upload_bytes under 1.5 times the file: the resume sent little again
	[ $(( (total + 100000) * 2 )) -lt $((total * 3)) ]
	run ctl /fake/log
	! grep -qF "$id" <<< "$output"
	[ "$(jq -r '.[1].path' <<< "$output")" = '/upload/storage/v1/b/b/o?uploadType=resumable&name=f&upload_id=…' ]
	[ "$(jq -c '[.[] | [.method, .kind, .status, .body_bytes, .fault]]' <<< "$output")" = \
	  "[[\"POST\",\"initiate\",200,0,null],[\"PUT\",\"chunk\",308,$G,null],[\"PUT\",\"chunk\",null,100000,\"cut\"],[\"PUT\",\"query\",308,0,null],[\"PUT\",\"chunk\",308,$G,null],[\"PUT\",\"chunk\",200,$((G + 1000)),null]]" ]
	jq -e 'map(.t) | . == sort and all(type == "number")' <<< "$output"
	run ctl /fake/state/clear x
	[ "$(jq .upload_bytes <<< "$output")" = 0 ]
	[ "$(ctl /fake/log)" = '[]' ]
}

@test "HTTP: 100-continue, keep-alive, 411 without a length, 431 for big heads, 404 and 405" {
	start_gcs
	printf 'x' > x
	run curl -sv -o /dev/null -H 'Expect: 100-continue' --data-binary @x \
	    "$UPLOAD?uploadType=media&name=x"
	assert_output --partial '< HTTP/1.1 100 Continue'
	assert_output --partial '< HTTP/1.1 200 OK'
	run curl -s -o /dev/null -o /dev/null -w '%{num_connects} ' "$GCS/storage/v1/b/b/o/x" "$GCS/storage/v1/b/b/o/x"
	assert_output '1 0 '
	[ "$(req POST "$UPLOAD?uploadType=media&name=y")" = 411 ]
	[ "$(req POST "$UPLOAD?uploadType=media&name=y" -H 'Transfer-Encoding: chunked' --data-binary @x)" = 411 ]
	head -c 70000 /dev/zero | tr '\0' a > big
	[ "$(req GET "$GCS/fake/state" -H "X-Big: $(cat big)")" = 431 ]
	[ "$(req GET "$GCS/nowhere")" = 404 ]
	[ "$(jq -r .error.errors[0].reason body.out)" = notFound ]
	[ "$(req PATCH "$GCS/storage/v1/b/b/o/x")" = 405 ]
	[ "$(req GET "$GCS/token")" = 405 ]
	[ "$(req GET "$UPLOAD")" = 405 ]
	[ "$(req POST "$UPLOAD?uploadType=weird&name=x" --data-binary @x)" = 400 ]
	# a bad request line gets 400 and the connection ends
	run bash -c "printf 'BAD\r\n\r\n' | curl -s telnet://127.0.0.1:$GCS_PORT --max-time 2"
	assert_output --partial 'HTTP/1.1 400 Bad Request'
}

@test "memory: a 64 MiB media upload and a 64 MiB chunk leave the resident set small" {
	plain_pass_only
	start_gcs
	head -c $((64 * 1048576)) /dev/urandom > big
	[ "$(media big big)" = 200 ]
	[ "$(jq -r .md5Hash body.out)" = "$(md5_of big)" ]
	initiate big2 > /dev/null
	[ "$(chunk big 0 $((64 * 1048576 - 1)) $((64 * 1048576)))" = 200 ]
	cmp big root/b/big2
	hwm=$(awk '/^VmHWM:/ {print $2}' "/proc/$GCS_PID/status")
	echo "VmHWM ${hwm} kB" >&3
	[ "$hwm" -lt 32768 ]
}
