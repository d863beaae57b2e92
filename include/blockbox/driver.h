/* blockbox/driver.h: the versioned driver ABI. A driver is one struct of function
 * pointers; the executor finds drivers only through a registry (like sqlite3_vfs). */
#ifndef BLOCKBOX_DRIVER_H
#define BLOCKBOX_DRIVER_H

#include <stdarg.h>
#include <stddef.h>

#include "../blockbox.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Bumped on any incompatible change of the structs below. A plugin built for
 * another version is refused with a ConfigurationError. */
#define BB_DRIVER_ABI_VERSION 1u

/* What a driver is told about a block when it is loaded. All strings stay valid
 * until the driver's unload is called. */
typedef struct bb_block_info {
    const char *code_hash;          /* md5 hex of run code + "\n" + imports */
    const char *run_code;
    const char *run_function_name;
    const char *init_code;          /* may be NULL */
    const char *init_function_name;
    const char *const *imports;
    size_t n_imports;
    const char *workspace_id;       /* may be NULL */
    int max_inputs;                 /* runs per worker; 0 unlimited */
    /* The DESIGN §3 request envelope for this block with the code and no inputs:
     * what a backend that loads eagerly (runs init) is sent at load time. */
    const char *load_envelope;
    size_t load_envelope_len;
} bb_block_info;

/* One run. Opaque; read it with the accessors below. */
typedef struct bb_call bb_call;

/* The request envelope (DESIGN §3) of this call. with_code = 0 leaves out the code
 * (hash-only form, for a backend that already knows the block); with_code = 1 has
 * everything. The text stays owned by the call. NULL only when out of memory. */
const char *bb_call_envelope(const bb_call *call, int with_code, size_t *len);
/* The wall-clock budget of this call in milliseconds. */
long bb_call_timeout_ms(const bb_call *call);
/* The buffers of this call (blockbox.h "buffers"), checked by the core: each named
 * exactly once by the inputs, lengths as their shapes say. Asking for the count
 * before the first bb_call_envelope says this driver takes buffers: its envelopes
 * then keep the `"buffer": i` references. A driver that does not ask (or asks after
 * its first envelope) gets envelopes with the buffers written into the JSON `data`
 * form, and a count of 0. The memory stays valid, read-only, until run returns. */
size_t bb_call_buffer_count(const bb_call *call);
const void *bb_call_buffer(const bb_call *call, size_t i, size_t *len);
/* 1 if the caller reads result buffers (bb_block_run_buffers); 0 for a JSON-only
 * caller (bb_block_run), for which the core writes any buffers the driver returns into
 * the JSON `data` form: ndarrays may still come back as buffers, but forms only a
 * buffer-aware caller reads (raw workflow_image) should not. */
int bb_call_result_buffers(const bb_call *call);
/* For a driver that takes buffers and has memory of its own for them (the local
 * driver's arena): every ndarray or raw workflow_image of the inputs still in the JSON
 * `data` form is decoded into memory alloc(ctx, len) gives, and named `"buffer": k`
 * instead (k after the call's own buffers, in text order). Returns that envelope
 * (malloc'd; the driver frees it) and *n_moved, the decoded buffers, in the order alloc
 * was called; NULL with *n_moved 0 when there were none (use bb_call_envelope), NULL with
 * *err set on failure (InvalidRequest when alloc returned NULL: no room). */
typedef void *(*bb_call_alloc_fn)(void *ctx, size_t len);
char *bb_call_envelope_arrays(const bb_call *call, int with_code, bb_call_alloc_fn alloc, void *ctx,
                              size_t *n_moved, size_t *len, bb_error **err);
/* The envelope with the call's buffers written into the `data` form, for a driver that
 * takes buffers but cannot place them this time. malloc'd; NULL when out of memory. */
char *bb_call_envelope_data(const bb_call *call, int with_code, size_t *len);

/* What a run hands back: a DESIGN §3 response envelope as received from the
 * backend (malloc'd; the core frees it and validates every byte of it), and
 * whether the block instance was restarted for this call (its previous process was
 * lost, so module state is fresh and init ran again; bb_result_restarted). The core
 * zeroes the struct before the call. */
typedef struct bb_reply {
    char *body;
    size_t len;
    /* What the driver saw itself (trusted, unlike the body): the system calls its
     * sandbox denied during this call, "name,name" ([a-z0-9_]{1,32} each), malloc'd;
     * the core frees it. NULL: this driver does not observe denials (the core then
     * takes the body's denied_syscalls); "": none. Zeroed by the core before run. */
    char *denied;
    /* The block instance was restarted for this call (see above). */
    int restarted;
    /* Output buffers the body's result names by index ("buffer": i), as untrusted as
     * the body: the core checks each against the result's typed values and refuses
     * the reply (InvalidResponse / OutputLimit) otherwise. `buffers` is malloc'd (at
     * most BB_MAX_BUFFERS entries); each entry is released by its `release` (NULL:
     * free(data)). The core takes all of it, on success and on failure alike, once
     * run returns 0; after a failed run (-1) the driver has released them itself.
     * Appended to the struct: drivers that know nothing of buffers leave them zero. */
    struct bb_reply_buffer *buffers;
    size_t n_buffers;
} bb_reply;

typedef struct bb_reply_buffer {
    void *data;
    size_t len;
    void (*release)(void *data, size_t len, void *ctx);
    void *ctx;
} bb_reply_buffer;

typedef struct bb_driver {
    unsigned abi_version;   /* BB_DRIVER_ABI_VERSION */
    const char *name;       /* matched case-insensitively against the mode */
    const char *summary;    /* one line for `blockbox doctor` and error messages */

    /* Every function returns 0 on success, or -1 with *err set (bb_error_new). */
    int (*open)(const bb_config *cfg, void **driver_state, bb_error **err);
    int (*load)(void *driver_state, const bb_block_info *block, void **block_state,
                bb_error **err);
    /* Runs of one block never overlap; runs of different blocks may, on any thread. */
    int (*run)(void *driver_state, void *block_state, const bb_call *call,
               bb_reply *reply, bb_error **err);
    void (*unload)(void *driver_state, void *block_state);
    /* A JSON object (malloc'd text) describing the backend, or NULL. */
    char *(*describe)(void *driver_state);
    void (*close)(void *driver_state);
} bb_driver;

/* Errors for drivers to return. */
bb_error *bb_error_new(bb_error_kind kind, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* The registry an executor consults. A plugin shared object named by
 * BLOCKBOX_DRIVER_PATH (colon separated) exports BB_DRIVER_ENTRY, which is called
 * with the registry and the ABI version of the library loading it. */
typedef struct bb_registry bb_registry;
int bb_registry_add(bb_registry *reg, const bb_driver *driver, bb_error **err);

#define BB_DRIVER_ENTRY "blockbox_driver_entry"
typedef int (*bb_driver_entry_fn)(bb_registry *reg, unsigned abi_version, bb_error **err);

#ifdef __cplusplus
}
#endif
#endif
