/* buf.h: the core's and the drivers' name for the text toolkit, which is public
 * (include/blockbox/text.h: bb_buf, JSON spans, base64). */
#ifndef BB_BUF_H
#define BB_BUF_H

#include <blockbox/text.h>

/* The library's own addition: bb_buf_json_string's escaping without the quotes, a piece
 * of a JSON string literal (split only at ASCII characters, so the pieces escape as the
 * whole would; src/frames.c writes a request's inputs so). */
int bb_buf_json_chars(bb_buf *b, const char *s, size_t len);

#endif
