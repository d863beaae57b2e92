/* jail.c: the names of the sandbox layers and the parser for layer lists such as
 * BLOCKBOX_REQUIRE="userns,netns" (jail.h). */
#include "jail.h"

#include <ctype.h>
#include <string.h>
#include <strings.h>

#include "error.h"

static const struct {
    unsigned bit;
    const char *name;
} layer_names[] = {
    {BB_LAYER_SECCOMP, "seccomp"}, {BB_LAYER_USERNS, "userns"}, {BB_LAYER_PIDNS, "pidns"},
    {BB_LAYER_NETNS, "netns"},     {BB_LAYER_MNTNS, "mntns"},   {BB_LAYER_IPCNS, "ipcns"},
    {BB_LAYER_UTSNS, "utsns"},     {BB_LAYER_CGROUP, "cgroup"}, {BB_LAYER_UID, "uid"},
    {BB_LAYER_CAPS, "caps"},       {BB_LAYER_RLIMITS, "rlimits"},
};
#define N_LAYERS (sizeof layer_names / sizeof layer_names[0])

const char *bb_layer_name(unsigned layer)
{
    for (size_t i = 0; i < N_LAYERS; i++)
        if (layer_names[i].bit == layer)
            return layer_names[i].name;
    return NULL;
}

static int lookup(const char *word, size_t len, unsigned *bit)
{
    if (len == 3 && strncasecmp(word, "all", 3) == 0) {
        *bit = BB_LAYER_ALL;
        return 0;
    }
    if (len == 4 && strncasecmp(word, "none", 4) == 0) {
        *bit = 0;
        return 0;
    }
    if (len == 2 && strncasecmp(word, "fs", 2) == 0) { /* the filesystem is the mount layer */
        *bit = BB_LAYER_MNTNS;
        return 0;
    }
    for (size_t i = 0; i < N_LAYERS; i++)
        if (strlen(layer_names[i].name) == len && strncasecmp(layer_names[i].name, word, len) == 0) {
            *bit = layer_names[i].bit;
            return 0;
        }
    return -1;
}

int bb_layers_parse(const char *text, unsigned *out, bb_error **err)
{
    unsigned bits = 0;
    const char *p = text ? text : "";
    while (*p) {
        while (*p == ',' || isspace((unsigned char)*p))
            p++;
        const char *start = p;
        while (*p && *p != ',' && !isspace((unsigned char)*p))
            p++;
        size_t len = (size_t)(p - start);
        if (!len)
            continue;
        unsigned bit;
        if (lookup(start, len, &bit) < 0)
            return bb_fail(err, BB_ERR_CONFIGURATION,
                           "unknown sandbox layer '%.*s' (known: seccomp, userns, pidns, netns, "
                           "mntns, ipcns, utsns, cgroup, uid, caps, rlimits, all, none)",
                           (int)(len > 64 ? 64 : len), start);
        bits |= bit;
    }
    if (out)
        *out = bits;
    return 0;
}
