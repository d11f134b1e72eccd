/*
 * Video and image files through the ffmpeg and ffprobe programs: writing
 * identity-coded frames the way ComfyUI's VideoHelperSuite writes video,
 * reading the codes back, and probing.
 */
#ifndef PR_VIDEO_H
#define PR_VIDEO_H

#include <stddef.h>
#include <stdint.h>

struct pr_video_info {
	char codec[32];       /* "h264", "png", ... */
	char pix_fmt[32];     /* "yuv420p", ... */
	int width, height;
	int fps_num, fps_den; /* r_frame_rate */
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

#endif
