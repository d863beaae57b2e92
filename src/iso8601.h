/* iso8601.h: whether a string is an ISO 8601 date-time in the subset Python's
 * datetime.fromisoformat reads (at most BB_ISO8601_MAX characters). */
#ifndef BB_ISO8601_H
#define BB_ISO8601_H

#define BB_ISO8601_MAX 64

/* YYYY-MM-DD, optionally 'T' or ' ' and HH[:MM[:SS[.f{1,9}]]], then optionally 'Z' or
 * ±HH[:MM[:SS[.ffffff]]]; 1 if s is one, else 0. */
int bb_valid_iso8601(const char *s);

#endif
