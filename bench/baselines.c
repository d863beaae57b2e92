/* baselines.c: what blockbox is compared against, measured in the same run: a pipe
 * round trip, a fresh python3 with numpy+cv2, a bare fork+wait, and in-process exec. */
#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <blockbox/text.h>

#include "bench_internal.h"
#include "wire.h"   /* the raw baseline sends the core's own envelopes (check-structure.allow) */

extern const char bb_bench_runtime_py[];
extern const size_t bb_bench_runtime_py_len;
extern const char bb_bench_inprocess_py[];
extern const size_t bb_bench_inprocess_py_len;

#define PYTHON "/usr/bin/python3"
#define PIPE_MESSAGE_BYTES 64

/* The environment of every Python the benchmark starts: the zygote's (local.c). */
static char *const python_env[] = {"OPENBLAS_NUM_THREADS=1", "OMP_NUM_THREADS=1", "MKL_NUM_THREADS=1",
                                   "NUMEXPR_NUM_THREADS=1", "LC_ALL=C.UTF-8", NULL};

/* ---- pipe round trip ---------------------------------------------------------- */

/* All of len bytes through fd, read (out 0) or written (out 1); 0, or -1 at EOF or error. */
static int io_full(int fd, void *buf, size_t len, int out)
{
    size_t done = 0;
    while (done < len) {
        ssize_t n = out ? write(fd, (char *)buf + done, len - done) : read(fd, (char *)buf + done, len - done);
        if (n > 0)
            done += (size_t)n;
        else if (n < 0 && errno == EINTR)
            continue;
        else
            return -1;
    }
    return 0;
}

static int read_full(int fd, void *buf, size_t len) { return io_full(fd, buf, len, 0); }
static int write_full(int fd, const void *buf, size_t len) { return io_full(fd, (void *)buf, len, 1); }

/* Pins the calling thread to one CPU (cpu < 0: leaves it alone). */
static void pin_to(int cpu)
{
    if (cpu < 0)
        return;
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    (void)sched_setaffinity(0, sizeof set, &set);
}

int bench_pipe_rtt(const bench_plan *plan, int parent_cpu, int child_cpu, bench_samples *out, bb_error **err)
{
    cpu_set_t saved;
    if (sched_getaffinity(0, sizeof saved, &saved) < 0)
        return bench_fail(err, BB_ERR_INTERNAL, "sched_getaffinity: %s", strerror(errno));
    int to_child[2], to_parent[2];
    if (pipe2(to_child, O_CLOEXEC) < 0)
        return bench_fail(err, BB_ERR_INTERNAL, "pipe: %s", strerror(errno));
    if (pipe2(to_parent, O_CLOEXEC) < 0) {
        close(to_child[0]);
        close(to_child[1]);
        return bench_fail(err, BB_ERR_INTERNAL, "pipe: %s", strerror(errno));
    }
    pid_t pid = fork();
    if (pid == 0) {   /* the echo child: async-signal-safe calls only */
        char msg[PIPE_MESSAGE_BYTES];
        pin_to(child_cpu);
        close(to_child[1]);
        close(to_parent[0]);
        while (read_full(to_child[0], msg, sizeof msg) == 0)
            if (write_full(to_parent[1], msg, sizeof msg) < 0)
                break;
        _exit(0);
    }
    close(to_child[0]);
    close(to_parent[1]);
    pin_to(parent_cpu);
    int rc = 0;
    if (pid < 0)
        rc = bench_fail(err, BB_ERR_INTERNAL, "fork: %s", strerror(errno));
    char msg[PIPE_MESSAGE_BYTES];
    memset(msg, 'x', sizeof msg);
    int total = plan->warmup_runs + plan->pipe_rtt_runs;
    for (int i = 0; rc == 0 && i < total; i++) {
        long long start = bench_now_ns();
        if (write_full(to_child[1], msg, sizeof msg) < 0 || read_full(to_parent[0], msg, sizeof msg) < 0)
            rc = bench_fail(err, BB_ERR_INTERNAL, "the pipe echo child stopped answering");
        else if (i >= plan->warmup_runs)
            rc = bench_samples_add(out, bench_now_ns() - start, err);
    }
    close(to_child[1]);
    close(to_parent[0]);
    if (pid > 0)
        waitpid(pid, NULL, 0);
    (void)sched_setaffinity(0, sizeof saved, &saved);
    return rc;
}

/* ---- fresh python3 with numpy + cv2 ----------------------------------------------- */

int bench_python_fresh(const bench_plan *plan, bench_samples *out, bb_error **err)
{
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
    char *const argv[] = {"python3", "-c", "import numpy, cv2", NULL};
    int rc = 0;
    for (int i = 0; rc == 0 && i < 1 + plan->python_fresh_runs; i++) {   /* one warm-up */
        long long start = bench_now_ns();
        pid_t pid;
        int e = posix_spawn(&pid, PYTHON, &fa, NULL, argv, python_env);
        if (e != 0) {
            rc = bench_fail(err, BB_ERR_CONFIGURATION, "cannot start %s: %s", PYTHON, strerror(e));
            break;
        }
        int status;
        while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
            ;
        long long elapsed = bench_now_ns() - start;
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
            rc = bench_fail(err, BB_ERR_CONFIGURATION, "%s -c 'import numpy, cv2' failed (status %d)",
                         PYTHON, status);
        else if (i > 0)
            rc = bench_samples_add(out, elapsed, err);
    }
    posix_spawn_file_actions_destroy(&fa);
    return rc;
}

/* ---- bare fork + wait of a process as large as the zygote ------------------------ */

/* fork + _exit + waitpid, timed, from this process as it now is. */
static int time_forks(const bench_plan *plan, bench_samples *out, bb_error **err)
{
    for (int i = 0; i < plan->warmup_runs + plan->fork_wait_runs; i++) {
        long long start = bench_now_ns();
        pid_t pid = fork();
        if (pid == 0)
            _exit(0);
        if (pid < 0)
            return bench_fail(err, BB_ERR_INTERNAL, "fork: %s", strerror(errno));
        while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
            ;
        if (i >= plan->warmup_runs && bench_samples_add(out, bench_now_ns() - start, err) < 0)
            return -1;
    }
    return 0;
}

/* Writes one byte in each of the first `bytes` bytes' pages: private, resident. */
static void touch_write(char *mem, size_t bytes, long page)
{
    for (size_t off = 0; off < bytes; off += (size_t)page)
        mem[off] = (char)(off | 1);
}

int bench_fork_wait(const bench_plan *plan, long target_rss_kib, bench_samples *out,
                    long *grown_to_kib, bb_error **err)
{
    long own = bench_rss_kib(0);
    size_t extra = target_rss_kib > own && own >= 0 ? (size_t)(target_rss_kib - own) << 10 : 0;
    char *mem = NULL;
    if (extra) {
        mem = mmap(NULL, extra, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (mem == MAP_FAILED)
            return bench_fail(err, BB_ERR_INTERNAL, "mmap %zu bytes: %s", extra, strerror(errno));
        /* Small pages, like the zygote's heap (pymalloc arenas and malloc chunks). */
        (void)madvise(mem, extra, MADV_NOHUGEPAGE);
        touch_write(mem, extra, sysconf(_SC_PAGESIZE));
    }
    *grown_to_kib = bench_rss_kib(0);
    int rc = time_forks(plan, out, err);
    if (mem)
        munmap(mem, extra);
    return rc;
}

/* One mapping made to mirror one of the zygote's. */
typedef struct mirror_map {
    void *addr;
    size_t len;
} mirror_map;

typedef struct mirror {
    mirror_map *maps;
    size_t n, cap;
    int exec_toggle;   /* alternates anonymous mappings' flags so they never merge */
} mirror;

static int mirror_add(mirror *m, void *addr, size_t len)
{
    if (m->n == m->cap) {
        size_t cap = m->cap ? m->cap * 2 : 256;
        mirror_map *grown = realloc(m->maps, cap * sizeof *grown);
        if (!grown)
            return -1;
        m->maps = grown;
        m->cap = cap;
    }
    m->maps[m->n++] = (mirror_map){addr, len};
    return 0;
}

/* Maps one VMA like the zygote's: the same file range (read, and written where the
 * zygote has private copies), or anonymous memory touched as far as the zygote's. */
static int mirror_vma(mirror *m, size_t len, const char *perms, unsigned long long offset, const char *path,
                      long rss_kib, long anon_kib, long page)
{
    int writable = perms[1] == 'w';
    size_t rss = (size_t)(rss_kib > 0 ? rss_kib : 0) << 10, anon = (size_t)(anon_kib > 0 ? anon_kib : 0) << 10;
    if (rss > len)
        rss = len;
    if (anon > len)
        anon = len;
    char *mem = MAP_FAILED;
    if (path[0] == '/' && !strstr(path, " (deleted)")) {
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        struct stat st;
        if (fd >= 0 && fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && (unsigned long long)st.st_size > offset) {
            mem = mmap(NULL, len, PROT_READ | (writable ? PROT_WRITE : 0), MAP_PRIVATE, fd, (off_t)offset);
            size_t in_file = (size_t)((unsigned long long)st.st_size - offset);
            if (mem != MAP_FAILED) {
                volatile char sink = 0;
                for (size_t off = 0; off < rss && off < in_file; off += (size_t)page)
                    sink = (char)(sink + mem[off]);
                (void)sink;
                if (writable)
                    touch_write(mem, anon < in_file ? anon : in_file, page);
            }
        }
        if (fd >= 0)
            close(fd);
        if (mem != MAP_FAILED)
            return mirror_add(m, mem, len);
    }
    if (path[0] == '[' && strcmp(path, "[heap]") != 0 && strcmp(path, "[stack]") != 0)
        return 0;   /* vdso, vvar, vsyscall: this process has its own */
    int prot = PROT_READ | PROT_WRITE | (m->exec_toggle ? PROT_EXEC : 0);
    m->exec_toggle = !m->exec_toggle;
    if (!writable && anon == 0)
        prot = PROT_READ;
    /* Only the resident part: pages never touched cost a fork nothing, and some
     * reservations (guard areas, sanitizer shadow) are far larger than memory. */
    size_t want = anon > rss ? anon : rss;
    want = want > (size_t)page ? want : (size_t)page;
    mem = mmap(NULL, want, prot, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (mem == MAP_FAILED)
        return -1;
    if (prot & PROT_WRITE)
        touch_write(mem, anon, page);
    return mirror_add(m, mem, want);
}

int bench_fork_wait_mirror(const bench_plan *plan, pid_t zygote, bench_samples *out, long *vmas,
                           long *grown_to_kib, bb_error **err)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/smaps", (int)zygote);
    FILE *f = fopen(path, "re");
    if (!f)
        return bench_fail(err, BB_ERR_BACKEND_UNAVAILABLE, "cannot read %s: %s", path, strerror(errno));
    long page = sysconf(_SC_PAGESIZE);
    mirror m = {0};
    char line[4400], vma_path[4096] = "", perms[8] = "";
    unsigned long long start = 0, end = 0, offset = 0;
    long rss = -1, anon = -1;
    int have = 0, rc = 0;
    *vmas = 0;
    for (;;) {
        char *got = fgets(line, sizeof line, f);
        unsigned long long s0, e0, off0;
        char p0[8];
        int consumed = 0;
        int is_header = got && sscanf(line, "%llx-%llx %7s %llx %*s %*s%n", &s0, &e0, p0, &off0, &consumed) == 4;
        if ((is_header || !got) && have) {
            if (mirror_vma(&m, (size_t)(end - start), perms, offset, vma_path, rss, anon, page) < 0) {
                rc = bench_fail(err, BB_ERR_INTERNAL, "cannot mirror the zygote's mapping %s: %s", vma_path,
                             strerror(errno));
                break;
            }
            (*vmas)++;
            have = 0;
        }
        if (!got)
            break;
        if (is_header) {
            start = s0;
            end = e0;
            offset = off0;
            snprintf(perms, sizeof perms, "%s", p0);
            const char *rest = line + consumed;
            rest += strspn(rest, " \t");
            snprintf(vma_path, sizeof vma_path, "%s", rest);
            vma_path[strcspn(vma_path, "\n")] = '\0';
            rss = anon = -1;
            have = 1;
        } else if (strncmp(line, "Rss:", 4) == 0) {
            rss = strtol(line + 4, NULL, 10);
        } else if (strncmp(line, "Anonymous:", 10) == 0) {
            anon = strtol(line + 10, NULL, 10);
        }
    }
    fclose(f);
    *grown_to_kib = bench_rss_kib(0);
    if (rc == 0 && *vmas == 0)
        rc = bench_fail(err, BB_ERR_BACKEND_UNAVAILABLE, "the zygote's mappings could not be read");
    if (rc == 0)
        rc = time_forks(plan, out, err);
    for (size_t i = 0; i < m.n; i++)
        munmap(m.maps[i].addr, m.maps[i].len);
    free(m.maps);
    return rc;
}

/* ---- in-process exec (one Python helper, no isolation) ---------------------------- */

static int write_file(const char *dir, const char *name, const char *data, size_t len, bb_error **err)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return bench_fail(err, BB_ERR_INTERNAL, "cannot write %s: %s", path, strerror(errno));
    int rc = write_full(fd, data, len);
    close(fd);
    return rc < 0 ? bench_fail(err, BB_ERR_INTERNAL, "cannot write %s", path) : 0;
}

/* Writes NAME.load and NAME.run: the envelopes the executor sends for this block. */
static int write_envelopes(const char *dir, const char *name, const char *code, const char *inputs,
                           size_t inputs_len, bb_error **err)
{
    char hash[33];
    bb_wire_code_hash(code, NULL, 0, hash);
    bb_wire_block block = {
        .info = {.code_hash = hash, .run_code = code, .run_function_name = "run", .init_function_name = "init"}};
    bb_buf load = {0}, run = {0};
    int rc = bb_wire_build_request(&block, 1, NULL, 0, NULL, &load, err);
    if (rc == 0)
        rc = bb_wire_build_request(&block, 0, inputs, inputs_len, NULL, &run, err);
    if (rc == 0 && (load.failed || run.failed))
        rc = bench_fail(err, BB_ERR_INTERNAL, "out of memory");
    char file[64];
    snprintf(file, sizeof file, "%s.load", name);
    if (rc == 0)
        rc = write_file(dir, file, load.data, load.len, err);
    snprintf(file, sizeof file, "%s.run", name);
    if (rc == 0)
        rc = write_file(dir, file, run.data, run.len, err);
    bb_buf_free(&load);
    bb_buf_free(&run);
    return rc;
}

static int read_samples(const cJSON *root, const char *key, bench_samples *out, bb_error **err)
{
    const cJSON *list = cJSON_GetObjectItemCaseSensitive(root, key);
    if (!cJSON_IsArray(list))
        return bench_fail(err, BB_ERR_INVALID_RESPONSE, "the in-process helper gave no \"%s\" samples", key);
    const cJSON *v;
    cJSON_ArrayForEach(v, list) {
        if (!cJSON_IsNumber(v) || v->valuedouble < 0)
            return bench_fail(err, BB_ERR_INVALID_RESPONSE, "the in-process helper gave a bad sample");
        if (bench_samples_add(out, (long long)v->valuedouble, err) < 0)
            return -1;
    }
    return 0;
}

static char *slurp(const char *path, size_t max)
{
    FILE *f = fopen(path, "re");
    if (!f)
        return NULL;
    bb_buf b = {0};
    char chunk[65536];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0 && b.len <= max)
        bb_buf_append(&b, chunk, n);
    fclose(f);
    if (b.len > max) {
        bb_buf_free(&b);
        return NULL;
    }
    return bb_buf_steal(&b, NULL);
}

static void remove_dir(const char *dir)
{
    static const char *const names[] = {"blockbox_runtime.py", "inprocess.py", "trivial.load", "trivial.run",
                                        "image.load", "image.run", "out.json"};
    char path[4200];
    for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        unlink(path);
    }
    rmdir(dir);
}

int bench_in_process(const bench_plan *plan, bench_samples *trivial, bench_samples *image,
                     bench_samples *numpy_invert, bb_error **err)
{
    const char *tmp = getenv("TMPDIR");
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/blockbox-bench-XXXXXX", tmp && *tmp && strlen(tmp) < 3000 ? tmp : "/tmp");
    if (!mkdtemp(dir))
        return bench_fail(err, BB_ERR_INTERNAL, "mkdtemp: %s", strerror(errno));
    size_t image_len = 0;
    char *image_inputs = bench_image_inputs(&image_len, err);
    int rc = image_inputs ? 0 : -1;
    if (rc == 0)
        rc = write_file(dir, "blockbox_runtime.py", bb_bench_runtime_py, bb_bench_runtime_py_len, err);
    if (rc == 0)
        rc = write_file(dir, "inprocess.py", bb_bench_inprocess_py, bb_bench_inprocess_py_len, err);
    if (rc == 0)
        rc = write_envelopes(dir, "trivial", bench_trivial_code, bench_trivial_inputs,
                             strlen(bench_trivial_inputs), err);
    if (rc == 0)
        rc = write_envelopes(dir, "image", bench_image_code, image_inputs, image_len, err);
    free(image_inputs);

    char script[4200], out_path[4200], pythonpath[4200], warmup[32], nt[32], ni[32], nn[32], h[16], w[16];
    snprintf(script, sizeof script, "%s/inprocess.py", dir);
    snprintf(out_path, sizeof out_path, "%s/out.json", dir);
    snprintf(pythonpath, sizeof pythonpath, "PYTHONPATH=%s", dir);
    snprintf(warmup, sizeof warmup, "%d", plan->warmup_runs);
    snprintf(nt, sizeof nt, "%d", plan->inproc_runs);
    snprintf(ni, sizeof ni, "%d", plan->inproc_image_runs);
    snprintf(nn, sizeof nn, "%d", plan->numpy_runs);
    snprintf(h, sizeof h, "%d", BENCH_IMAGE_H);
    snprintf(w, sizeof w, "%d", BENCH_IMAGE_W);
    char *const argv[] = {"python3", script, dir, warmup, nt, ni, nn, h, w, NULL};
    char *const envp[] = {pythonpath, "PYTHONDONTWRITEBYTECODE=1", python_env[0], python_env[1],
                          python_env[2], python_env[3], python_env[4], NULL};
    if (rc == 0) {
        posix_spawn_file_actions_t fa;
        posix_spawn_file_actions_init(&fa);
        posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
        posix_spawn_file_actions_addopen(&fa, 1, out_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        pid_t pid;
        int e = posix_spawn(&pid, PYTHON, &fa, NULL, argv, envp);
        posix_spawn_file_actions_destroy(&fa);
        int status = 0;
        if (e != 0)
            rc = bench_fail(err, BB_ERR_CONFIGURATION, "cannot start %s: %s", PYTHON, strerror(e));
        else {
            while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
                ;
            if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
                rc = bench_fail(err, BB_ERR_CONFIGURATION,
                             "the in-process baseline helper failed (status %d; see its stderr)", status);
        }
    }
    if (rc == 0) {
        char *text = slurp(out_path, 64u << 20);
        cJSON *root = text ? cJSON_Parse(text) : NULL;
        free(text);
        if (!root)
            rc = bench_fail(err, BB_ERR_INVALID_RESPONSE, "the in-process helper printed no JSON");
        else {
            rc = read_samples(root, "trivial", trivial, err);
            if (rc == 0)
                rc = read_samples(root, "image", image, err);
            if (rc == 0)
                rc = read_samples(root, "numpy_invert", numpy_invert, err);
        }
        cJSON_Delete(root);
    }
    remove_dir(dir);
    return rc;
}
