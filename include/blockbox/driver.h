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

/* The driver ABI, and the rules for growing it (as sqlite3_vfs grows by iVersion and
 * curl's backends declare their sizes):
 *
 *  1. BB_DRIVER_ABI_VERSION is the major version. It is bumped only by a change that
 *     breaks a built plugin (a slot removed, moved or retyped; a call's meaning
 *     changed). A driver declaring a newer major than the library's is refused with a
 *     ConfigurationError naming both; 0 is refused too.
 *  2. Within a major, the structs only grow: a new optional slot is appended at the end
 *     of struct bb_driver (after every existing one, never between), and a driver that
 *     leaves it NULL/0 behaves as before. No slot ever changes type or meaning.
 *  3. A driver says how much of the struct it knows in struct_size (BB_DRIVER_SIZE, i.e.
 *     sizeof(bb_driver) as it was compiled). The core reads a slot only when struct_size
 *     covers it, so a plugin built against a smaller struct is accepted and its missing
 *     slots are treated as absent. A struct_size of 0 means the ABI 1 slots only (a
 *     plugin source from before struct_size, rebuilt unchanged); one that is not 0 but
 *     too small to hold struct_size itself is refused.
 *  4. ABI 1 drivers (abi_version 1, built before struct_size existed) are still
 *     accepted: their struct is the prefix up to `close`, nothing after it is read.
 *  5. Functions for drivers (bb_call_*, bb_setting_*, bb_driver_*) are only ever added,
 *     never changed. The entry point is given the library's major: a plugin should
 *     refuse only a library older than the major it needs, never a newer one.
 *  6. A new slot is documented here with the version of blockbox that added it. */
#define BB_DRIVER_ABI_VERSION 2u
#define BB_DRIVER_SIZE (sizeof(bb_driver))

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

/* For a driver that takes buffers but sends JSON text only (the modal driver; added in
 * ABI 2 after load_reply): the envelope with every buffer of the call written into the wire's JSON
 * forms (docs/wire.md "Buffers"). An ndarray's `"buffer": i` becomes `"data":
 * "<base64>"`; a raw workflow_image, its pixels in a buffer or in `data`, becomes a
 * base64 image: its `type` member is "base64" and its pixels are `"value": "<base64 of the
 * image file encode writes>"`, its other members (shape, dtype, video_metadata, parents)
 * kept. encode(ctx, pixels, height, width, channels, write, sink) gets the frame as the
 * caller holds it (uint8, C order, rows of width x channels bytes; 1 grey, 3 BGR, 4 BGRA)
 * and writes the file's bytes through write(sink, bytes, n), which base64-encodes them
 * straight into the envelope (no copy of the file is kept); both return 0, or -1.
 * Everything else is as in bb_call_envelope. Returns the envelope (malloc'd; the driver
 * frees it); NULL with *err NULL when the inputs name no buffer and hold no raw image
 * (use bb_call_envelope); NULL with *err set on failure (InternalError). */
typedef int (*bb_call_write_fn)(void *sink, const void *bytes, size_t n);
typedef int (*bb_call_image_fn)(void *ctx, const unsigned char *pixels, size_t height, size_t width,
                                size_t channels, bb_call_write_fn write, void *sink);
char *bb_call_envelope_encoded(const bb_call *call, int with_code, bb_call_image_fn encode, void *ctx,
                               size_t *len, bb_error **err);

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

/* A setting a driver declares (bb_driver.settings): the core reads it from the
 * environment and by key (bb_config_set), checks it against this declaration
 * (ConfigurationError naming the variable otherwise) and refuses a key no driver
 * declares; the driver reads the checked value with bb_setting_* below. */
typedef enum {
    BB_SETTING_STRING,
    BB_SETTING_SECRET,     /* a string never read back (bb_config_get says "(set)"), wiped on free */
    BB_SETTING_BOOL,       /* True/False, 1/0, yes/no, on/off */
    BB_SETTING_LONG,       /* a whole number from min to max */
    BB_SETTING_SECONDS     /* seconds in whole milliseconds, from min to max milliseconds */
} bb_setting_type;

#define BB_SETTING_ZERO_IS_DEFAULT 1u   /* SECONDS: 0 is allowed below min and means "the default" */

typedef struct bb_setting {
    const char *key;            /* [a-z][a-z0-9_]{0,63}; unique among the core's and all drivers' */
    const char *env;            /* its environment variable ([A-Z][A-Z0-9_]*), or NULL */
    bb_setting_type type;
    const char *default_value;  /* as text, checked like a value; NULL: unset */
    long min, max;              /* LONG: the range; SECONDS: the range in milliseconds */
    unsigned flags;             /* BB_SETTING_ZERO_IS_DEFAULT */
    const char *help;           /* one line for people (README, doctor) */
} bb_setting;

/* The checked value of any setting, the core's or a driver's, by key. A driver
 * reads its own and the core's settings (timeout, max_output_bytes, ...) with these;
 * unlike bb_config_get, bb_setting_string gives a secret's own value. An unset
 * string is NULL; a key that is not declared, or of another type, reads as NULL/0. */
const char *bb_setting_string(const bb_config *cfg, const char *key);
long bb_setting_long(const bb_config *cfg, const char *key);
double bb_setting_seconds(const bb_config *cfg, const char *key);
int bb_setting_bool(const bb_config *cfg, const char *key);
/* The largest response envelope the core can accept under this config (results,
 * streams and the error texts at their limits): what a driver caps a read at. */
size_t bb_driver_max_response(const bb_config *cfg);

typedef struct bb_driver {
    /* ---- ABI 1: every driver has these ---------------------------------------- */
    unsigned abi_version;   /* BB_DRIVER_ABI_VERSION (the major) */
    const char *name;       /* matched case-insensitively against the mode */
    const char *summary;    /* one line for `blockbox doctor` and error messages */

    /* Every function returns 0 on success, or -1 with *err set (bb_error_new). */
    int (*open)(const bb_config *cfg, void **driver_state, bb_error **err);
    /* Loads a block; may be NULL when load_reply is set (below). */
    int (*load)(void *driver_state, const bb_block_info *block, void **block_state,
                bb_error **err);
    /* Runs of one block never overlap; runs of different blocks may, on any thread. */
    int (*run)(void *driver_state, void *block_state, const bb_call *call,
               bb_reply *reply, bb_error **err);
    void (*unload)(void *driver_state, void *block_state);
    /* A JSON object (malloc'd text) describing the backend, or NULL. */
    char *(*describe)(void *driver_state);
    void (*close)(void *driver_state);

    /* ---- ABI 2 (blockbox 0.9): read only when abi_version >= 2 ---------------- */
    size_t struct_size;     /* BB_DRIVER_SIZE: the slots below it are present */
    /* The driver's own settings (NULL, 0: none); the table stays valid while the
     * driver is registered. */
    const bb_setting *settings;
    size_t n_settings;
    /* A load that answers: for a backend that loads eagerly (sends block->load_envelope
     * and runs init). Used instead of load when set. On 0, reply->body must hold the
     * backend's response envelope to the load (malloc'd; the core frees it): the core
     * validates it as it does a run's, and a failed load there (the block's init
     * raised, an invalid envelope) makes the core unload the block and return that
     * error. Buffers and denials in a load reply are released and ignored. */
    int (*load_reply)(void *driver_state, const bb_block_info *block, void **block_state,
                      bb_reply *reply, bb_error **err);
    /* Append new slots here, and only here (rule 2 above). */
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

/* The first two slots of a bb_driver for this ABI: `{BB_DRIVER_HEAD, .name = ...}` */
#define BB_DRIVER_HEAD .abi_version = BB_DRIVER_ABI_VERSION, .struct_size = BB_DRIVER_SIZE

#ifdef __cplusplus
}
#endif
#endif
