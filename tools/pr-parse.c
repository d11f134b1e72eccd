/*
 * pr-parse: prompt files in, one "prompt" record per file out. The file
 * format and the record are defined in docs/FORMATS.md.
 *
 * Every file is read and checked before anything is written, so a bad
 * file leaves stdout empty unless --keep-going asks for the good ones.
 */
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "pr.h"

/* Prompts are a few KiB; anything this big is not a prompt file. */
#define MAX_FILE (1024 * 1024)
#define DEFAULT_MAX_FRAMES 100000

static const char usage[] =
    "usage: pr-parse [--keep-going] [--literal] [--max-frames N] FILE_OR_DIR...\n";

static const char help[] =
    "Reads prompt files and prints one \"prompt\" record per file (video,\n"
    "input_video, total_frames, positive, negative, source), in argument order.\n"
    "A directory stands for its *.txt files, in byte order.\n"
    "\n"
    "  --keep-going      report bad files but still print the good ones (exit 1)\n"
    "  --literal         keep the two characters \\n in prompts as typed\n"
    "  --max-frames N    largest total frame count accepted (default 100000)\n"
    "  --help, --version\n"
    "\n"
    "Exit status: 0 done, 1 some files bad (--keep-going), 2 bad input or usage\n"
    "(nothing written), 3 cannot write.\n"
    "See pr-parse(1) and docs/FORMATS.md.\n";

static const char four_blocks[] =
    "a prompt file has four blocks separated by blank lines: source video, "
    "total frames, positive prompt, negative prompt";

struct opts {
	bool keep_going;
	bool literal;
	uint64_t max_frames;
};

/* One prompt file of the run, in the order the records come out. */
struct item {
	char *path;     /* as found: the argument, or dir/name */
	char *video;    /* the file name minus its last extension */
	cJSON *rec;
	bool bad;
};

struct run {
	struct item *v;
	size_t n, cap;
};

/* A line of the file without its line end and trailing blanks. */
struct line {
	const char *s;
	size_t len;
	size_t no;      /* 1-based, in the file as written */
};

/* Consecutive non-blank lines. */
struct block {
	const struct line *l;
	size_t n;
};

struct text {
	struct line *lines;
	size_t nlines;
	struct block *blocks;
	size_t nblocks;
};

static void bad(struct item *it, size_t line, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* "pr-parse: FILE:LINE: what", or without the line when it means nothing. */
static void
bad(struct item *it, size_t line, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s: %s:", pr_progname, it->path);
	if (line)
		fprintf(stderr, "%zu:", line);
	fputc(' ', stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	it->bad = true;
}

static char *
stem(const char *path)
{
	const char *base, *dot;

	base = strrchr(path, '/');
	base = base ? base + 1 : path;
	dot = strrchr(base, '.');
	/* ".txt" alone has no extension; the name check then refuses it. */
	if (!dot || dot == base)
		return pr_xstrdup(base);
	return pr_xstrndup(base, (size_t)(dot - base));
}

static struct item *
add_item(struct run *r, char *path)
{
	struct item *it;

	if (r->n == r->cap) {
		r->cap = r->cap ? r->cap * 2 : 16;
		r->v = pr_xrealloc(r->v, r->cap * sizeof *r->v);
	}
	it = &r->v[r->n++];
	*it = (struct item){ .path = path, .video = stem(path) };
	return it;
}

static int
cmp_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static bool
is_prompt_name(const char *name)
{
	size_t len = strlen(name);

	/* What the shell's *.txt matches: dot files are not included. */
	return name[0] != '.' && len > 4 && strcmp(name + len - 4, ".txt") == 0;
}

static char *
join_path(const char *dir, const char *name)
{
	struct pr_buf b = PR_BUF_INIT;
	size_t len = strlen(dir);

	pr_buf_printf(&b, "%s%s%s", dir, len && dir[len - 1] == '/' ? "" : "/", name);
	return pr_buf_steal(&b);
}

/* A directory we cannot list counts as a bad file of the run, but it makes
 * no video, so it takes no part in the duplicate check. */
static void
dir_error(struct run *r, const char *dir)
{
	int saved = errno;
	struct item *it = add_item(r, pr_xstrdup(dir));

	free(it->video);
	it->video = NULL;
	bad(it, 0, "cannot read directory: %s", strerror(saved));
}

/* Adds the directory's *.txt regular files, non-recursive, in byte order. */
static void
add_dir(struct run *r, const char *dir)
{
	struct dirent *de;
	struct stat st;
	char **names = NULL, *path;
	size_t n = 0, cap = 0, i;
	DIR *d;

	if (!(d = opendir(dir))) {
		dir_error(r, dir);
		return;
	}
	while ((errno = 0, de = readdir(d))) {
		if (!is_prompt_name(de->d_name))
			continue;
		path = join_path(dir, de->d_name);
		if (stat(path, &st) < 0 || !S_ISREG(st.st_mode)) {
			free(path);
			continue;
		}
		if (n == cap) {
			cap = cap ? cap * 2 : 16;
			names = pr_xrealloc(names, cap * sizeof *names);
		}
		names[n++] = path;
	}
	if (errno)
		dir_error(r, dir);
	closedir(d);
	if (n)
		qsort(names, n, sizeof *names, cmp_names);
	for (i = 0; i < n; i++)
		add_item(r, names[i]);
	free(names);
}

static void
add_arg(struct run *r, const char *arg)
{
	struct stat st;

	if (stat(arg, &st) == 0 && S_ISDIR(st.st_mode))
		add_dir(r, arg);
	else
		add_item(r, pr_xstrdup(arg));  /* parse_item says what is wrong */
}

/* Line number of byte off (< the length of s): CRLF, CR and LF each end
 * one line. */
static size_t
line_at(const char *s, size_t off)
{
	size_t i, no = 1;

	for (i = 0; i < off; i++) {
		if (s[i] == '\n' || (s[i] == '\r' && s[i + 1] != '\n'))
			no++;
	}
	return no;
}

/* Splits into lines and blocks; trailing spaces and tabs are not kept. */
static void
split(const char *s, size_t len, struct text *t)
{
	size_t i = 0, start, end, cap = 0;
	struct line *l;

	*t = (struct text){ 0 };
	while (i < len) {
		start = i;
		while (i < len && s[i] != '\n' && s[i] != '\r')
			i++;
		end = i;
		if (i < len && s[i] == '\r' && i + 1 < len && s[i + 1] == '\n')
			i++;
		if (i < len)
			i++;
		while (end > start && (s[end - 1] == ' ' || s[end - 1] == '\t'))
			end--;
		if (t->nlines == cap) {
			cap = cap ? cap * 2 : 64;
			t->lines = pr_xrealloc(t->lines, cap * sizeof *t->lines);
		}
		t->lines[t->nlines] = (struct line){ s + start, end - start, t->nlines + 1 };
		t->nlines++;
	}
	/* At most one block per two lines, plus one. */
	t->blocks = pr_xcalloc(t->nlines / 2 + 1, sizeof *t->blocks);
	for (l = t->lines; l < t->lines + t->nlines; l++) {
		if (l->len == 0)
			continue;
		if (l == t->lines || l[-1].len == 0)
			t->blocks[t->nblocks++].l = l;
		t->blocks[t->nblocks - 1].n++;
	}
}

/* The file as one line: "whole-file" problems name line 1. */
static bool
check_bytes(struct item *it, const char *s, size_t len)
{
	const char *nul = memchr(s, '\0', len);
	size_t bad_utf8 = pr_utf8_check(s, len);

	if (len == 0) {
		bad(it, 1, "empty file");
		return false;
	}
	/* What Notepad saves as "Unicode": name it rather than its first byte. */
	if (len >= 2 && (memcmp(s, "\xff\xfe", 2) == 0 || memcmp(s, "\xfe\xff", 2) == 0)) {
		bad(it, 1, "the file is UTF-16 (it starts with a UTF-16 byte order mark); "
		    "save it as UTF-8");
		return false;
	}
	if (nul && (size_t)(nul - s) < bad_utf8) {
		bad(it, line_at(s, (size_t)(nul - s)), "NUL byte (is the file UTF-16? "
		    "save it as UTF-8)");
		return false;
	}
	if (bad_utf8 < len) {
		bad(it, line_at(s, bad_utf8), "byte 0x%02x is not UTF-8 (save the file "
		    "as UTF-8)", (unsigned char)s[bad_utf8]);
		return false;
	}
	return true;
}

static bool
check_missing(struct item *it, const struct text *t, size_t want)
{
	size_t last = t->nlines;

	if (t->nblocks >= want)
		return true;
	switch (want) {
	case 2:
		bad(it, last, "no total frames (block 2): %s", four_blocks);
		break;
	case 3:
		bad(it, last, "no positive prompt (block 3): %s", four_blocks);
		break;
	default:
		bad(it, last, "no negative prompt (block 4): end the file with a blank "
		    "line and a block of just \"-\" for none");
		break;
	}
	return false;
}

static const char *
skip_blanks(const char *s, size_t *len)
{
	while (*len && (*s == ' ' || *s == '\t')) {
		s++;
		(*len)--;
	}
	return s;
}

/* Digits only, 1 to --max-frames. */
static bool
parse_frames(struct item *it, const struct opts *o, const struct line *l,
    uint64_t *frames)
{
	size_t len = l->len, i;
	const char *s = skip_blanks(l->s, &len);
	char *text = pr_xstrndup(s, len);
	bool ok = false;

	for (i = 0; i < len; i++)
		if (s[i] < '0' || s[i] > '9')
			break;
	if (i < len)
		bad(it, l->no, "total frames \"%s\" is not a whole number", text);
	else if (pr_parse_u64(text, frames) < 0 || *frames > o->max_frames)
		/* Past 64 bits is above any limit; it must not wrap around. */
		bad(it, l->no, "total frames %s is above the limit of %" PRIu64
		    " (--max-frames)", text, o->max_frames);
	else if (*frames == 0)
		bad(it, l->no, "total frames is 0; it must be at least 1");
	else
		ok = true;
	free(text);
	return ok;
}

/* The two characters \ n meant a line break in the original tool's files. */
static void
unescape_newlines(struct pr_buf *b)
{
	size_t i, j;

	for (i = j = 0; i < b->len; i++, j++) {
		if (b->data[i] == '\\' && i + 1 < b->len && b->data[i + 1] == 'n') {
			b->data[j] = '\n';
			i++;
		} else {
			b->data[j] = b->data[i];
		}
	}
	b->len = j;
	b->data[j] = '\0';
}

/* Blocks [from, to) as one prompt: lines joined by one newline, blocks by
 * a blank line. */
static char *
prompt_text(const struct opts *o, const struct block *from, const struct block *to)
{
	struct pr_buf b = PR_BUF_INIT;
	const struct block *bl;
	size_t i;

	pr_buf_add(&b, "", 0);   /* so that stealing never gives NULL */
	for (bl = from; bl < to; bl++) {
		if (bl != from)
			pr_buf_adds(&b, "\n\n");
		for (i = 0; i < bl->n; i++) {
			if (i)
				pr_buf_addc(&b, '\n');
			pr_buf_add(&b, bl->l[i].s, bl->l[i].len);
		}
	}
	if (!o->literal)
		unescape_newlines(&b);
	return pr_buf_steal(&b);
}

static cJSON *
make_record(const struct opts *o, const struct item *it, const struct text *t,
    uint64_t frames)
{
	const struct block *neg = &t->blocks[t->nblocks - 1];
	const struct line *src = t->blocks[0].l;
	size_t len = src->len;
	const char *s = skip_blanks(src->s, &len);
	char *input = pr_xstrndup(s, len), *positive, *negative;
	cJSON *rec;

	positive = prompt_text(o, &t->blocks[2], neg);
	if (neg->n == 1 && neg->l->len == 1 && neg->l->s[0] == '-')
		negative = pr_xstrdup("");
	else
		negative = prompt_text(o, neg, neg + 1);
	rec = pr_json_object();
	pr_json_set_string(rec, "video", it->video);
	pr_json_set_string(rec, "input_video", input);
	pr_json_set(rec, "total_frames", pr_json_uint(frames));
	pr_json_set_string(rec, "positive", positive);
	pr_json_set_string(rec, "negative", negative);
	pr_json_set_string(rec, "source", it->path);
	free(input);
	free(positive);
	free(negative);
	return rec;
}

/* Checks the blocks in file order, so the first thing wrong is named. */
static bool
check_blocks(struct item *it, const struct opts *o, const struct text *t,
    uint64_t *frames)
{
	if (t->nblocks == 0) {
		bad(it, 1, "empty file (only blank lines)");
		return false;
	}
	if (!check_missing(it, t, 2))
		return false;
	if (t->blocks[0].n > 1) {
		bad(it, t->blocks[0].l[1].no, "the source video (block 1) must be a "
		    "single line followed by a blank line");
		return false;
	}
	if (t->blocks[1].n > 1) {
		bad(it, t->blocks[1].l[1].no, "the total frames (block 2) must be a "
		    "single line followed by a blank line");
		return false;
	}
	return parse_frames(it, o, t->blocks[1].l, frames) &&
	    check_missing(it, t, 3) && check_missing(it, t, 4);
}

static void
parse_text(const struct opts *o, struct item *it, const char *s, size_t len)
{
	struct text t;
	uint64_t frames;

	if (len >= 3 && memcmp(s, "\xef\xbb\xbf", 3) == 0) {
		s += 3;
		len -= 3;
	}
	if (!check_bytes(it, s, len))
		return;
	split(s, len, &t);
	if (check_blocks(it, o, &t, &frames))
		it->rec = make_record(o, it, &t, frames);
	free(t.lines);
	free(t.blocks);
}

static void
parse_item(const struct opts *o, struct item *it)
{
	struct pr_buf b = PR_BUF_INIT;
	struct stat st;
	char why[128];

	/* stat first: opening a FIFO would wait for a writer. */
	if (stat(it->path, &st) < 0) {
		bad(it, 0, "%s", strerror(errno));
		return;
	}
	if (!S_ISREG(st.st_mode)) {
		bad(it, 0, "not a regular file");
		return;
	}
	if (pr_file_read(it->path, MAX_FILE, &b) < 0) {
		if (errno == EFBIG)
			bad(it, 1, "larger than 1 MiB: not a prompt file");
		else
			bad(it, 0, "%s", strerror(errno));
	} else if (pr_video_name_check(it->video, why, sizeof why) < 0) {
		bad(it, 1, "the video name \"%s\" %s; rename the file (video names use "
		    "letters, digits, '.', '_' and '-')", it->video, why);
	} else {
		parse_text(o, it, b.data, b.len);
	}
	pr_buf_free(&b);
}

/* Two files cannot make the same video: both are refused, and both named. */
static void
check_duplicates(struct run *r)
{
	size_t i, j;
	char why[128];

	for (i = 1; i < r->n; i++) {
		if (!r->v[i].video ||
		    pr_video_name_check(r->v[i].video, why, sizeof why) < 0)
			continue;
		for (j = 0; j < i; j++) {
			if (!r->v[j].video || strcmp(r->v[i].video, r->v[j].video) != 0)
				continue;
			bad(&r->v[i], 1, "video \"%s\" again: %s makes it too; rename one "
			    "of the files", r->v[i].video, r->v[j].path);
			r->v[j].bad = true;
			break;
		}
	}
}

static void
free_run(struct run *r)
{
	size_t i;

	for (i = 0; i < r->n; i++) {
		free(r->v[i].path);
		free(r->v[i].video);
		cJSON_Delete(r->v[i].rec);
	}
	free(r->v);
}

/* All or nothing, unless --keep-going: then the good records and status 1. */
static int
emit(const struct opts *o, struct run *r)
{
	struct pr_buf out = PR_BUF_INIT;
	size_t i, nbad = 0;

	for (i = 0; i < r->n; i++)
		nbad += r->v[i].bad;
	for (i = 0; i < r->n && (!nbad || o->keep_going); i++)
		if (!r->v[i].bad)
			pr_record_append(&out, r->v[i].rec);
	/* Freed before writing: a failed write ends the program. */
	free_run(r);
	pr_stdout_write(&out);
	pr_buf_free(&out);
	pr_stdout_close();
	if (nbad)
		return o->keep_going ? PR_EXIT_FAILED : PR_EXIT_USAGE;
	return PR_EXIT_OK;
}

int
main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "keep-going", no_argument, NULL, 'k' },
		{ "literal", no_argument, NULL, 'l' },
		{ "max-frames", required_argument, NULL, 'm' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	struct opts o = { false, false, DEFAULT_MAX_FRAMES };
	struct run r = { 0 };
	size_t i;
	int c;

	pr_init(argv[0]);
	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (c) {
		case 'k': o.keep_going = true; break;
		case 'l': o.literal = true; break;
		case 'm':
			if (pr_parse_u64(optarg, &o.max_frames) < 0 || o.max_frames == 0)
				pr_usage_error(usage, "--max-frames needs a whole number from 1, "
				    "not \"%s\"", optarg);
			break;
		case 'h': pr_help_exit(usage, help);
		case 'V': pr_version_exit();
		default: pr_usage_error(usage, NULL);
		}
	}
	if (optind == argc)
		pr_usage_error(usage, "no prompt files or directories given");

	for (i = (size_t)optind; i < (size_t)argc; i++)
		add_arg(&r, argv[i]);
	if (r.n == 0) {
		free_run(&r);
		pr_usage_error(usage, "no prompt files: the directories given have no *.txt files");
	}
	for (i = 0; i < r.n; i++)
		if (!r.v[i].bad)
			parse_item(&o, &r.v[i]);
	check_duplicates(&r);
	return emit(&o, &r);
}
