/* cgroup_int.h: what cgroup.c (detection, v1, worker groups) and cgroup_v2.c (delegation)
 * share inside the local driver; not an interface for anything else. */
#ifndef BB_CGROUP_INT_H
#define BB_CGROUP_INT_H

#include <stddef.h>

#include "cgroup.h"

typedef struct bb_cg_mount {
    char root[BB_CG_PATH];
    char point[BB_CG_PATH];
    char fstype[32];
    char super[256];
} bb_cg_mount;

#define BB_CG_NCTRL 3
extern const struct bb_cg_ctrl {
    unsigned bit;
    const char *name;
} bb_cg_ctrls[BB_CG_NCTRL];

void bb_cg_append(char *dst, size_t len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Is `word` one of the space-separated items of `list` (cgroup.controllers)? */
int bb_cg_words_have(const char *list, const char *word);
/* The BB_CG_* bits named in a space-separated controller list. */
unsigned bb_cg_bits(const char *list);
/* "memory pids cpu" for bits, "" for none. */
const char *bb_cg_names(unsigned bits, char *buf, size_t len);
int bb_cg_exists(const char *dir, const char *file);
int bb_cg_write(const char *dir, const char *file, const char *value);
/* dir/file as text (NUL-terminated, at most len-1 bytes); -1 when unreadable. */
long bb_cg_read(const char *dir, const char *file, char *buf, size_t len);
/* A number in dir/file: the first one (key NULL) or the one after "key " on its line;
 * -1 when unreadable or missing. */
long bb_cg_read_long(const char *dir, const char *file, const char *key);
/* Kills every process in dir until it is empty, then removes it (bounded wait). */
int bb_cg_kill_and_remove(const char *dir, int have_kill);
/* Removes the (empty) child groups of dir, killing nothing; returns how many stayed. */
int bb_cg_rmdir_children(const char *dir);
/* bb_cg_kill_and_remove on every slot group (BB_CG_SLOT_PREFIX*) under parent. */
void bb_cg_remove_slots(const char *parent, int have_kill);
/* Kills every process in dir until its cgroup.procs is empty (bounded wait); 0 once it
 * is, -1 when it stays busy or cannot be read. */
int bb_cg_empty(const char *dir, int have_kill);
/* cgroup_slot.c: frees the per-slot bookkeeping (the groups are removed by teardown). */
void bb_cg_slots_free(bb_cgroup *cg);
/* A real write test: make and remove a child group. */
int bb_cg_probe_mkdir(const char *dir);

/* cgroup_v2.c: the delegation root of a v2 hierarchy and its set-up. */
void bb_cg2_detect(bb_cgroup *cg, const char *point, const char *own, int how);
int bb_cg2_setup(bb_cgroup *cg, pid_t zygote, char *err, size_t errlen);
void bb_cg2_teardown(bb_cgroup *cg);
void bb_cg2_sweep(bb_cgroup *cg);

#endif
