#!/usr/bin/env bats
# fake-frameid and the library under it (frame codes, video I/O, child
# processes), against the real ffmpeg: codes must survive what the stand-in
# and pr-combine do to videos.

load helper

# The JSON of jq's range(a; b), to compare .codes with.
seq_json() {
	jq -nc "[range($1; $2)]"
}

# .runs of one file, compact.
runs_of() {
	fake-frameid "$@" | jq -c .runs
}

# One-line error: exactly one line on stderr, naming the program.
assert_one_line_error() {
	assert_equal "${#stderr_lines[@]}" 1
	assert_regex "${stderr_lines[0]}" '^fake-frameid: '
}

@test "round trip through h264 at crf 19: every code exact" {
	fake-frameid --make a.mp4 --frames 97
	run fake-frameid a.mp4
	assert_success
	assert_equal "$(jq -c .codes <<< "$output")" "$(seq_json 0 97)"
	assert_equal "$(jq -c '[.path, .frames, .width, .height, .runs]' <<< "$output")" \
	    '["a.mp4",97,64,48,[[0,96]]]'
}

@test "round trip through h264 at crf 35: every code exact" {
	fake-frameid --make a.mp4 --frames 97 --first 1000 --crf 35
	assert_equal "$(fake-frameid --size 64x48 a.mp4 | jq -c .codes)" "$(seq_json 1000 1097)"
}

@test "written videos are h264 yuv420p with B-frames and bt709 tags, like VideoHelperSuite's" {
	fake-frameid --make a.mp4 --frames 30 --fps 30000/1001
	run ffprobe -v error -select_streams v:0 -show_entries \
	    stream=codec_name,pix_fmt,color_range,color_space,color_primaries,color_transfer,r_frame_rate \
	    -of default=nw=1 a.mp4
	assert_success
	assert_line codec_name=h264
	assert_line pix_fmt=yuv420p
	assert_line color_range=tv
	assert_line color_space=bt709
	assert_line color_primaries=bt709
	assert_line color_transfer=bt709
	assert_line r_frame_rate=30000/1001
	run ffprobe -v error -select_streams v -show_frames -show_entries frame=pict_type -of csv a.mp4
	assert_success
	assert_line --regexp '^frame,B'
	assert_line --regexp '^frame,I'
	# Nothing but the video is left beside it.
	assert_equal "$(ls)" a.mp4
}

@test "a lanczos upscale by 1.5 reads exact; so does decoding at other sizes" {
	fake-frameid --make a.mp4 --frames 40
	ffmpeg -v error -i a.mp4 -vf scale=iw*1.5:ih*1.5:flags=lanczos big.mp4
	run fake-frameid big.mp4
	assert_success
	assert_equal "$(jq -c '[.width, .height, .runs]' <<< "$output")" '[96,72,[[0,39]]]'
	assert_equal "$(runs_of --size 32x24 big.mp4)" '[[0,39]]'
	assert_equal "$(fake-frameid --size 200x90 a.mp4 | jq -c '[.width, .height, .runs]')" \
	    '[200,90,[[0,39]]]'
}

@test "a stream-copy concat reads as its two parts; a seamless one as one run" {
	fake-frameid --make a.mp4 --frames 30
	fake-frameid --make b.mp4 --frames 20 --first 100
	fake-frameid --make c.mp4 --frames 20 --first 30
	printf "file '%s'\n" "$PWD/a.mp4" "$PWD/b.mp4" > ab.txt
	printf "file '%s'\n" "$PWD/a.mp4" "$PWD/c.mp4" > ac.txt
	ffmpeg -v error -f concat -safe 0 -i ab.txt -c copy ab.mp4
	ffmpeg -v error -f concat -safe 0 -i ac.txt -c copy ac.mp4
	# --size: the known size, which spares a probe per file.
	run fake-frameid --size 64x48 ab.mp4 ac.mp4
	assert_success
	assert_equal "${#lines[@]}" 2
	assert_equal "$(jq -c '[.path, .frames, .runs]' <<< "${lines[0]}")" \
	    '["ab.mp4",50,[[0,29],[100,119]]]'
	assert_equal "$(jq -c '[.path, .frames, .runs]' <<< "${lines[1]}")" '["ac.mp4",50,[[0,49]]]'
}

@test "a frame-exact trim reads 10..29" {
	fake-frameid --make a.mp4 --frames 40
	ffmpeg -v error -i a.mp4 -vf trim=start_frame=10:end_frame=30,setpts=PTS-STARTPTS t.mp4
	run fake-frameid --size 64x48 t.mp4
	assert_success
	assert_equal "$(jq -c .codes <<< "$output")" "$(seq_json 10 30)"
	assert_equal "$(jq -c .runs <<< "$output")" '[[10,29]]'
}

@test "a repeated or missing frame splits a run; a frame without a code ends one" {
	fake-frameid --make a.mp4 --frames 5
	fake-frameid --make b.mp4 --frames 3 --first 4
	fake-frameid --make c.mp4 --frames 2 --first 8
	printf "file '%s'\n" "$PWD/a.mp4" "$PWD/b.mp4" "$PWD/c.mp4" > l.txt
	ffmpeg -v error -f concat -safe 0 -i l.txt -c copy abc.mp4
	assert_equal "$(fake-frameid --size 64x48 abc.mp4 | jq -c '[.codes, .runs]')" \
	    '[[0,1,2,3,4,4,5,6,8,9],[[0,4],[4,6],[8,9]]]'
	# Re-encoded around two black frames.
	fake-frameid --make d.mp4 --frames 5 --first 5
	ffmpeg -v error -f lavfi -i color=c=black:size=64x48:rate=30 -frames:v 2 -pix_fmt yuv420p k.mp4
	printf "file '%s'\n" "$PWD/a.mp4" "$PWD/k.mp4" "$PWD/d.mp4" > l2.txt
	ffmpeg -v error -f concat -safe 0 -i l2.txt -pix_fmt yuv420p akd.mp4
	assert_equal "$(fake-frameid --size 64x48 akd.mp4 | jq -c '[.codes, .runs]')" \
	    '[[0,1,2,3,4,null,null,5,6,7,8,9],[[0,4],[5,9]]]'
}

@test "PNG round trip, gray, also at odd sizes" {
	fake-frameid --make f.png --frames 1 --first 4242
	assert_equal "$(fake-frameid f.png | jq -c '[.frames, .codes, .runs]')" '[1,[4242],[[4242,4242]]]'
	run ffprobe -v error -show_entries stream=codec_name,pix_fmt -of default=nw=1 f.png
	assert_line codec_name=png
	assert_line pix_fmt=gray
	fake-frameid --make odd.png --frames 1 --size 33x25 --first 16777215
	assert_equal "$(fake-frameid odd.png | jq -c '[.width, .height, .codes]')" '[33,25,[16777215]]'
}

@test "pictures without a code read as null: a test pattern, a solid colour, black, white" {
	ffmpeg -v error -f lavfi -i testsrc=size=64x48:rate=30 -frames:v 10 t.mp4
	ffmpeg -v error -f lavfi -i color=c=0x3060a0:size=64x48:rate=30 -frames:v 3 c.mp4
	ffmpeg -v error -f lavfi -i color=c=black:size=64x48 -frames:v 1 k.png
	ffmpeg -v error -f lavfi -i color=c=white:size=320x240 -frames:v 1 w.png
	run fake-frameid t.mp4 c.mp4 k.png w.png
	assert_success
	assert_equal "$(jq -c '[.frames, (.codes | unique), .runs]' <<< "${lines[0]}")" '[10,[null],[]]'
	assert_equal "$(jq -c '[.frames, (.codes | unique), .runs]' <<< "${lines[1]}")" '[3,[null],[]]'
	assert_equal "$(jq -c '[.frames, .codes, .runs]' <<< "${lines[2]}")" '[1,[null],[]]'
	assert_equal "$(jq -c '[.width, .codes]' <<< "${lines[3]}")" '[320,[null]]'
}

@test "codes up to 2^24-1; one more is a usage error" {
	fake-frameid --make top.mp4 --frames 16 --first 16777200
	assert_equal "$(fake-frameid --size 64x48 top.mp4 | jq -c .codes)" "$(seq_json 16777200 16777216)"
	run --separate-stderr -2 fake-frameid --make x.mp4 --frames 17 --first 16777200
	assert_equal "${stderr_lines[0]}" \
	    'fake-frameid: --first 16777200 --frames 17: codes would pass 16777215'
	run -2 fake-frameid --make x.mp4 --frames 1 --first 16777216
	assert [ ! -e x.mp4 ]
}

@test "file names with spaces, quotes, \$, % and a leading - pass through untouched" {
	fake-frameid --make "./-x y'\$z.mp4" --frames 5 --first 7
	fake-frameid --make 'a "b" %d:c.png' --frames 1 --first 9
	fake-frameid --make 'p%03d.png' --frames 1 --first 3
	# A sibling the image2 demuxer would read for the %03d pattern.
	fake-frameid --make 'p001.png' --frames 1 --first 1
	run fake-frameid "./-x y'\$z.mp4" 'a "b" %d:c.png' -- 'p%03d.png'
	assert_success
	assert_equal "$(jq -c '[.path, .codes]' <<< "${lines[0]}")" "[\"./-x y'\$z.mp4\",[7,8,9,10,11]]"
	assert_equal "$(jq -c '[.path, .codes]' <<< "${lines[1]}")" '["a \"b\" %d:c.png",[9]]'
	assert_equal "$(jq -c '[.path, .codes]' <<< "${lines[2]}")" '["p%03d.png",[3]]'
	assert_equal "$(ls | wc -l)" 4
}

@test "missing, unreadable and non-video files exit 2 with one line and no records" {
	fake-frameid --make a.mp4 --frames 2
	echo 'not a video' > t.txt
	: > empty.mp4
	ffmpeg -v error -f lavfi -i sine=d=0.2 s.m4a
	mkdir d
	run --separate-stderr -2 fake-frameid a.mp4 missing.mp4
	assert_output ''
	assert_one_line_error
	assert_equal "$stderr" 'fake-frameid: missing.mp4: No such file or directory'
	run --separate-stderr -2 fake-frameid d
	assert_equal "$stderr" 'fake-frameid: d: Is a directory'
	run --separate-stderr -2 fake-frameid t.txt
	assert_equal "$stderr" 'fake-frameid: t.txt: Invalid data found when processing input'
	run --separate-stderr -2 fake-frameid --size 64x48 empty.mp4
	assert_one_line_error
	assert_regex "$stderr" '^fake-frameid: empty.mp4: '
	run --separate-stderr -2 fake-frameid s.m4a
	assert_equal "$stderr" 'fake-frameid: s.m4a: no video stream'
	run --separate-stderr -2 fake-frameid --size 64x48 s.m4a
	assert_equal "$stderr" "fake-frameid: s.m4a: Stream map '0:v:0' matches no streams."
}

@test "bad arguments exit 2 and name the problem" {
	local args
	for args in '' '--size 64 a.mp4' '--size 8x8 a.mp4' '--size 0x48 a.mp4' \
	    '--frames 3 a.mp4' '--crf 20 a.mp4' '--make x.mp4' '--make x.mp4 --frames 0' \
	    '--make x.mp4 --frames 2 --crf 52' '--make x.mp4 --frames 2 --fps 0' \
	    '--make x.mp4 --frames 2 --fps 30/0' '--make x.mp4 --frames 2 --fps abc' \
	    '--make x.mp4 --frames 2 --size 63x48' '--make x.png --frames 2' \
	    '--make x.png --frames 1 --crf 19' '--make x.mp4 --frames 2 y.mp4' \
	    '--frames' '--bogus a.mp4'; do
		# shellcheck disable=SC2086
		run --separate-stderr -2 fake-frameid $args
		assert_output ''
		assert_regex "${stderr_lines[-1]}" "^Try 'fake-frameid --help'"
	done
	run --separate-stderr -2 fake-frameid --make x.mp4 --frames 2 --size 63x48
	assert_equal "${stderr_lines[0]}" 'fake-frameid: --size 63x48: a yuv420p video needs even sides'
	assert [ ! -e x.mp4 ]
}

@test "an output that cannot be written exits 3 and leaves no temporary file" {
	run --separate-stderr -3 fake-frameid --make nodir/x.mp4 --frames 2
	assert_equal "$stderr" 'fake-frameid: nodir/x.mp4: No such file or directory'
	mkdir d
	run --separate-stderr -3 fake-frameid --make d --frames 2
	assert_one_line_error
	assert_equal "$(ls -A d)" ''
	# Nor beside it (bats keeps its own separate-stderr files here).
	assert_equal "$(ls -A | grep -v '^separate-stderr-')" d
}

@test "stdout on /dev/full or a closed pipe exits 3" {
	fake-frameid --make a.mp4 --frames 2
	[ -w /dev/full ] || skip "no /dev/full"
	run --separate-stderr -3 bash -c 'fake-frameid a.mp4 > /dev/full'
	assert_equal "$stderr" 'fake-frameid: error writing standard output: No space left on device'
	run_closed_pipe fake-frameid a.mp4
	assert_failure 3
}

@test "--help and --version" {
	run -0 fake-frameid --help
	assert_line --index 0 --partial 'usage: fake-frameid [--size WxH] FILE...'
	assert_output --partial '--make OUT'
	run -0 fake-frameid --version
	assert_output --regexp '^fake-frameid \(prompt-runner\) [0-9]+\.[0-9]+\.[0-9]+$'
}
