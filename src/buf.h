/* buf.h: the core's and the drivers' name for the text toolkit, which is public
 * (include/blockbox/text.h: bb_buf, JSON spans, base64). */
#ifndef BB_BUF_H
#define BB_BUF_H

#include <blockbox/text.h>

#endif
