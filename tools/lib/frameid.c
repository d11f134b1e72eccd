/*
 * The 8 x 6 cell frame code of frameid.h. Cell (row, col) spans
 * x in [floor(col*w/8), floor((col+1)*w/8)) and y in [floor(row*h/6),
 * floor((row+1)*h/6)), so the grid covers the whole picture at any size.
 */
#include <stddef.h>

#include <string.h>

#include "frameid.h"

#define COLS 8
#define ROWS 6

/*
 * A cell is read as black or white only when its average is well clear of
 * mid-gray. Encoding, scaling and yuv420p round trips move the coded 0/255
 * by a few tens at most; pictures that carry no code (a real video, a
 * solid colour, a test pattern) have cells in between, and reading those
 * as NONE beats reading a random number.
 */
#define BLACK_MAX 80
#define WHITE_MIN 175

static int
edge(int i, int n, int parts)
{
	return (int)((long)i * n / parts);
}

void
pr_frameid_draw(uint8_t *gray, int w, int h, uint32_t code)
{
	int row, col, x, y, x0, x1, y0, y1, bit;
	uint8_t v;

	/* A frame that carries no number is plain mid-gray, which reads back
	 * as PR_FRAMEID_NONE. */
	if (code > PR_FRAMEID_MAX) {
		memset(gray, 128, (size_t)w * (size_t)h);
		return;
	}
	for (row = 0; row < ROWS; row++) {
		y0 = edge(row, h, ROWS);
		y1 = edge(row + 1, h, ROWS);
		for (col = 0; col < COLS; col++) {
			x0 = edge(col, w, COLS);
			x1 = edge(col + 1, w, COLS);
			/* Rows 0-2: bit 23 first; rows 3-5: the same bits inverted. */
			bit = (row % 3) * COLS + col;
			v = (code >> (PR_FRAMEID_BITS - 1 - bit)) & 1 ? 255 : 0;
			if (row >= 3)
				v = (uint8_t)(255 - v);
			for (y = y0; y < y1; y++)
				for (x = x0; x < x1; x++)
					gray[(size_t)y * (size_t)w + (size_t)x] = v;
		}
	}
}

/* The cell's value: 0 black, 1 white, -1 neither. Only the middle half of
 * the cell counts, away from the ringing and chroma bleed at its edges. */
static int
cell(const uint8_t *gray, int w, int h, int row, int col)
{
	int x0 = edge(col, w, COLS), x1 = edge(col + 1, w, COLS);
	int y0 = edge(row, h, ROWS), y1 = edge(row + 1, h, ROWS);
	int mx = (x1 - x0) / 4, my = (y1 - y0) / 4, x, y;
	unsigned long sum = 0, count;

	x0 += mx;
	x1 -= mx;
	y0 += my;
	y1 -= my;
	if (x1 <= x0)
		x1 = x0 + 1;
	if (y1 <= y0)
		y1 = y0 + 1;
	for (y = y0; y < y1; y++)
		for (x = x0; x < x1; x++)
			sum += gray[(size_t)y * (size_t)w + (size_t)x];
	count = (unsigned long)(x1 - x0) * (unsigned long)(y1 - y0);
	/* avg < 80 and avg > 175, in integers: no rounding at the edges. */
	if (sum < BLACK_MAX * count)
		return 0;
	if (sum > WHITE_MIN * count)
		return 1;
	return -1;
}

uint32_t
pr_frameid_read(const uint8_t *gray, int w, int h)
{
	uint32_t code = 0;
	int bit, d, c;

	if (w < PR_FRAMEID_MIN_W || h < PR_FRAMEID_MIN_H)
		return PR_FRAMEID_NONE;
	for (bit = 0; bit < PR_FRAMEID_BITS; bit++) {
		d = cell(gray, w, h, bit / COLS, bit % COLS);
		c = cell(gray, w, h, 3 + bit / COLS, bit % COLS);
		if (d < 0 || c < 0 || d == c)
			return PR_FRAMEID_NONE;
		code = code << 1 | (uint32_t)d;
	}
	return code;
}
