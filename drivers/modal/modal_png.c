/* modal_png.c: the modal driver's PNG encoder: raw frames (grey, BGR, BGRA uint8) as grey,
 * RGB or RGBA PNGs, deflated by zlib into CRC'd IDAT chunks written as they fill. */
#include "modal_png.h"

#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#define PNG_MAX_EXTENT 0x7fffffffu   /* PNG's own limit on width and height */
#define FILTER_SUB 1
/* zlib's run-length strategy: on Sub-filtered frames it beat the default strategy at level 1
 * in size and time (1080p: camera-like noise 4.37 MB against 5.03 MB in ~25% less CPU, flat
 * 16 KB against 48 KB, smooth gradients 5% larger; docs/DECISIONS.md). */

static void be32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
}

/* One chunk: length, type, data, CRC-32 of type and data. */
static int put_chunk(bb_call_write_fn write, void *sink, const char type[4], const unsigned char *data,
                     size_t len)
{
    unsigned char head[8], tail[4];
    be32(head, (uint32_t)len);
    memcpy(head + 4, type, 4);
    uLong crc = crc32(0L, head + 4, 4);
    if (len)
        crc = crc32(crc, data, (uInt)len);
    be32(tail, (uint32_t)crc);
    if (write(sink, head, sizeof head) < 0 || (len && write(sink, data, len) < 0))
        return -1;
    return write(sink, tail, sizeof tail);
}

/* One row as PNG holds it: filter byte Sub, then each byte minus the one a pixel before,
 * the channels in PNG's order (BGR -> RGB, BGRA -> RGBA). */
static void filter_row(unsigned char *line, const unsigned char *src, size_t width, size_t channels)
{
    unsigned char *d = line + 1;
    line[0] = FILTER_SUB;
    if (channels == 1) {
        unsigned char prev = 0;
        for (size_t x = 0; x < width; x++) {
            d[x] = (unsigned char)(src[x] - prev);
            prev = src[x];
        }
    } else if (channels == 3) {
        unsigned char r0 = 0, g0 = 0, b0 = 0;
        for (size_t x = 0; x < width; x++, src += 3, d += 3) {
            unsigned char b = src[0], g = src[1], r = src[2];
            d[0] = (unsigned char)(r - r0);
            d[1] = (unsigned char)(g - g0);
            d[2] = (unsigned char)(b - b0);
            r0 = r, g0 = g, b0 = b;
        }
    } else {
        unsigned char r0 = 0, g0 = 0, b0 = 0, a0 = 0;
        for (size_t x = 0; x < width; x++, src += 4, d += 4) {
            unsigned char b = src[0], g = src[1], r = src[2], a = src[3];
            d[0] = (unsigned char)(r - r0);
            d[1] = (unsigned char)(g - g0);
            d[2] = (unsigned char)(b - b0);
            d[3] = (unsigned char)(a - a0);
            r0 = r, g0 = g, b0 = b, a0 = a;
        }
    }
}

int bb_modal_png_encode(void *ctx, const unsigned char *pixels, size_t height, size_t width, size_t channels,
                        bb_call_write_fn write, void *sink)
{
    static const unsigned char signature[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    int level = ctx ? *(const int *)ctx : 1;
    if (!pixels || !write || height == 0 || width == 0 || height > PNG_MAX_EXTENT ||
        width > PNG_MAX_EXTENT || (channels != 1 && channels != 3 && channels != 4) || level < 0 ||
        level > 9)
        return -1;
    size_t row = width * channels;   /* at most 4 x 2^31: no wrap in a 64-bit size_t */
    if (row >= UINT_MAX || height > SIZE_MAX / row)
        return -1;
    unsigned char ihdr[13];
    be32(ihdr, (uint32_t)width);
    be32(ihdr + 4, (uint32_t)height);
    ihdr[8] = 8;                                            /* bit depth */
    ihdr[9] = channels == 1 ? 0 : channels == 3 ? 2 : 6;    /* grey, RGB, RGBA */
    ihdr[10] = ihdr[11] = ihdr[12] = 0;                     /* deflate, adaptive filters, no interlace */
    if (write(sink, signature, sizeof signature) < 0 || put_chunk(write, sink, "IHDR", ihdr, sizeof ihdr) < 0)
        return -1;

    unsigned char *line = malloc(row + 1), *out = malloc(BB_MODAL_PNG_CHUNK);
    z_stream zs;
    memset(&zs, 0, sizeof zs);
    int rc = -1, started = 0;
    if (!line || !out || deflateInit2(&zs, level, Z_DEFLATED, 15, 8, Z_RLE) != Z_OK)
        goto done;
    started = 1;
    zs.next_out = out;
    zs.avail_out = BB_MODAL_PNG_CHUNK;
    for (size_t y = 0; y < height; y++) {
        filter_row(line, pixels + y * row, width, channels);
        zs.next_in = line;
        zs.avail_in = (uInt)(row + 1);
        int flush = y + 1 == height ? Z_FINISH : Z_NO_FLUSH;
        for (;;) {
            int z = deflate(&zs, flush);
            if (z == Z_STREAM_ERROR)
                goto done;
            if (zs.avail_out == 0) {   /* a full chunk: out with it, and go on */
                if (put_chunk(write, sink, "IDAT", out, BB_MODAL_PNG_CHUNK) < 0)
                    goto done;
                zs.next_out = out;
                zs.avail_out = BB_MODAL_PNG_CHUNK;
                continue;
            }
            if (flush == Z_FINISH ? z == Z_STREAM_END : zs.avail_in == 0)
                break;
            if (z == Z_BUF_ERROR)
                goto done;
        }
    }
    size_t have = BB_MODAL_PNG_CHUNK - zs.avail_out;
    if ((have && put_chunk(write, sink, "IDAT", out, have) < 0) || put_chunk(write, sink, "IEND", NULL, 0) < 0)
        goto done;
    rc = 0;
done:
    if (started)
        deflateEnd(&zs);
    free(line);
    free(out);
    return rc;
}
