#!/usr/bin/env bats
# pr-parse: prompt files -> prompt records (docs/FORMATS.md, "Prompt files").

load helper
bats_require_minimum_version 1.5.0

# Runs pr-parse expecting bad input: status 2, nothing on stdout, and
# exactly one line on stderr, which must equal $1.
refuses() {
	local want=$1
	shift
	run --separate-stderr pr-parse "$@"
	assert_equal "$status" 2
	assert_equal "$output" ""
	assert_equal "$stderr" "$want"
}

jqf() {
	jq -r "$1" <<<"$output"
}

# --- accepted files ------------------------------------------------------

@test "a plain prompt file gives one exact compact record" {
	write_prompt clipA.txt 2025-05-02_19-39-31_UTC.mp4 500 \
	    'A woman dances in a sunlit studio,' 'blurry, low quality'
	run --separate-stderr pr-parse clipA.txt
	assert_equal "$status" 0
	assert_equal "$stderr" ""
	assert_equal "$output" '{"video":"clipA","input_video":"2025-05-02_19-39-31_UTC.mp4","total_frames":500,"positive":"A woman dances in a sunlit studio,","negative":"blurry, low quality","source":"clipA.txt"}'
}

@test "multi-line prompts keep their lines, leading spaces and all" {
	printf 'v.mp4\n\n12\n\nline one\n  indented two\n\nneg one\nneg two\n' > p.txt
	run pr-parse p.txt
	assert_equal "$status" 0
	assert_equal "$(jqf .positive)" "$(printf 'line one\n  indented two')"
	assert_equal "$(jqf .negative)" "$(printf 'neg one\nneg two')"
}

@test "CRLF line ends and no final newline" {
	printf 'v.mp4\r\n\r\n52\r\n\r\npos one\r\npos two\r\n\r\nneg' > p.txt
	run pr-parse p.txt
	assert_equal "$status" 0
	assert_equal "$(jqf '[.input_video, .total_frames, .positive, .negative] | @json')" \
	    '["v.mp4",52,"pos one\npos two","neg"]'
}

@test "CR-only line ends" {
	printf 'v.mp4\r\r7\r\rpos one\rpos two\r\rneg\r' > p.txt
	run pr-parse p.txt
	assert_equal "$status" 0
	assert_equal "$(jqf '[.input_video, .total_frames, .positive, .negative] | @json')" \
	    '["v.mp4",7,"pos one\npos two","neg"]'
}

@test "a byte order mark is dropped" {
	printf '\357\273\277v.mp4\n\n9\n\npos\n\nneg\n' > p.txt
	run pr-parse p.txt
	assert_equal "$status" 0
	assert_equal "$(jqf .input_video)" "v.mp4"
	assert_equal "$(jqf '.input_video | length')" 5
}

@test "trailing spaces and tabs are dropped; a line of blanks is a blank line" {
	printf 'v.mp4 \t\n \t \n9  \n\t\npos  \n\t \nneg\t\n' > p.txt
	run pr-parse p.txt
	assert_equal "$status" 0
	assert_equal "$(jqf '[.input_video, .total_frames, .positive, .negative] | @json')" \
	    '["v.mp4",9,"pos","neg"]'
}

@test "the source video and the frame count are trimmed on both sides" {
	printf '  v.mp4\n\n\t 42\n\npos\n\nneg\n' > p.txt
	run pr-parse p.txt
	assert_equal "$status" 0
	assert_equal "$(jqf '[.input_video, .total_frames] | @json')" '["v.mp4",42]'
}

@test "blank lines before and after, and runs of blank lines, are one separator" {
	printf '\n\n \nv.mp4\n\n\n\n9\n\n\n\npos\n\n\nneg\n\n\n\n' > p.txt
	run pr-parse p.txt
	assert_equal "$status" 0
	assert_equal "$(jqf '[.input_video, .total_frames, .positive, .negative] | @json')" \
	    '["v.mp4",9,"pos","neg"]'
}

@test "positive paragraphs stay in the positive prompt, joined by one blank line" {
	printf 'v.mp4\n\n9\n\npara one\nstill one\n\n\n\npara two\n\npara three\n\nthe negative\n' > p.txt
	run pr-parse p.txt
	assert_equal "$status" 0
	assert_equal "$(jqf .positive)" "$(printf 'para one\nstill one\n\npara two\n\npara three')"
	assert_equal "$(jqf .negative)" "the negative"
}

@test "a last block of just - is an empty negative prompt" {
	printf 'v.mp4\n\n9\n\npos\n\n- \n' > p.txt
	run pr-parse p.txt
	assert_equal "$status" 0
	assert_equal "$(jqf '.negative | @json')" '""'
	assert_equal "$(jqf .positive)" "pos"
}

@test "a - with more text is a real negative prompt" {
	printf 'v.mp4\n\n9\n\npos\n\n-\nugly\n' > p.txt
	run pr-parse p.txt
	assert_equal "$status" 0
	assert_equal "$(jqf .negative)" "$(printf -- '-\nugly')"
}

@test "a literal \\n in a prompt becomes a line break" {
	printf 'v\\n.mp4\n\n9\n\none\\ntwo\\\\nthree\n\nbad\\nworse\n' > p.txt
	run pr-parse p.txt
	assert_equal "$status" 0
	assert_equal "$(jqf .positive)" "$(printf 'one\ntwo\\\nthree')"
	assert_equal "$(jqf .negative)" "$(printf 'bad\nworse')"
	# The source video is a file name, not a prompt: kept as written.
	assert_equal "$(jqf .input_video)" 'v\n.mp4'
}

@test "--literal keeps \\n as typed" {
	printf 'v.mp4\n\n9\n\none\\ntwo\n\nbad\\nworse\n' > p.txt
	run pr-parse --literal p.txt
	assert_equal "$status" 0
	assert_equal "$(jqf .positive)" 'one\ntwo'
	assert_equal "$(jqf .negative)" 'bad\nworse'
}

@test "Chinese text is kept byte for byte" {
	write_prompt p.txt 源视频.mp4 9 '一个女人在跳舞' '色调艳丽，过曝，静态'
	run pr-parse p.txt
	assert_equal "$status" 0
	assert_equal "$(jqf '[.input_video, .positive, .negative] | @json')" \
	    '["源视频.mp4","一个女人在跳舞","色调艳丽，过曝，静态"]'
}

@test "leading zeros in the frame count are fine" {
	write_prompt p.txt v.mp4 007 pos neg
	run pr-parse p.txt
	assert_equal "$status" 0
	assert_equal "$(jqf .total_frames)" 7
}

@test "the video is the file name minus its last extension" {
	write_prompt clip.v2.txt v.mp4 9 pos neg
	write_prompt other.prompt v.mp4 9 pos neg
	write_prompt plain v.mp4 9 pos neg
	run pr-parse clip.v2.txt other.prompt plain
	assert_equal "$status" 0
	assert_equal "$(jqf '[.video, .source] | join(" ")')" \
	    "$(printf 'clip.v2 clip.v2.txt\nother other.prompt\nplain plain')"
}

@test "a file of exactly 1 MiB is read" {
	printf 'v.mp4\n\n9\n\npos\n\n' > p.txt
	local have
	have=$(wc -c < p.txt)
	head -c $((1048576 - have)) /dev/zero | tr '\0' x >> p.txt
	assert_equal "$(wc -c < p.txt)" 1048576
	run pr-parse p.txt
	assert_equal "$status" 0
	assert_equal "$(jqf '.negative | length')" $((1048576 - 15))
}

# --- frame limits ----------------------------------------------------------

@test "100000 frames is the default limit" {
	write_prompt ok.txt v.mp4 100000 pos neg
	run pr-parse ok.txt
	assert_equal "$status" 0
	assert_equal "$(jqf .total_frames)" 100000
	write_prompt big.txt v.mp4 100001 pos neg
	refuses 'pr-parse: big.txt:3: total frames 100001 is above the limit of 100000 (--max-frames)' big.txt
}

@test "--max-frames sets the limit" {
	write_prompt p.txt v.mp4 51 pos neg
	refuses 'pr-parse: p.txt:3: total frames 51 is above the limit of 50 (--max-frames)' \
	    --max-frames 50 p.txt
	run pr-parse --max-frames 51 p.txt
	assert_equal "$status" 0
	assert_equal "$(jqf .total_frames)" 51
}

@test "frame counts past 64 bits do not wrap around" {
	write_prompt max.txt v.mp4 18446744073709551615 pos neg
	run pr-parse --max-frames 18446744073709551615 max.txt
	assert_equal "$status" 0
	assert_output --partial '"total_frames":18446744073709551615,'
	# 2^64 + 1 would be 1 after wrapping.
	write_prompt p.txt v.mp4 18446744073709551617 pos neg
	refuses 'pr-parse: p.txt:3: total frames 18446744073709551617 is above the limit of 18446744073709551615 (--max-frames)' \
	    --max-frames 18446744073709551615 p.txt
}

@test "--max-frames must be a whole number from 1" {
	write_prompt p.txt v.mp4 5 pos neg
	for bad in 0 -1 abc 1e3 18446744073709551616 ''; do
		run --separate-stderr pr-parse --max-frames "$bad" p.txt
		assert_equal "$status" 2
		assert_equal "$output" ""
		assert_equal "${stderr%%$'\n'*}" \
		    "pr-parse: --max-frames needs a whole number from 1, not \"$bad\""
	done
}

# --- bad input: exit 2, file:line, nothing on stdout ------------------------

@test "a missing file" {
	refuses 'pr-parse: nosuch.txt: No such file or directory' nosuch.txt
}

@test "a file that is not a regular file, such as a FIFO, is refused without waiting" {
	mkfifo fifo.txt
	run --separate-stderr timeout 10 pr-parse fifo.txt
	assert_equal "$status" 2
	assert_equal "$stderr" 'pr-parse: fifo.txt: not a regular file'
}

@test "an empty file" {
	: > empty.txt
	refuses 'pr-parse: empty.txt:1: empty file' empty.txt
}

@test "a file with only a byte order mark is empty" {
	printf '\357\273\277' > bom.txt
	refuses 'pr-parse: bom.txt:1: empty file' bom.txt
}

@test "a file of blank lines is empty" {
	printf '\n  \r\n\t\n' > blank.txt
	refuses 'pr-parse: blank.txt:1: empty file (only blank lines)' blank.txt
}

@test "a file over 1 MiB" {
	printf 'v.mp4\n\n9\n\npos\n\n' > big.txt
	head -c 1048576 /dev/zero | tr '\0' x >> big.txt
	refuses 'pr-parse: big.txt:1: larger than 1 MiB: not a prompt file' big.txt
}

@test "a NUL byte names its line" {
	printf 'v.mp4\r\n\r\n9\r\n\r\npos\0itive\r\n\r\nneg\r\n' > nul.txt
	refuses 'pr-parse: nul.txt:5: NUL byte (is the file UTF-16? save it as UTF-8)' nul.txt
}

@test "bytes that are not UTF-8 name their line" {
	printf 'v.mp4\r\r9\r\rpos\rcaf\351\r\rneg\r' > latin1.txt
	refuses 'pr-parse: latin1.txt:6: byte 0xe9 is not UTF-8 (save the file as UTF-8)' latin1.txt
	# An overlong encoding and a UTF-16 surrogate are not UTF-8 either.
	printf 'v.mp4\n\n9\n\npos\n\nneg \300\257\n' > overlong.txt
	refuses 'pr-parse: overlong.txt:7: byte 0xc0 is not UTF-8 (save the file as UTF-8)' overlong.txt
	printf 'v.mp4\n\n9\n\n\355\240\200\n\nneg\n' > surrogate.txt
	refuses 'pr-parse: surrogate.txt:5: byte 0xed is not UTF-8 (save the file as UTF-8)' surrogate.txt
}

@test "a file with only the source video misses block 2" {
	printf 'v.mp4\n\n\n' > p.txt
	refuses 'pr-parse: p.txt:3: no total frames (block 2): a prompt file has four blocks separated by blank lines: source video, total frames, positive prompt, negative prompt' p.txt
}

@test "a missing positive prompt names block 3 and the last line" {
	printf 'v.mp4\n\n9' > p.txt
	refuses 'pr-parse: p.txt:3: no positive prompt (block 3): a prompt file has four blocks separated by blank lines: source video, total frames, positive prompt, negative prompt' p.txt
}

@test "a missing negative prompt says to write -" {
	printf 'v.mp4\r\n\r\n9\r\n\r\npos\r\nmore\r\n' > p.txt
	refuses 'pr-parse: p.txt:6: no negative prompt (block 4): end the file with a blank line and a block of just "-" for none' p.txt
}

@test "a source video of two lines" {
	printf 'v.mp4\n500\n\npos\n\nneg\n' > p.txt
	refuses 'pr-parse: p.txt:2: the source video (block 1) must be a single line followed by a blank line' p.txt
}

@test "a frame count of two lines" {
	printf 'v.mp4\n\n500\npos\n\nneg\n' > p.txt
	refuses 'pr-parse: p.txt:4: the total frames (block 2) must be a single line followed by a blank line' p.txt
}

@test "a frame count that is not a whole number is quoted" {
	write_prompt clipA.txt v.mp4 5OO pos neg
	refuses 'pr-parse: clipA.txt:3: total frames "5OO" is not a whole number' clipA.txt
	for bad in -5 +5 5.0 1e3 '5 frames' '５'; do
		write_prompt p.txt v.mp4 "$bad" pos neg
		refuses "pr-parse: p.txt:3: total frames \"$bad\" is not a whole number" p.txt
	done
}

@test "a frame count of 0" {
	write_prompt p.txt v.mp4 000 pos neg
	refuses 'pr-parse: p.txt:3: total frames is 0; it must be at least 1' p.txt
}

@test "a file name that is not a valid video name" {
	write_prompt 'my clip.txt' v.mp4 9 pos neg
	refuses "pr-parse: my clip.txt:1: the video name \"my clip\" contains ' '; rename the file (video names use letters, digits, '.', '_' and '-')" 'my clip.txt'
	write_prompt -x.txt v.mp4 9 pos neg
	refuses "pr-parse: ./-x.txt:1: the video name \"-x\" starts with '-'; rename the file (video names use letters, digits, '.', '_' and '-')" ./-x.txt
	long=$(printf 'a%.0s' {1..101})
	write_prompt "$long.txt" v.mp4 9 pos neg
	refuses "pr-parse: $long.txt:1: the video name \"$long\" is longer than 100 bytes; rename the file (video names use letters, digits, '.', '_' and '-')" "$long.txt"
	write_prompt "${long:1}.txt" v.mp4 9 pos neg
	run pr-parse "${long:1}.txt"
	assert_equal "$status" 0
}

@test "one bad file means no output at all, and every bad file is reported" {
	write_prompt a.txt v.mp4 9 pos neg
	write_prompt b.txt v.mp4 x pos neg
	printf 'v.mp4\n\n9\n\npos\n' > c.txt
	write_prompt d.txt v.mp4 9 pos neg
	run --separate-stderr pr-parse a.txt b.txt c.txt d.txt
	assert_equal "$status" 2
	assert_equal "$output" ""
	assert_equal "$stderr" "$(printf '%s\n' \
	    'pr-parse: b.txt:3: total frames "x" is not a whole number' \
	    'pr-parse: c.txt:5: no negative prompt (block 4): end the file with a blank line and a block of just "-" for none')"
}

@test "--keep-going prints the good records and exits 1" {
	write_prompt a.txt v.mp4 9 pos neg
	write_prompt b.txt v.mp4 0 pos neg
	write_prompt d.txt v.mp4 10 pos neg
	run --separate-stderr pr-parse --keep-going a.txt nosuch.txt b.txt d.txt
	assert_equal "$status" 1
	assert_equal "$(jqf '[.video, .total_frames] | join(" ")')" "$(printf 'a 9\nd 10')"
	assert_equal "$stderr" "$(printf '%s\n' \
	    'pr-parse: nosuch.txt: No such file or directory' \
	    'pr-parse: b.txt:3: total frames is 0; it must be at least 1')"
}

@test "--keep-going with only good files exits 0" {
	write_prompt a.txt v.mp4 9 pos neg
	run pr-parse --keep-going a.txt
	assert_equal "$status" 0
	assert_equal "$(jqf .video)" a
}

# --- directories and duplicates --------------------------------------------

@test "a directory means its *.txt regular files, in byte order, not recursive" {
	# Byte order, not the locale's: B < _ < a, and a-b < a. ('-' < '.')
	mkdir -p p/sub p/dir.txt
	for f in b a-b a B _z; do write_prompt "p/$f.txt" v.mp4 9 pos neg; done
	write_prompt p/notes.md v.mp4 9 pos neg
	write_prompt p/upper.TXT v.mp4 9 pos neg
	write_prompt p/.hidden.txt v.mp4 9 pos neg
	write_prompt p/sub/deep.txt v.mp4 9 pos neg
	ln -s b.txt p/link.txt
	ln -s nowhere p/dangling.txt
	run --separate-stderr pr-parse p
	assert_equal "$status" 0
	assert_equal "$stderr" ""
	assert_equal "$(jqf '[.video, .source] | join(" ")')" "$(printf '%s\n' \
	    'B p/B.txt' '_z p/_z.txt' 'a-b p/a-b.txt' 'a p/a.txt' 'b p/b.txt' 'link p/link.txt')"
}

@test "a directory given with a trailing slash does not double it" {
	mkdir p
	write_prompt p/a.txt v.mp4 9 pos neg
	run pr-parse p/
	assert_equal "$status" 0
	assert_equal "$(jqf .source)" p/a.txt
}

@test "records come in argument order, files and directories mixed" {
	mkdir d
	write_prompt d/m.txt v.mp4 1 pos neg
	write_prompt d/c.txt v.mp4 2 pos neg
	write_prompt z.txt v.mp4 3 pos neg
	write_prompt a.txt v.mp4 4 pos neg
	run pr-parse z.txt d a.txt
	assert_equal "$status" 0
	assert_equal "$(jqf .video)" "$(printf 'z\nc\nm\na')"
}

@test "an empty directory alone is a usage error" {
	mkdir empty
	run --separate-stderr pr-parse empty
	assert_equal "$status" 2
	assert_equal "$output" ""
	assert_equal "${stderr%%$'\n'*}" \
	    'pr-parse: no prompt files: the directories given have no *.txt files'
}

@test "an empty directory beside a prompt file is fine" {
	mkdir empty
	write_prompt a.txt v.mp4 9 pos neg
	run pr-parse empty a.txt
	assert_equal "$status" 0
	assert_equal "$(jqf .video)" a
}

@test "the same video name twice refuses both files and names both" {
	mkdir one two
	write_prompt one/clip.txt v.mp4 9 pos neg
	write_prompt two/clip.txt v.mp4 9 pos neg
	write_prompt other.txt v.mp4 9 pos neg
	refuses 'pr-parse: two/clip.txt:1: video "clip" again: one/clip.txt makes it too; rename one of the files' \
	    one two other.txt
	run --separate-stderr pr-parse --keep-going one other.txt two
	assert_equal "$status" 1
	assert_equal "$(jqf .video)" other
	assert_equal "$stderr" 'pr-parse: two/clip.txt:1: video "clip" again: one/clip.txt makes it too; rename one of the files'
}

@test "stems clash whatever the extension" {
	write_prompt clip.txt v.mp4 9 pos neg
	write_prompt clip.prompt v.mp4 9 pos neg
	refuses 'pr-parse: clip.prompt:1: video "clip" again: clip.txt makes it too; rename one of the files' \
	    clip.txt clip.prompt
}

# --- the user's real prompt files ------------------------------------------

@test "every v2 prompt file of the original tool parses" {
	need_fixtures
	local d=$FIXTURES/prompt_files
	run pr-parse "$d"/v2-*.txt
	assert_equal "$status" 0
	assert_equal "$(jqf '[.video, .total_frames] | join(" ")')" "$(printf '%s\n' \
	    'v2-4f14e92-1 450' 'v2-4f14e92-2 196' 'v2-4f14e92-3 315' 'v2-4f14e92-4 200' \
	    'v2-4f14e92-not-used-5 213' 'v2-55e64ed-1 314' 'v2-5ef3de6-1 500' \
	    'v2-71753e7-1 103' 'v2-dfe06b5-1 230' 'v2-ee55a3b-1 52')"
	assert_equal "$(jqf '.source' | head -1)" "$d/v2-4f14e92-1.txt"
	assert_equal "$(jqf '.input_video' | sort -u)" \
	    "$(printf '2025-05-02_19-39-31_UTC.mp4\nnotimportant')"
	# CRLF gone everywhere; the Chinese negative prompt kept.
	assert_equal "$(jqf '[.positive, .negative] | map(test("\r")) | any' | sort -u)" false
	assert_equal "$(jqf '.negative | startswith("色调艳丽，过曝，静态，细节模糊不清")' | sort -u)" true
}

@test "the 5ef3de6 prompt's literal \\n becomes a real line break" {
	need_fixtures
	run pr-parse "$FIXTURES/prompt_files/v2-5ef3de6-1.txt"
	assert_equal "$status" 0
	assert_equal "$(jqf '.positive | contains("a white crop bra\nOFA1M1 is dancing")')" true
	assert_equal "$(jqf '.positive | contains("\\n")')" false
	assert_equal "$(jqf '.positive | split("\n") | length')" 6
	run pr-parse --literal "$FIXTURES/prompt_files/v2-5ef3de6-1.txt"
	assert_equal "$(jqf '.positive | contains("a white crop bra\\nOFA1M1")')" true
	assert_equal "$(jqf '.positive | contains("\n")')" false
}

@test "the 4f14e92 prompt's two lines stay two lines" {
	need_fixtures
	run pr-parse "$FIXTURES/prompt_files/v2-4f14e92-2.txt"
	assert_equal "$status" 0
	assert_equal "$(jqf '.positive | split("\n") | map(.[0:22]) | @json')" \
	    '["The setting to be an i","sh4rpn3ss 4k HDR. clea"]'
}

@test "the v1 prompt files, which have no blocks, are refused clearly" {
	need_fixtures
	local d=$FIXTURES/prompt_files
	run --separate-stderr pr-parse "$d"/v1-*.txt
	assert_equal "$status" 2
	assert_equal "$output" ""
	local msg='no total frames (block 2): a prompt file has four blocks separated by blank lines: source video, total frames, positive prompt, negative prompt'
	assert_equal "$stderr" "$(printf 'pr-parse: %s:2: %s\n' \
	    "$d/v1-b91776f-1.txt" "$msg" "$d/v1-b91776f-2.txt" "$msg" "$d/v1-b91776f-4.txt" "$msg")"
}

@test "the fixture directory with --keep-going: the v2 records and the v1 errors" {
	need_fixtures
	run --separate-stderr pr-parse --keep-going "$FIXTURES/prompt_files"
	assert_equal "$status" 1
	assert_equal "$(jqf .total_frames | tr '\n' ' ')" "450 196 315 200 213 314 500 103 230 52 "
	assert_equal "$(grep -c ':2: no total frames (block 2)' <<<"$stderr")" 3
}

# --- command line ------------------------------------------------------------

@test "--help prints usage and options on stdout" {
	run --separate-stderr pr-parse --help
	assert_equal "$status" 0
	assert_equal "$stderr" ""
	assert_line --index 0 'usage: pr-parse [--keep-going] [--literal] [--max-frames N] FILE_OR_DIR...'
	assert_output --partial '  --keep-going '
	assert_output --partial '  --literal '
	assert_output --partial '  --max-frames N '
}

@test "--version" {
	run pr-parse --version
	assert_equal "$status" 0
	assert_output --regexp '^pr-parse \(prompt-runner\) [0-9]+\.[0-9]+\.[0-9]+$'
}

@test "an unknown option is a usage error" {
	write_prompt a.txt v.mp4 9 pos neg
	run --separate-stderr pr-parse --frobnicate a.txt
	assert_equal "$status" 2
	assert_equal "$output" ""
	assert_equal "$stderr" "$(printf '%s\n' \
	    "pr-parse: unrecognized option '--frobnicate'" \
	    'usage: pr-parse [--keep-going] [--literal] [--max-frames N] FILE_OR_DIR...' \
	    "Try 'pr-parse --help' for more information.")"
}

@test "no arguments is a usage error" {
	run --separate-stderr pr-parse
	assert_equal "$status" 2
	assert_equal "$output" ""
	assert_equal "${stderr%%$'\n'*}" 'pr-parse: no prompt files or directories given'
}

@test "a stdout that cannot be written exits 3" {
	[ -w /dev/full ] || skip "no /dev/full"
	write_prompt a.txt v.mp4 9 pos neg
	run --separate-stderr bash -c 'pr-parse a.txt > /dev/full'
	assert_equal "$status" 3
	assert_equal "$stderr" 'pr-parse: error writing standard output: No space left on device'
}

@test "a closed pipe on stdout exits 3" {
	write_prompt a.txt v.mp4 9 pos neg
	run_closed_pipe pr-parse a.txt
	assert_equal "$status" 3
	assert_output 'pr-parse: error writing standard output: Broken pipe'
}
