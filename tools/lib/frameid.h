/*
 * Identity-coded frames: a frame whose pixels spell a number, so a test
 * (or pr-combine on the stand-in) can read back which source frame every
 * frame of a video is, after h264 encoding, concatenation, trimming and
 * scaling. The picture is a grid of 8 x 6 cells, black (0) or white (255)
 * in a gray image: rows 0-2 hold the 24 bits of the number, most
 * significant first, row by row; rows 3-5 hold the same bits inverted as
 * a check. Cells are sampled in their middle, so any size from 16 x 12 up
 * works, and the cells need not be square.
 */
#ifndef PR_FRAMEID_H
#define PR_FRAMEID_H

#include <stdint.h>

#define PR_FRAMEID_BITS 24
#define PR_FRAMEID_MAX ((UINT32_C(1) << PR_FRAMEID_BITS) - 1)
/* What pr_frameid_read() gives for a frame that carries no number. */
#define PR_FRAMEID_NONE UINT32_MAX

/* Smallest picture the code fits in. */
#define PR_FRAMEID_MIN_W 16
#define PR_FRAMEID_MIN_H 12

/* Draws code (<= PR_FRAMEID_MAX) into a w x h 8-bit gray picture; any
 * larger value (PR_FRAMEID_NONE) draws a plain picture with no code. */
void pr_frameid_draw(uint8_t *gray, int w, int h, uint32_t code);

/* The number a w x h gray picture carries, or PR_FRAMEID_NONE when its
 * cells are not clearly black or white or the check row disagrees. */
uint32_t pr_frameid_read(const uint8_t *gray, int w, int h);

#endif
