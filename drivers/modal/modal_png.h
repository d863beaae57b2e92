/* modal_png.h: the modal driver's PNG encoder for raw frames (grey, BGR, BGRA uint8), which
 * a Modal deployment, `blockbox serve` and Roboflow's decoders read as lossless images. */
#ifndef BB_MODAL_PNG_H
#define BB_MODAL_PNG_H

#include <blockbox/driver.h>
#include <stddef.h>

/* IDAT chunks hold at most this many bytes of the zlib stream (written as they fill). */
#define BB_MODAL_PNG_CHUNK (64 * 1024)

/* A bb_call_image_fn: writes an 8-bit PNG of height x width pixels of `channels` (1 grey,
 * 3 BGR, 4 BGRA, rows of width x channels bytes, C order) through write(sink, ...): grey,
 * RGB or RGBA (colour type 0, 2, 6), every row Sub-filtered, one zlib stream (run-length
 * strategy) in IDAT chunks of at most BB_MODAL_PNG_CHUNK bytes, CRCs on every chunk. ctx:
 * NULL, or an int holding the zlib level (0 stored .. 9; default 1). Returns
 * 0, or -1 (bad dimensions, out of memory, a write that failed). */
int bb_modal_png_encode(void *ctx, const unsigned char *pixels, size_t height, size_t width, size_t channels,
                        bb_call_write_fn write, void *sink);

#endif
