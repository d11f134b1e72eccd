/*
 * --archive: one tar or zip of the finished files, stored uncompressed
 * (videos do not compress). The archive is uploaded like any file and a
 * rerun must find it unchanged, so its bytes depend only on the files:
 * their names, contents and modification times (seconds). Nothing else
 * goes in: no "now", no owner, no umask, no time zone, no directory
 * entries (extractors make the folders a path implies).
 *
 * tar: POSIX ustar, mode 0644, uid/gid 0, empty owner names, padded to
 * 10240 bytes as GNU tar does. A name that fits neither the 100-byte name
 * field nor the 155/100 prefix split, a size of 8 GiB or more and an
 * mtime outside 0..8^11-1 go in a pax 'x' header (path=, size=, mtime=).
 *
 * zip: stored, sizes known before each entry, so no data descriptors;
 * the CRC-32 is computed while copying and written back into the local
 * header, so each file is read once. DOS times are UTC, and an extended
 * timestamp (0x5455) gives unzippers the real mtime. ZIP64 fields only
 * when a size or offset reaches 0xFFFFFFFF or there are 0xFFFF entries
 * or more; otherwise a plain zip.
 *
 * Files are streamed through one 64 KiB buffer, whatever their size. A
 * file that is missing, not regular, or changes while it is read fails
 * the whole archive, and the temporary file is removed: never a partial
 * or inconsistent archive.
 */
/* Videos pass 2 GiB; off_t must hold that on 32-bit systems too. */
#define _FILE_OFFSET_BITS 64
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "upload.h"

#define BUFSZ (64 * 1024)
#define TAR_BLOCK 512
/* GNU tar's default record: 20 blocks. */
#define TAR_RECORD (20 * TAR_BLOCK)
/* 11 octal digits and a NUL. */
#define TAR_MAX_OCTAL 077777777777LL
#define ZIP_LIM 0xFFFFFFFFu

static const unsigned char zeros[TAR_BLOCK];

/* The archive being written: every write goes through put(). */
struct out {
	int fd;
	const char *name;         /* the final path, for messages */
	uint64_t off;
	char *err;
	size_t len;
};

/* One input file, open for the time it is copied. */
struct member {
	const char *name;         /* as given: the name in the archive */
	char *path;               /* dir/name */
	int fd;
	struct stat st;
};

struct crc32 {
	uint32_t t[8][256];
	uint32_t v;
};

static int
put(struct out *w, const void *p, size_t n)
{
	if (pr_write_full(w->fd, p, n) < 0) {
		snprintf(w->err, w->len, "%s: %s", w->name, strerror(errno));
		return -1;
	}
	w->off += n;
	return 0;
}

static int
put_zeros(struct out *w, size_t n)
{
	size_t k;

	for (; n; n -= k) {
		k = n < sizeof zeros ? n : sizeof zeros;
		if (put(w, zeros, k) < 0)
			return -1;
	}
	return 0;
}

/* IEEE 802.3 CRC-32, eight bytes at a step: multi-GB files are hashed as
 * they are copied, and the bytewise loop would be the slowest part. */
static void
crc_init(struct crc32 *c)
{
	uint32_t i, v;
	int k;

	for (i = 0; i < 256; i++) {
		v = i;
		for (k = 0; k < 8; k++)
			v = v & 1 ? 0xEDB88320u ^ (v >> 1) : v >> 1;
		c->t[0][i] = v;
	}
	for (i = 0; i < 256; i++)
		for (k = 1; k < 8; k++)
			c->t[k][i] = (c->t[k - 1][i] >> 8) ^ c->t[0][c->t[k - 1][i] & 0xff];
	c->v = 0;
}

static uint32_t
le32_at(const unsigned char *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	    (uint32_t)p[3] << 24;
}

static void
crc_add(struct crc32 *c, const unsigned char *p, size_t n)
{
	uint32_t v = ~c->v, a, b;

	for (; n >= 8; p += 8, n -= 8) {
		a = v ^ le32_at(p);
		b = le32_at(p + 4);
		v = c->t[7][a & 0xff] ^ c->t[6][(a >> 8) & 0xff] ^
		    c->t[5][(a >> 16) & 0xff] ^ c->t[4][a >> 24] ^
		    c->t[3][b & 0xff] ^ c->t[2][(b >> 8) & 0xff] ^
		    c->t[1][(b >> 16) & 0xff] ^ c->t[0][b >> 24];
	}
	while (n--)
		v = (v >> 8) ^ c->t[0][(v ^ *p++) & 0xff];
	c->v = ~v;
}

/* The caller checks too; here it keeps a bad list from writing outside
 * the extraction folder. */
static bool
safe_member(const char *s)
{
	size_t k;

	if (!*s || *s == '/')
		return false;
	for (;;) {
		k = strcspn(s, "/");
		if (k == 2 && s[0] == '.' && s[1] == '.')
			return false;
		if (!s[k])
			return true;
		s += k + 1;
	}
}

static int
member_open(struct member *m, const char *dir, const char *name, char *err, size_t len)
{
	size_t d = dir ? strlen(dir) : 0;

	m->name = name;
	m->fd = -1;
	if (d == 0)
		m->path = pr_xstrdup(name);
	else
		m->path = pr_xasprintf("%s%s%s", dir, dir[d - 1] == '/' ? "" : "/", name);
	if ((m->fd = open(m->path, O_RDONLY | O_CLOEXEC)) < 0 || fstat(m->fd, &m->st) < 0) {
		snprintf(err, len, "%s: %s", m->path, strerror(errno));
		return -1;
	}
	if (!S_ISREG(m->st.st_mode)) {
		snprintf(err, len, "%s: not a regular file", m->path);
		return -1;
	}
	return 0;
}

static void
member_close(struct member *m)
{
	if (m->fd >= 0)
		close(m->fd);
	m->fd = -1;
	free(m->path);
	m->path = NULL;
}

/* Copies exactly the size the header announced. A file that grew, shrank
 * or was rewritten meanwhile would make the header lie (or the CRC), so
 * it fails instead. */
static int
member_copy(struct out *w, struct member *m, unsigned char *buf, struct crc32 *crc)
{
	uint64_t left = (uint64_t)m->st.st_size;
	struct stat after;
	size_t want;
	ssize_t got;

	while (left) {
		want = left < BUFSZ ? (size_t)left : BUFSZ;
		if ((got = pr_read_full(m->fd, buf, want)) < 0) {
			snprintf(w->err, w->len, "%s: %s", m->path, strerror(errno));
			return -1;
		}
		if ((size_t)got < want)
			goto changed;
		if (crc)
			crc_add(crc, buf, want);
		if (put(w, buf, want) < 0)
			return -1;
		left -= want;
	}
	if ((got = pr_read_full(m->fd, buf, 1)) < 0) {
		snprintf(w->err, w->len, "%s: %s", m->path, strerror(errno));
		return -1;
	}
	if (got > 0)
		goto changed;
	if (fstat(m->fd, &after) < 0) {
		snprintf(w->err, w->len, "%s: %s", m->path, strerror(errno));
		return -1;
	}
	if (after.st_size != m->st.st_size || after.st_mtim.tv_sec != m->st.st_mtim.tv_sec ||
	    after.st_mtim.tv_nsec != m->st.st_mtim.tv_nsec)
		goto changed;
	return 0;
changed:
	snprintf(w->err, w->len, "%s: changed while being archived", m->path);
	return -1;
}

/* The longest prefix of s, at most max bytes, that does not cut a UTF-8
 * sequence: a truncated name is only for readers without pax, but it
 * should still be text. */
static size_t
utf8_cut(const char *s, size_t n, size_t max)
{
	if (n <= max)
		return n;
	while (max > 0 && ((unsigned char)s[max] & 0xC0) == 0x80)
		max--;
	return max;
}

/* ---- tar ---- */

/* width-1 octal digits and a NUL, as ustar numeric fields are. */
static void
tar_octal(char *f, size_t width, uint64_t v)
{
	size_t i = width - 1;

	f[i] = '\0';
	while (i--) {
		f[i] = (char)('0' + (v & 7));
		v >>= 3;
	}
}

static void
tar_header(char *h, const char *name, size_t nlen, const char *prefix, size_t plen,
    char type, uint64_t size, int64_t mtime)
{
	unsigned sum = 0;
	size_t i;

	memset(h, 0, TAR_BLOCK);
	memcpy(h, name, nlen);
	tar_octal(h + 100, 8, 0644);
	tar_octal(h + 108, 8, 0);
	tar_octal(h + 116, 8, 0);
	tar_octal(h + 124, 12, size <= TAR_MAX_OCTAL ? size : 0);
	tar_octal(h + 136, 12, mtime >= 0 && mtime <= TAR_MAX_OCTAL ? (uint64_t)mtime : 0);
	h[156] = type;
	memcpy(h + 257, "ustar", 6);
	memcpy(h + 263, "00", 2);
	tar_octal(h + 329, 8, 0);
	tar_octal(h + 337, 8, 0);
	memcpy(h + 345, prefix, plen);
	memset(h + 148, ' ', 8);
	for (i = 0; i < TAR_BLOCK; i++)
		sum += (unsigned char)h[i];
	/* GNU's layout: six digits, NUL, space. */
	tar_octal(h + 148, 7, sum);
	h[155] = ' ';
}

/* "LEN key=value\n", where LEN counts its own digits. */
static void
pax_record(struct pr_buf *b, const char *key, const char *value)
{
	size_t base = strlen(key) + strlen(value) + 3, n = base, digits;
	char tmp[24];

	for (;;) {
		digits = (size_t)snprintf(tmp, sizeof tmp, "%zu", n);
		if (base + digits == n)
			break;
		n = base + digits;
	}
	pr_buf_printf(b, "%zu %s=%s\n", n, key, value);
}

static int
tar_member(struct out *w, struct member *m, unsigned char *buf)
{
	const char *name = m->name, *prefix = "", *base;
	size_t nlen = strlen(name), plen = 0, i, blen;
	uint64_t size = (uint64_t)m->st.st_size;
	int64_t mtime = (int64_t)m->st.st_mtime;
	struct pr_buf pax = PR_BUF_INIT;
	char h[TAR_BLOCK], num[32];
	int rc = -1;

	if (nlen > 100) {
		/* The leftmost slash leaving at most 100 bytes after it gives the
		 * shortest prefix: if that one is over 155, none fits. */
		for (i = 0; i < nlen && (name[i] != '/' || nlen - i - 1 > 100); i++)
			;
		if (i < nlen && i <= 155) {
			prefix = name;
			plen = i;
			name += i + 1;
			nlen -= i + 1;
		} else {
			/* No hdrcharset=BINARY for a name that is not UTF-8: GNU
			 * tar 1.34 warns about the keyword, and keeps the bytes
			 * as they are without it. */
			pax_record(&pax, "path", name);
			nlen = utf8_cut(name, nlen, 100);
		}
	}
	if (size > TAR_MAX_OCTAL) {
		snprintf(num, sizeof num, "%llu", (unsigned long long)size);
		pax_record(&pax, "size", num);
	}
	if (mtime < 0 || mtime > TAR_MAX_OCTAL) {
		snprintf(num, sizeof num, "%lld", (long long)mtime);
		pax_record(&pax, "mtime", num);
	}
	if (pax.len) {
		char pname[101];

		base = strrchr(m->name, '/');
		base = base ? base + 1 : m->name;
		blen = utf8_cut(base, strlen(base), 100 - strlen("PaxHeaders/"));
		snprintf(pname, sizeof pname, "PaxHeaders/%.*s", (int)blen, base);
		tar_header(h, pname, strlen(pname), "", 0, 'x', pax.len, mtime);
		if (put(w, h, sizeof h) < 0 || put(w, pax.data, pax.len) < 0 ||
		    put_zeros(w, (TAR_BLOCK - pax.len % TAR_BLOCK) % TAR_BLOCK) < 0)
			goto out;
	}
	tar_header(h, name, nlen, prefix, plen, '0', size, mtime);
	if (put(w, h, sizeof h) < 0 || member_copy(w, m, buf, NULL) < 0 ||
	    put_zeros(w, (TAR_BLOCK - size % TAR_BLOCK) % TAR_BLOCK) < 0)
		goto out;
	rc = 0;
out:
	pr_buf_free(&pax);
	return rc;
}

static int
tar_write(struct out *w, const char *dir, char *const *files, size_t n, unsigned char *buf)
{
	struct member m;
	size_t i;
	int rc;

	for (i = 0; i < n; i++) {
		rc = member_open(&m, dir, files[i], w->err, w->len);
		if (rc == 0)
			rc = tar_member(w, &m, buf);
		member_close(&m);
		if (rc < 0)
			return -1;
	}
	/* Two zero blocks end the archive; then fill the last record. */
	if (put_zeros(w, 2 * TAR_BLOCK) < 0)
		return -1;
	return put_zeros(w, (TAR_RECORD - w->off % TAR_RECORD) % TAR_RECORD);
}

/* ---- zip ---- */

struct zentry {
	const char *name;
	uint64_t size;
	uint64_t off;             /* of its local header */
	int64_t mtime;
	uint32_t crc;
	uint16_t flags;
	uint16_t dtime, ddate;
};

static unsigned char *
le16(unsigned char *p, uint32_t v)
{
	p[0] = (unsigned char)v;
	p[1] = (unsigned char)(v >> 8);
	return p + 2;
}

static unsigned char *
le32(unsigned char *p, uint32_t v)
{
	p = le16(p, v & 0xffff);
	return le16(p, v >> 16);
}

static unsigned char *
le64(unsigned char *p, uint64_t v)
{
	p = le32(p, (uint32_t)v);
	return le32(p, (uint32_t)(v >> 32));
}

/* UTC, so the bytes do not depend on the machine's time zone; clamped to
 * what DOS dates can say (1980-2107). */
static void
dos_time(int64_t t, uint16_t *dtime, uint16_t *ddate)
{
	time_t tt = (time_t)t;
	struct tm tm;

	*dtime = 0;
	*ddate = 1 << 5 | 1;
	if (t < 315532800 || !gmtime_r(&tt, &tm))
		return;
	if (tm.tm_year + 1900 > 2107) {
		*dtime = 23 << 11 | 59 << 5 | 29;
		*ddate = (uint16_t)(127 << 9 | 12 << 5 | 31);
		return;
	}
	*dtime = (uint16_t)(tm.tm_hour << 11 | tm.tm_min << 5 | tm.tm_sec / 2);
	*ddate = (uint16_t)((tm.tm_year - 80) << 9 | (tm.tm_mon + 1) << 5 | tm.tm_mday);
}

/* The extended timestamp holds a signed 32-bit time; outside that the
 * DOS time alone stands. */
static bool
has_ut(const struct zentry *e)
{
	return e->mtime >= 0 && e->mtime <= INT32_MAX;
}

static unsigned char *
put_ut(unsigned char *p, const struct zentry *e)
{
	p = le16(p, 0x5455);
	p = le16(p, 5);
	*p++ = 1;                 /* modification time present */
	return le32(p, (uint32_t)e->mtime);
}

static uint32_t
zip_version(const struct zentry *e)
{
	return e->size >= ZIP_LIM || e->off >= ZIP_LIM ? 45 : 10;
}

static bool
non_ascii(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s >= 0x80)
			return true;
	return false;
}

static int
zip_member(struct out *w, struct member *m, struct zentry *e, struct crc32 *crc,
    unsigned char *buf)
{
	unsigned char h[30 + 20 + 9], *p = h;
	size_t nlen = strlen(m->name), hlen;
	bool big;
	ssize_t r;

	if (nlen > 0xFFFF) {
		snprintf(w->err, w->len, "%s: name too long for a zip", m->path);
		return -1;
	}
	e->name = m->name;
	e->size = (uint64_t)m->st.st_size;
	e->off = w->off;
	e->mtime = (int64_t)m->st.st_mtime;
	/* Bit 11 promises UTF-8; a name that is not stays CP437 to readers. */
	e->flags = non_ascii(m->name) && pr_utf8_check(m->name, nlen) == nlen ? 1 << 11 : 0;
	dos_time(e->mtime, &e->dtime, &e->ddate);
	big = e->size >= ZIP_LIM;

	p = le32(p, 0x04034b50);
	p = le16(p, zip_version(e));
	p = le16(p, e->flags);
	p = le16(p, 0);           /* stored */
	p = le16(p, e->dtime);
	p = le16(p, e->ddate);
	p = le32(p, 0);           /* CRC-32, filled in after the data */
	p = le32(p, big ? ZIP_LIM : (uint32_t)e->size);
	p = le32(p, big ? ZIP_LIM : (uint32_t)e->size);
	p = le16(p, (uint32_t)nlen);
	p = le16(p, (big ? 20 : 0) + (has_ut(e) ? 9 : 0));
	hlen = (size_t)(p - h);
	if (put(w, h, hlen) < 0 || put(w, m->name, nlen) < 0)
		return -1;
	p = h;
	if (big) {
		/* In a local header both sizes must be there. */
		p = le16(p, 0x0001);
		p = le16(p, 16);
		p = le64(p, e->size);
		p = le64(p, e->size);
	}
	if (has_ut(e))
		p = put_ut(p, e);
	if (put(w, h, (size_t)(p - h)) < 0)
		return -1;

	crc->v = 0;
	if (member_copy(w, m, buf, crc) < 0)
		return -1;
	e->crc = crc->v;
	le32(h, e->crc);
	do
		r = pwrite(w->fd, h, 4, (off_t)(e->off + 14));
	while (r < 0 && errno == EINTR);
	if (r != 4) {
		snprintf(w->err, w->len, "%s: %s", w->name, r < 0 ? strerror(errno) : "short write");
		return -1;
	}
	return 0;
}

static int
zip_central(struct out *w, const struct zentry *e)
{
	unsigned char h[46 + 28 + 9], *p = h, *x;
	bool big = e->size >= ZIP_LIM, far = e->off >= ZIP_LIM;
	size_t nlen = strlen(e->name), xlen;

	/* The extras first, to know their length. */
	x = h + 46;
	if (big || far) {
		x = le16(x, 0x0001);
		x = le16(x, (big ? 16 : 0) + (far ? 8 : 0));
		if (big) {
			x = le64(x, e->size);
			x = le64(x, e->size);
		}
		if (far)
			x = le64(x, e->off);
	}
	if (has_ut(e))
		x = put_ut(x, e);
	xlen = (size_t)(x - (h + 46));

	p = le32(p, 0x02014b50);
	p = le16(p, 3 << 8 | 45);  /* made on Unix, so the mode below counts */
	p = le16(p, zip_version(e));
	p = le16(p, e->flags);
	p = le16(p, 0);
	p = le16(p, e->dtime);
	p = le16(p, e->ddate);
	p = le32(p, e->crc);
	p = le32(p, big ? ZIP_LIM : (uint32_t)e->size);
	p = le32(p, big ? ZIP_LIM : (uint32_t)e->size);
	p = le16(p, (uint32_t)nlen);
	p = le16(p, (uint32_t)xlen);
	p = le16(p, 0);           /* comment */
	p = le16(p, 0);           /* disk */
	p = le16(p, 0);           /* internal attributes: binary */
	p = le32(p, (uint32_t)(S_IFREG | 0644) << 16);
	le32(p, far ? ZIP_LIM : (uint32_t)e->off);
	return put(w, h, 46) < 0 || put(w, e->name, nlen) < 0 || put(w, h + 46, xlen) < 0 ? -1 : 0;
}

static int
zip_end(struct out *w, size_t n, uint64_t cd_off)
{
	unsigned char h[56 + 20 + 22], *p = h;
	uint64_t cd_size = w->off - cd_off, z64_off = w->off;
	bool many = n >= 0xFFFF, z64 = many || cd_off >= ZIP_LIM || cd_size >= ZIP_LIM;

	if (z64) {
		p = le32(p, 0x06064b50);
		p = le64(p, 44);
		p = le16(p, 3 << 8 | 45);
		p = le16(p, 45);
		p = le32(p, 0);
		p = le32(p, 0);
		p = le64(p, n);
		p = le64(p, n);
		p = le64(p, cd_size);
		p = le64(p, cd_off);
		p = le32(p, 0x07064b50);
		p = le32(p, 0);
		p = le64(p, z64_off);
		p = le32(p, 1);
	}
	/* Only the fields that overflow say "see ZIP64". */
	p = le32(p, 0x06054b50);
	p = le16(p, 0);
	p = le16(p, 0);
	p = le16(p, many ? 0xFFFF : (uint32_t)n);
	p = le16(p, many ? 0xFFFF : (uint32_t)n);
	p = le32(p, cd_size >= ZIP_LIM ? ZIP_LIM : (uint32_t)cd_size);
	p = le32(p, cd_off >= ZIP_LIM ? ZIP_LIM : (uint32_t)cd_off);
	p = le16(p, 0);
	return put(w, h, (size_t)(p - h));
}

static int
zip_write(struct out *w, const char *dir, char *const *files, size_t n, unsigned char *buf)
{
	struct zentry *e = pr_xcalloc(n ? n : 1, sizeof *e);
	struct crc32 *crc = pr_xmalloc(sizeof *crc);
	struct member m;
	uint64_t cd_off;
	size_t i;
	int rc = 0;

	crc_init(crc);
	for (i = 0; i < n && rc == 0; i++) {
		rc = member_open(&m, dir, files[i], w->err, w->len);
		if (rc == 0)
			rc = zip_member(w, &m, &e[i], crc, buf);
		member_close(&m);
	}
	cd_off = w->off;
	for (i = 0; i < n && rc == 0; i++)
		rc = zip_central(w, &e[i]);
	if (rc == 0)
		rc = zip_end(w, n, cd_off);
	free(crc);
	free(e);
	return rc;
}

/* ---- the archive ---- */

static bool
ends_with(const char *s, const char *suffix)
{
	size_t a = strlen(s), b = strlen(suffix);

	return a > b && strcmp(s + a - b, suffix) == 0;
}

int
archive_write(const char *path, const char *dir, char *const *files, size_t n,
    char *err, size_t len)
{
	const char *slash = strrchr(path, '/');
	struct out w = { -1, path, 0, err, len };
	bool zip = ends_with(path, ".zip");
	unsigned char *buf;
	char *tmp, *parent;
	mode_t mask;
	size_t i;
	int rc, dfd;

	if (!zip && !ends_with(path, ".tar")) {
		snprintf(err, len, "%s: expected a name ending in .tar or .zip", path);
		return -1;
	}
	for (i = 0; i < n; i++)
		if (!safe_member(files[i])) {
			snprintf(err, len, "%s: not a relative path inside the folder", files[i]);
			return -1;
		}
	parent = slash ? pr_xstrndup(path, (size_t)(slash - path)) : pr_xstrdup(".");
	if (slash && slash != path && pr_mkdirs(parent) < 0) {
		snprintf(err, len, "%s: %s", parent, strerror(errno));
		free(parent);
		return -1;
	}
	tmp = pr_xasprintf("%s.tmp.XXXXXX", path);
	if ((w.fd = mkstemp(tmp)) < 0) {
		snprintf(err, len, "%s: %s", path, strerror(errno));
		free(tmp);
		free(parent);
		return -1;
	}
	/* mkstemp makes 0600; an archive to share gets the usual mode. */
	mask = umask(0);
	umask(mask);
	if (fchmod(w.fd, 0666 & ~mask) < 0) {
		snprintf(err, len, "%s: %s", path, strerror(errno));
		rc = -1;
	} else {
		buf = pr_xmalloc(BUFSZ);
		rc = zip ? zip_write(&w, dir, files, n, buf) : tar_write(&w, dir, files, n, buf);
		free(buf);
	}
	if (rc == 0 && fsync(w.fd) < 0) {
		snprintf(err, len, "%s: %s", path, strerror(errno));
		rc = -1;
	}
	/* close() can be where a network file system reports the lost write. */
	if (close(w.fd) < 0 && rc == 0) {
		snprintf(err, len, "%s: %s", path, strerror(errno));
		rc = -1;
	}
	if (rc == 0 && rename(tmp, path) < 0) {
		snprintf(err, len, "%s: %s", path, strerror(errno));
		rc = -1;
	}
	if (rc < 0)
		unlink(tmp);
	/* Makes the rename durable; some file systems cannot fsync a folder,
	 * and the archive is whole either way, so this is best effort. */
	if (rc == 0 && (dfd = open(parent, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) >= 0) {
		fsync(dfd);
		close(dfd);
	}
	free(tmp);
	free(parent);
	return rc;
}
