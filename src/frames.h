/* frames.h: buffers beside the JSON (blockbox.h "buffers"): the set a text may name,
 * the claim the typed-value checks make on it, and the rewrites to and from `data`. */
#ifndef BB_FRAMES_H
#define BB_FRAMES_H

#include <stddef.h>

#include "blockbox.h"
#include "buf.h"
#include "wire.h"

struct cJSON;

/* The buffers a text may name: their lengths, and which the typed-value walk has
 * claimed (each exactly once). */
typedef struct bb_frames {
    size_t n;
    size_t len[BB_MAX_BUFFERS];
    unsigned char used[BB_MAX_BUFFERS];
} bb_frames;

/* Fills f from n buffers of these lengths; -1 if n > BB_MAX_BUFFERS. */
int bb_frames_init(bb_frames *f, const size_t *lens, size_t n);
/* Sum of the lengths; SIZE_MAX if it does not fit. */
size_t bb_frames_total(const bb_frames *f);

/* The claim of one typed value on `index` (a JSON number) for exactly `need` bytes.
 * 0, or -1 with a reason written to why: not an integer, out of range, named twice,
 * wrong length, or no buffers at all (f NULL). */
int bb_frames_claim(bb_frames *f, const struct cJSON *index, double need, char *why, size_t cap);
/* The first buffer no value named, or -1 if all were. */
long bb_frames_unclaimed(const bb_frames *f);

/* Checks a text with buffers: what bb_wire_check_inputs checks, plus every `buffer`
 * named exactly once with the right length, at most BB_MAX_BUFFERS, and text + buffers
 * within max_input_bytes. InvalidRequest otherwise. */
int bb_frames_check_inputs(const char *inputs_json, size_t len, const bb_buffer *bufs, size_t n,
                           const bb_limits *limits, bb_error **err);

/* One span of a validated text to replace: [start, end) is a `"buffer": i` (or
 * `"data": "…"`) member of a typed value. */
typedef struct bb_frames_span {
    size_t start, end;
    long index;         /* the buffer it names (buffer spans), or -1 */
    int kind;           /* BB_FRAMES_* below */
    size_t aux_start, aux_end;   /* pixels: the image's `shape` member */
} bb_frames_span;

enum {
    BB_FRAMES_TARGET,       /* the member the walk looks for (`buffer` or `data`) */
    BB_FRAMES_TYPE,         /* a raw image's `type` member (the forms walk) */
    BB_FRAMES_PIXELS,       /* a raw image's `buffer` member (the forms walk) */
    BB_FRAMES_PIXELS_DATA   /* a raw image's `data` member (the forms walk) */
};

/*
 * Rewrites a validated text whose typed values name buffers into the JSON `data`
 * form: each `"buffer": i` member of an ndarray or raw workflow_image becomes
 * `"data": "<base64 of buffer i>"`; everything else is kept byte for byte. For the
 * drivers that do not take buffers, and the wire's JSON forms. Appends to out.
 */
int bb_frames_to_data(const char *text, size_t len, const bb_buffer *bufs, size_t n, bb_buf *out,
                      bb_error **err);

/*
 * The other way: each `"data": "<base64>"` member of an ndarray or raw workflow_image
 * in a validated text becomes `"buffer": k` with its bytes decoded into a new buffer k
 * (numbered after the `first` buffers the text names already). The decoded bytes go
 * to alloc(ctx, len) (the driver's memory, e.g. shared with its worker); *n_new says
 * how many. At most BB_MAX_BUFFERS in all; texts with none are copied unchanged.
 */
typedef void *(*bb_frames_alloc_fn)(void *ctx, size_t len);
int bb_frames_from_data(const char *text, size_t len, size_t first, bb_frames_alloc_fn alloc,
                        void *ctx, bb_buf *out, void **data, size_t *lens, size_t *n_new,
                        bb_error **err);

/*
 * For a driver that sends JSON only but encodes images itself (the modal driver): appends
 * the JSON string literal (quoted, escaped as bb_buf_json_string escapes) of a validated
 * text with every buffer in a JSON form: an ndarray's `"buffer": i` becomes `"data":
 * "<base64>"`, and a raw workflow_image (pixels in a buffer or in `data`) becomes a
 * base64 image: `"type": "base64"` and `"value": "<base64 of what encode writes>"`, its
 * other members kept. The base64 is written into out as encode writes, with no copy of
 * the image file. *n_images: how many images were encoded.
 */
typedef int (*bb_frames_write_fn)(void *sink, const void *bytes, size_t n);
typedef int (*bb_frames_image_fn)(void *ctx, const unsigned char *pixels, size_t height, size_t width,
                                  size_t channels, bb_frames_write_fn write, void *sink);
int bb_frames_write_forms(const char *text, size_t len, const bb_buffer *bufs, size_t n,
                          bb_frames_image_fn encode, void *ctx, bb_buf *out, size_t *n_images,
                          bb_error **err);

#endif
