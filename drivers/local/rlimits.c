/* rlimits.c: the resource limits of a worker (CPU time, threads, open files, file
 * size, core, memlock, message queues, and address space when no memory cgroup). */
#include "rlimits.h"

#include <errno.h>
#include <malloc.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <unistd.h>

#include "cgroup.h"
#include "jailutil.h"

static int lower(int resource, const char *name, rlim_t soft, rlim_t hard, char *err, size_t errlen)
{
    struct rlimit cur;
    if (getrlimit(resource, &cur) < 0)
        return bb_jail_fail(err, errlen, "getrlimit(%s): %s", name, bb_jail_strerror(errno));
    if (cur.rlim_max != RLIM_INFINITY && hard > cur.rlim_max)
        hard = cur.rlim_max;
    if (soft > hard)
        soft = hard;
    struct rlimit want = {soft, hard};
    if (setrlimit(resource, &want) < 0)
        return bb_jail_fail(err, errlen, "setrlimit(%s, %lu): %s", name, (unsigned long)soft,
                            bb_jail_strerror(errno));
    struct rlimit got;
    if (getrlimit(resource, &got) < 0 || got.rlim_cur != soft || got.rlim_max != hard)
        return bb_jail_fail(err, errlen, "setrlimit(%s) did not take", name);
    return 0;
}

#define LIBRARY_ROOM (512L << 20) /* measured: numpy 34 MiB, cv2 401 MiB of mappings */
#define ARENAS 2                  /* malloc arenas in a worker */
#define ARENA_ROOM (64L << 20)   /* HEAP_MAX_SIZE; one more while a heap is being aligned */

long bb_rlimits_as_budget(long vm, const bb_jail_config *cfg)
{
    struct rlimit st;
    long stack = 8L << 20;
    if (getrlimit(RLIMIT_STACK, &st) == 0 && st.rlim_cur != RLIM_INFINITY && st.rlim_cur < (64UL << 20))
        stack = (long)st.rlim_cur; /* glibc's default thread stack */
    return vm + cfg->memory_bytes + LIBRARY_ROOM + (ARENAS + 1) * ARENA_ROOM + cfg->max_threads * stack;
}

long bb_rlimits_vmsize(void)
{
    char buf[128];
    if (bb_jail_read_file("/proc/self/statm", buf, sizeof buf) <= 0)
        return -1;
    long pages = strtol(buf, NULL, 10);
    long page = sysconf(_SC_PAGESIZE);
    return pages > 0 && page > 0 ? pages * page : -1;
}

int bb_rlimits_apply(const bb_jail_config *cfg, long as_bytes, char *err, size_t errlen)
{
    rlim_t cpu = cfg->cpu_seconds > 1 ? (rlim_t)cfg->cpu_seconds : 1;
    if ((double)cpu < cfg->cpu_seconds)
        cpu++; /* round up */
    /* Soft: SIGXCPU (reported as a CPU limit); hard one second later: SIGKILL. */
    if (lower(RLIMIT_CPU, "RLIMIT_CPU", cpu, cpu + 1, err, errlen) < 0 ||
        lower(RLIMIT_NPROC, "RLIMIT_NPROC", (rlim_t)cfg->max_threads, (rlim_t)cfg->max_threads, err,
              errlen) < 0 ||
        lower(RLIMIT_NOFILE, "RLIMIT_NOFILE", (rlim_t)cfg->max_open_files, (rlim_t)cfg->max_open_files,
              err, errlen) < 0 ||
        lower(RLIMIT_FSIZE, "RLIMIT_FSIZE", (rlim_t)cfg->max_file_bytes, (rlim_t)cfg->max_file_bytes, err,
              errlen) < 0 ||
        lower(RLIMIT_CORE, "RLIMIT_CORE", 0, 0, err, errlen) < 0 ||
        lower(RLIMIT_MEMLOCK, "RLIMIT_MEMLOCK", 0, 0, err, errlen) < 0 ||
        lower(RLIMIT_MSGQUEUE, "RLIMIT_MSGQUEUE", 0, 0, err, errlen) < 0 ||
        lower(RLIMIT_RTPRIO, "RLIMIT_RTPRIO", 0, 0, err, errlen) < 0)
        return -1;
    if (as_bytes > 0) {
        /* Threads would each get an arena of their own: a few dozen would use up the
         * address space the budget allows. */
        mallopt(M_ARENA_MAX, ARENAS);
        if (lower(RLIMIT_AS, "RLIMIT_AS", (rlim_t)as_bytes, (rlim_t)as_bytes, err, errlen) < 0)
            return -1;
    }
    return 0;
}

/* detect() of the rlimits layer (jail.h): always there; the address space is capped
 * only where no memory cgroup caps the worker. */
int bb_rlimits_detect(const bb_layer_facts *f, char *detail, size_t len)
{
    int memcg = f->cg && f->cg->version > 0 && (f->cg->usable & BB_CG_MEMORY);
    snprintf(detail, len, "cpu, nproc, nofile, fsize, core=0, memlock, msgqueue%s",
             memcg ? "" : ", address space (no memory cgroup)");
    return 1;
}
