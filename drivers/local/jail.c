/* jail.c: the list of the sandbox layers (bit, name, the layer's own detect()) and
 * the parser for layer lists such as BLOCKBOX_REQUIRE="userns,netns" (jail.h). */
#include "jail.h"

#include <ctype.h>
#include <string.h>
#include <strings.h>

#include "error.h"

const bb_layer_def bb_layer_list[BB_LAYER_COUNT] = {
    {BB_LAYER_SECCOMP, "seccomp", bb_seccomp_detect},
    {BB_LAYER_USERNS, "userns", bb_ns_detect_user},
    {BB_LAYER_PIDNS, "pidns", bb_ns_detect_pid},
    {BB_LAYER_NETNS, "netns", bb_ns_detect_net},
    {BB_LAYER_MNTNS, "mntns", bb_fs_detect},
    {BB_LAYER_IPCNS, "ipcns", bb_ns_detect_ipc},
    {BB_LAYER_UTSNS, "utsns", bb_ns_detect_uts},
    {BB_LAYER_CGROUP, "cgroup", bb_cgroup_layer_detect},
    {BB_LAYER_UID, "uid", bb_caps_detect_uid},
    {BB_LAYER_CAPS, "caps", bb_caps_detect},
    {BB_LAYER_RLIMITS, "rlimits", bb_rlimits_detect},
};
#define N_LAYERS BB_LAYER_COUNT

const char *bb_layer_name(unsigned layer)
{
    for (size_t i = 0; i < N_LAYERS; i++)
        if (bb_layer_list[i].bit == layer)
            return bb_layer_list[i].name;
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
        if (strlen(bb_layer_list[i].name) == len && strncasecmp(bb_layer_list[i].name, word, len) == 0) {
            *bit = bb_layer_list[i].bit;
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
