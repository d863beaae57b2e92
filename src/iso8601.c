/* iso8601.c: whether a string is an ISO 8601 date-time in the subset Python's
 * datetime.fromisoformat reads (the serializer's check of `datetime` values). */
#include "iso8601.h"

#include <string.h>

static int digits(const char *s, int count, int *value)
{
    int v = 0;
    for (int i = 0; i < count; i++) {
        if (s[i] < '0' || s[i] > '9')
            return 0;
        v = v * 10 + (s[i] - '0');
    }
    *value = v;
    return 1;
}

/* HH[:MM[:SS[.fraction]]] starting at s; returns characters used, or -1. */
static int parse_time(const char *s, int allow_fraction)
{
    int h, m, sec, at = 2;
    if (!digits(s, 2, &h) || h > 23)
        return -1;
    if (s[at] != ':')
        return at;
    if (!digits(s + at + 1, 2, &m) || m > 59)
        return -1;
    at += 3;
    if (s[at] != ':')
        return at;
    if (!digits(s + at + 1, 2, &sec) || sec > 59)
        return -1;
    at += 3;
    if (allow_fraction && (s[at] == '.' || s[at] == ',')) {
        int k = 0;
        while (s[at + 1 + k] >= '0' && s[at + 1 + k] <= '9')
            k++;
        if (k < 1 || k > 9)
            return -1;
        at += 1 + k;
    }
    return at;
}

/*
 * ISO 8601 in its extended form, the subset Python's datetime.fromisoformat reads:
 * YYYY-MM-DD, optionally followed by 'T' or ' ' and HH[:MM[:SS[.f{1,9}]]], then
 * optionally 'Z' or ±HH[:MM[:SS[.ffffff]]].
 */
int bb_valid_iso8601(const char *s)
{
    size_t len = strnlen(s, BB_ISO8601_MAX + 1);
    if (len > BB_ISO8601_MAX || len < 10)
        return 0;
    int year, month, day;
    if (!digits(s, 4, &year) || s[4] != '-' || !digits(s + 5, 2, &month) || s[7] != '-' ||
        !digits(s + 8, 2, &day))
        return 0;
    if (year < 1 || month < 1 || month > 12 || day < 1 || day > 31)
        return 0;
    const char *p = s + 10;
    if (!*p)
        return 1;
    if (*p != 'T' && *p != ' ')
        return 0;
    int used = parse_time(++p, 1);
    if (used < 0)
        return 0;
    p += used;
    if (*p == 'Z')
        p++;
    else if (*p == '+' || *p == '-') {
        used = parse_time(++p, 1);
        if (used < 0)
            return 0;
        p += used;
    }
    return *p == '\0';
}
