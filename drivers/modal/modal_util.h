/* modal_util.h: the small pure pieces of the modal driver (gzip bodies, Retry-After,
 * backoff with jitter, UnknownCodeHash detection, timeouts), exposed for unit tests. */
#ifndef BB_MODAL_UTIL_H
#define BB_MODAL_UTIL_H

#include <stddef.h>

#include "buf.h"
#include "error.h"

/* Request bodies at least this long are sent gzip-compressed (when that is smaller). */
#define BB_MODAL_GZIP_MIN_BYTES 1024
/* Backoff: full jitter over min(cap, base * 2^attempt). */
#define BB_MODAL_BACKOFF_BASE_MS 100
#define BB_MODAL_BACKOFF_CAP_MS 2000
/* A Retry-After longer than this is not waited for (the call fails instead). */
#define BB_MODAL_RETRY_AFTER_MAX_MS 10000
/* The longest connect phase of one attempt. */
#define BB_MODAL_CONNECT_MAX_MS 5000
/* 303 hops followed in one call (Modal polls long calls by redirecting). */
#define BB_MODAL_MAX_REDIRECTS 16

/* Compresses in[0..len) with a gzip wrapper (zlib, fast level) into out (reset first).
 * Returns 0, or -1 (out of memory or zlib failure). */
int bb_modal_gzip(const void *in, size_t len, bb_buf *out);

/* Retry-After in its delta-seconds form ("3"): milliseconds, capped at
 * BB_MODAL_RETRY_AFTER_MAX_MS + 1 (so callers see "too long"); -1 if absent or not
 * a number (an HTTP-date is treated as absent). */
long bb_modal_parse_retry_after(const char *value);

/* Full-jitter backoff for retry number `attempt` (0-based): a uniform random delay in
 * [0, min(CAP, BASE << attempt)] milliseconds. random32 is a random number. */
long bb_modal_backoff_ms(int attempt, unsigned random32);

/* The whole-call budget: the block timeout plus a margin for Modal's cold start and
 * the network: min(10 s, 2 s + timeout / 2). */
long bb_modal_deadline_ms(long timeout_ms);

/* 1 if body is a response envelope with success false and error_type "UnknownCodeHash". */
int bb_modal_is_unknown_code_hash(const char *body, size_t len);

/* The error blockbox's app decided itself, marked by the response header
 * `Blockbox-Error: <type>` (a block cannot set headers): for Timeout, MemoryLimit,
 * SandboxCrash, OutputLimit, BackendUnavailable and InvalidResponse a new error of that
 * kind with the body's `error` text (printable ASCII, cut); NULL for any other value,
 * so the reply goes to the core as usual. */
bb_error *bb_modal_trusted_error(const char *header, const char *body, size_t len);

/* The dur= of the first metric of a Server-Timing header ("app;dur=1.25"), in
 * microseconds; -1 if absent or malformed. */
long bb_modal_parse_server_timing(const char *value);

#endif
