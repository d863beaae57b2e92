/* pool.c: tenancy of `blockbox serve`: live block instances per (workspace, code hash,
 * function, init code), never shared across workspaces; run slots, the queue, LRU eviction. */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "serve.h"

#define N_BUCKETS 1024
#define MAX_CODE_BYTES_HELD (256L << 20)

typedef struct entry entry;
typedef struct wsstat wsstat;

struct sv_lease {               /* one live instance: a loaded bb_block */
    bb_block *blk;
    entry *e;
    wsstat *ws;                 /* the workspace of the call holding it */
    unsigned long long last;
    struct sv_lease *next;      /* in its entry's idle list */
};

struct entry {
    entry *next;                /* bucket chain */
    bb_block_spec spec;         /* the code as sent and its workspace, what each instance is
                                 * loaded from; the strings are in the entry's own allocation */
    size_t bytes;
    char hash[33], init_hash[33];
    sv_lease *idle;
    int n_idle, n_busy, n_loading, refs;
    unsigned long long last;
};

struct wsstat {
    wsstat *next;
    char *name;
    int active;                 /* calls of this workspace running or queued */
    int running;                /* of which hold a run slot */
};

struct sv_pool {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bb_executor *ex;
    sv_limits lim;
    entry *buckets[N_BUCKETS];
    wsstat *ws;
    long n_entries, code_bytes, live, idle, loading, running, queued, evictions, loads;
    int draining;
    unsigned long long tick;
};

static unsigned bucket_of(const char *ws, const char *hash)
{
    unsigned h = 2166136261u;
    for (const char *p = ws; *p; p++)
        h = (h ^ (unsigned char)*p) * 16777619u;
    for (const char *p = hash; *p; p++)
        h = (h ^ (unsigned char)*p) * 16777619u;
    return h % N_BUCKETS;
}

sv_pool *sv_pool_new(bb_executor *ex, const sv_limits *lim)
{
    sv_pool *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    p->ex = ex;
    p->lim = *lim;
    pthread_mutex_init(&p->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&p->cv, &ca);
    pthread_condattr_destroy(&ca);
    return p;
}

static long live_cap(const sv_pool *p)
{
    long cap = p->lim.max_instances;
    if (p->lim.memory_budget_mb > 0 && p->lim.worker_memory_mb > 0) {
        long by_memory = p->lim.memory_budget_mb / p->lim.worker_memory_mb;
        if (by_memory < cap)
            cap = by_memory;
    }
    return cap < 1 ? 1 : cap;
}

static wsstat *ws_get(sv_pool *p, const char *name)
{
    for (wsstat *w = p->ws; w; w = w->next)
        if (strcmp(w->name, name) == 0)
            return w;
    wsstat *w = calloc(1, sizeof *w);
    if (!w || !(w->name = strdup(name))) {
        free(w);
        return NULL;
    }
    w->next = p->ws;
    p->ws = w;
    return w;
}

static void ws_put(sv_pool *p, wsstat *w)
{
    if (--w->active > 0)
        return;
    for (wsstat **pp = &p->ws; *pp; pp = &(*pp)->next)
        if (*pp == w) {
            *pp = w->next;
            free(w->name);
            free(w);
            return;
        }
}

static int same_str(const char *a, const char *b)
{
    return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

static entry *find(sv_pool *p, const char *ws, const sv_request *rq)
{
    for (entry *e = p->buckets[bucket_of(ws, rq->code_hash)]; e; e = e->next)
        if (strcmp(e->hash, rq->code_hash) == 0 && strcmp(e->spec.workspace_id, ws) == 0 &&
            strcmp(e->spec.run_function_name, rq->run_function_name) == 0 &&
            strcmp(e->init_hash, rq->init_hash) == 0)
            return e;
    return NULL;
}

/* The code a full-code call sent is the code the entry holds (md5 is not trusted to
 * tell two codes apart). */
static int same_code(const entry *e, const sv_request *rq)
{
    const bb_block_spec *s = &e->spec;
    if (strcmp(s->run_code, rq->code_str) != 0 || s->n_imports != rq->n_imports ||
        !same_str(s->init_code, rq->init_code) || !same_str(s->init_function_name, rq->init_name))
        return 0;
    for (size_t i = 0; i < s->n_imports; i++)
        if (strcmp(s->imports[i], rq->imports[i]) != 0)
            return 0;
    return 1;
}

/* Copies s to *at, in an entry's own storage, and moves *at past it. */
static char *put_string(char **at, const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = memcpy(*at, s, n);
    *at += n;
    return d;
}

/* One allocation holds the entry, its import pointers and every string it keeps: it is
 * freed with one free(). */
static entry *entry_new(const char *ws, const sv_request *rq)
{
    size_t code = strlen(rq->code_str) + (rq->init_code ? strlen(rq->init_code) : 0);
    for (size_t i = 0; i < rq->n_imports; i++)
        code += strlen(rq->imports[i]);
    size_t strings = strlen(ws) + strlen(rq->run_function_name) + strlen(rq->init_name) + code +
                     4 + (rq->init_code ? 1 : 0) + rq->n_imports;   /* the NULs */
    entry *e = calloc(1, sizeof *e + rq->n_imports * sizeof(char *) + strings);
    if (!e)
        return NULL;
    char **imports = (char **)(e + 1);
    char *at = (char *)(imports + rq->n_imports);
    bb_block_spec *s = &e->spec;
    s->workspace_id = put_string(&at, ws);
    s->run_function_name = put_string(&at, rq->run_function_name);
    s->run_code = put_string(&at, rq->code_str);
    s->init_function_name = put_string(&at, rq->init_name);
    s->init_code = rq->init_code ? put_string(&at, rq->init_code) : NULL;
    for (size_t i = 0; i < rq->n_imports; i++)
        imports[i] = put_string(&at, rq->imports[i]);
    s->imports = (const char *const *)imports;
    s->n_imports = rq->n_imports;
    e->bytes = code;
    memcpy(e->hash, rq->code_hash, 33);
    memcpy(e->init_hash, rq->init_hash, 33);
    return e;
}

static void unlink_entry(sv_pool *p, entry *e)
{
    for (entry **pp = &p->buckets[bucket_of(e->spec.workspace_id, e->hash)]; *pp; pp = &(*pp)->next)
        if (*pp == e) {
            *pp = e->next;
            p->n_entries--;
            p->code_bytes -= (long)e->bytes;
            return;
        }
}

/* Forgets the code of least recently used blocks that have no instance and no call,
 * while too many are held. */
static void trim_entries(sv_pool *p)
{
    while (p->n_entries > p->lim.max_code_entries || p->code_bytes > MAX_CODE_BYTES_HELD) {
        entry *oldest = NULL;
        for (int b = 0; b < N_BUCKETS; b++)
            for (entry *e = p->buckets[b]; e; e = e->next)
                if (!e->refs && !e->n_idle && !e->n_busy && !e->n_loading &&
                    (!oldest || e->last < oldest->last))
                    oldest = e;
        if (!oldest)
            return;
        unlink_entry(p, oldest);
        free(oldest);
    }
}

/* Live instances (idle, busy, loading) of one workspace. */
static long ws_live(const sv_pool *p, const char *ws)
{
    long n = 0;
    for (int b = 0; b < N_BUCKETS; b++)
        for (const entry *e = p->buckets[b]; e; e = e->next)
            if (strcmp(e->spec.workspace_id, ws) == 0)
                n += e->n_idle + e->n_busy + e->n_loading;
    return n;
}

/* Takes the least recently used idle instance out of the pool: of workspace ws only
 * when ws is given, else of any block. */
static sv_lease *take_lru_idle(sv_pool *p, const char *ws)
{
    sv_lease *best = NULL, **best_link = NULL;
    entry *best_e = NULL;
    for (int b = 0; b < N_BUCKETS; b++)
        for (entry *e = p->buckets[b]; e; e = e->next)
            for (sv_lease **pp = &e->idle; *pp && (!ws || strcmp(e->spec.workspace_id, ws) == 0);
                 pp = &(*pp)->next)
                if (!best || (*pp)->last < best->last) {
                    best = *pp;
                    best_link = pp;
                    best_e = e;
                }
    if (!best)
        return NULL;
    *best_link = best->next;
    best_e->n_idle--;
    p->idle--;
    p->live--;
    p->evictions++;
    return best;
}

static void deadline_after(struct timespec *ts, long ms)
{
    clock_gettime(CLOCK_MONOTONIC, ts);
    ts->tv_sec += ms / 1000;
    ts->tv_nsec += (ms % 1000) * 1000000L;
    if (ts->tv_nsec >= 1000000000L) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000L;
    }
}

static bb_block *load(sv_pool *p, const entry *e, bb_error **err)
{
    bb_block_spec spec = e->spec;
    spec.max_inputs = p->lim.max_inputs;
    return bb_block_load(p->ex, &spec, err);
}

sv_pool_status sv_pool_acquire(sv_pool *p, const char *workspace, const sv_request *rq,
                               sv_lease **out, bb_error **err)
{
    *out = NULL;
    sv_pool_status st = SV_POOL_OK;
    pthread_mutex_lock(&p->mu);
    if (p->draining) {
        pthread_mutex_unlock(&p->mu);
        return SV_POOL_UNAVAILABLE;
    }
    wsstat *w = ws_get(p, workspace);
    if (!w) {
        pthread_mutex_unlock(&p->mu);
        return SV_POOL_UNAVAILABLE;
    }
    if (w->active >= p->lim.max_queue_per_ws) {
        w->active++;
        ws_put(p, w);
        pthread_mutex_unlock(&p->mu);
        return SV_POOL_BUSY;
    }
    w->active++;
    entry *e = find(p, workspace, rq);
    if (e && rq->code_str && !same_code(e, rq)) {
        ws_put(p, w);
        pthread_mutex_unlock(&p->mu);
        return SV_POOL_COLLISION;
    }
    if (!e) {
        if (!rq->code_str) {
            ws_put(p, w);
            pthread_mutex_unlock(&p->mu);
            return SV_POOL_UNKNOWN_HASH;
        }
        if (!(e = entry_new(workspace, rq))) {
            ws_put(p, w);
            pthread_mutex_unlock(&p->mu);
            return SV_POOL_UNAVAILABLE;
        }
        unsigned b = bucket_of(workspace, e->hash);
        e->next = p->buckets[b];
        p->buckets[b] = e;
        p->n_entries++;
        p->code_bytes += (long)e->bytes;
        trim_entries(p);
    }
    e->refs++;
    e->last = ++p->tick;
    int queued = 0;
    struct timespec deadline;
    deadline_after(&deadline, p->lim.queue_wait_ms);
    for (;;) {
        if (p->draining) {
            st = SV_POOL_UNAVAILABLE;
            break;
        }
        int slot = p->running < p->lim.max_runs && w->running < p->lim.max_runs_per_ws;
        if (e->idle && slot) {
            sv_lease *l = e->idle;
            e->idle = l->next;
            e->n_idle--;
            e->n_busy++;
            p->idle--;
            p->running++;
            w->running++;
            l->ws = w;
            *out = l;
            break;
        }
        if (slot && e->n_idle + e->n_busy + e->n_loading < p->lim.max_per_block) {
            /* a workspace at its instance quota evicts only its own idle instances (or
             * waits): one tenant's many blocks never evict another tenant's warm ones */
            int at_quota = p->lim.max_instances_per_ws > 0 &&
                           ws_live(p, workspace) >= p->lim.max_instances_per_ws;
            if (!at_quota && p->live < live_cap(p)) {
                e->n_loading++;
                p->loading++;
                p->live++;
                p->running++;
                w->running++;
                p->loads++;
                if (queued) {
                    p->queued--;
                    queued = 0;
                }
                pthread_mutex_unlock(&p->mu);
                bb_block *blk = load(p, e, err);
                sv_lease *l = blk ? calloc(1, sizeof *l) : NULL;
                if (blk && !l) {
                    bb_block_free(blk);
                    blk = NULL;
                }
                pthread_mutex_lock(&p->mu);
                e->n_loading--;
                p->loading--;
                if (!l) {
                    p->live--;
                    p->running--;
                    w->running--;
                    pthread_cond_broadcast(&p->cv);
                    st = blk || (err && *err) ? SV_POOL_LOAD_FAILED : SV_POOL_UNAVAILABLE;
                    break;
                }
                l->blk = blk;
                l->e = e;
                l->ws = w;
                e->n_busy++;
                *out = l;
                break;
            }
            sv_lease *victim = take_lru_idle(p, workspace);   /* own workspace first */
            if (!victim && !at_quota)
                victim = take_lru_idle(p, NULL);
            if (victim) {
                pthread_mutex_unlock(&p->mu);
                bb_block_free(victim->blk);
                free(victim);
                pthread_mutex_lock(&p->mu);
                continue;
            }
        }
        if (!queued) {
            if (p->queued >= p->lim.max_queue) {
                st = SV_POOL_BUSY;
                break;
            }
            p->queued++;
            queued = 1;
        }
        if (pthread_cond_timedwait(&p->cv, &p->mu, &deadline) == ETIMEDOUT) {
            st = SV_POOL_UNAVAILABLE;
            break;
        }
    }
    if (queued)
        p->queued--;
    if (st != SV_POOL_OK) {
        e->refs--;
        ws_put(p, w);
        trim_entries(p);
    }
    pthread_mutex_unlock(&p->mu);
    return st;
}

bb_block *sv_lease_block(sv_lease *l)
{
    return l->blk;
}

void sv_pool_release(sv_pool *p, sv_lease *l)
{
    pthread_mutex_lock(&p->mu);
    entry *e = l->e;
    e->n_busy--;
    e->refs--;
    p->running--;
    l->ws->running--;
    ws_put(p, l->ws);
    l->ws = NULL;
    l->last = e->last = ++p->tick;
    l->next = e->idle;
    e->idle = l;
    e->n_idle++;
    p->idle++;
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
}

long sv_pool_drain(sv_pool *p, long timeout_ms)
{
    struct timespec deadline;
    deadline_after(&deadline, timeout_ms);
    pthread_mutex_lock(&p->mu);
    p->draining = 1;
    pthread_cond_broadcast(&p->cv);
    while (p->running > 0 || p->queued > 0)
        if (pthread_cond_timedwait(&p->cv, &p->mu, &deadline) == ETIMEDOUT)
            break;
    long left = p->running;
    pthread_mutex_unlock(&p->mu);
    return left;
}

void sv_pool_stats_get(sv_pool *p, sv_pool_stats *st)
{
    pthread_mutex_lock(&p->mu);
    st->live = p->live;
    st->loading = p->loading;
    st->idle = p->idle;
    st->running = p->running;
    st->queued = p->queued;
    st->code_entries = p->n_entries;
    st->evictions = p->evictions;
    st->loads = p->loads;
    pthread_mutex_unlock(&p->mu);
}

void sv_pool_free(sv_pool *p)
{
    if (!p)
        return;
    for (int b = 0; b < N_BUCKETS; b++)
        for (entry *e = p->buckets[b], *next; e; e = next) {
            next = e->next;
            for (sv_lease *l = e->idle, *ln; l; l = ln) {
                ln = l->next;
                bb_block_free(l->blk);
                free(l);
            }
            free(e);
        }
    for (wsstat *w = p->ws, *n; w; w = n) {
        n = w->next;
        free(w->name);
        free(w);
    }
    pthread_cond_destroy(&p->cv);
    pthread_mutex_destroy(&p->mu);
    free(p);
}
