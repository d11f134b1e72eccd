/*
 * Video and image files through the ffmpeg and ffprobe programs: writing
 * identity-coded frames the way ComfyUI's VideoHelperSuite writes video,
 * reading the codes back, and probing.
 */
#ifndef PR_VIDEO_H
#define PR_VIDEO_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"

struct pr_video_info {
	char codec[32];       /* "h264", "png", ... */
	char profile[48];     /* "High", ... ("" when ffprobe gives none) */
	char pix_fmt[32];     /* "yuv420p", ... */
	int width, height;
	int fps_num, fps_den; /* r_frame_rate */
	int tb_num, tb_den;   /* time_base */
	char sar[24];         /* sample_aspect_ratio, "" when unset */
	/* Colour tags ("tv", "bt709", ...; "" when unknown). */
	char color_range[24], color_space[24], color_primaries[24], color_transfer[24];
	/* SHA-256 of the codec's global headers (for h264 in MP4 the SPS and
	 * PPS): streams may be joined without re-encoding only when these
	 * agree. "" when the stream has none. */
	char headers[65];
	long frames;          /* decoded frames (ffprobe -count_frames) */
};

/* Error messages go to err (one line, naming the file and what ffmpeg
 * said); functions return 0 or -1. */

/*
 * Writes n frames, frame k drawn with pr_frameid_draw(codes[k]), as an
 * MP4 at path (a code of PR_FRAMEID_NONE draws a frame with no code)
 * with the settings VideoHelperSuite's "video/h264-mp4" uses:
 * libx264 (default preset, so with B-frames), yuv420p, -crf crf, bt709
 * tagging. fps is a rate as ffmpeg reads it ("30", "30000/1001"). w and h
 * must be even. Written to a temporary file and renamed, so a reader
 * never sees half a video.
 */
int pr_video_write_codes(const char *path, const uint32_t *codes, size_t n,
    int w, int h, const char *fps, int crf, char *err, size_t errlen);

/* One frame as a gray PNG, also through a temporary file. */
int pr_image_write_code(const char *path, uint32_t code, int w, int h,
    char *err, size_t errlen);

/*
 * Decodes every frame of a video or image file (all frames, in order,
 * with -fps_mode passthrough so none is dropped or duplicated), scaled to
 * w x h when both are > 0, and reads each frame's code. *codes (the
 * caller frees it) gets one entry per frame: the code or PR_FRAMEID_NONE.
 */
int pr_video_read_codes(const char *path, int w, int h, uint32_t **codes,
    size_t *n, char *err, size_t errlen);

/* ffprobe of the first video stream; frames are counted by decoding. */
int pr_video_probe(const char *path, struct pr_video_info *info, char *err,
    size_t errlen);

/* "file:PATH", how a path must reach ffmpeg (a name with a colon would be
 * read as a protocol, one with a leading '-' as an option). Caller frees. */
char *pr_video_url(const char *path);

/*
 * Runs an ffmpeg or ffprobe argument vector and waits for it; stdout goes
 * to out (at most out_max bytes) when out is not NULL. On failure err gets
 * "PATH: what it said" (path names the file the command is about) and the
 * result is -1.
 */
int pr_video_run(char *const argv[], const char *path, struct pr_buf *out,
    size_t out_max, char *err, size_t errlen);

#endif
