/* wire_values.c: checks the typed values (DESIGN §3 `_type` tags) inside inputs,
 * contexts and results, naming the path of anything wrong; never decodes pixels. */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "frames.h"
#include "iso8601.h"
#include "json_text.h"
#include "wire.h"

#define NDARRAY_MAX_DIMS 32
#define NDARRAY_MAX_DIM ((double)INT32_MAX)
#define PATH_MAX_LEN 200

/* ---- the walk ------------------------------------------------------------------ */

typedef struct checker {
    const bb_limits *limits;
    bb_error_kind kind;
    const char *what;
    bb_error **err;
    size_t max_array_bytes; /* ndarray size bound: the limit of the text it travels in */
    char path[PATH_MAX_LEN + 8];
    size_t path_len;
} checker;

static int fail_at(checker *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fail_at(checker *c, const char *fmt, ...)
{
    char message[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(message, sizeof message, fmt, ap);
    va_end(ap);
    if (c->path_len)
        return bb_fail(c->err, c->kind, "%s: %s: %s", c->what, c->path, message);
    return bb_fail(c->err, c->kind, "%s: %s", c->what, message);
}

/* Appends one path step; returns the length to restore with path_pop. */
static size_t path_push_key(checker *c, const char *key)
{
    size_t saved = c->path_len;
    char shown[48];
    bb_wire_printable(key, shown, sizeof shown);
    int n = snprintf(c->path + c->path_len, sizeof c->path - c->path_len,
                     c->path_len ? ".%s" : "'%s'", shown);
    if (n > 0)
        c->path_len = strnlen(c->path, sizeof c->path - 1);
    return saved;
}

static size_t path_push_index(checker *c, int index)
{
    size_t saved = c->path_len;
    int n = snprintf(c->path + c->path_len, sizeof c->path - c->path_len, "[%d]", index);
    if (n > 0)
        c->path_len = strnlen(c->path, sizeof c->path - 1);
    return saved;
}

static void path_pop(checker *c, size_t saved)
{
    c->path_len = saved;
    c->path[saved] = '\0';
}

static const cJSON *field(const cJSON *object, const char *key)
{
    return cJSON_GetObjectItemCaseSensitive(object, key);
}

static int is_null_or_absent(const cJSON *item) { return !item || cJSON_IsNull(item); }

/* An integral JSON number that a double holds exactly. */
static int is_integer(const cJSON *item)
{
    if (!cJSON_IsNumber(item))
        return 0;
    double v = item->valuedouble;
    return isfinite(v) && v == floor(v) && fabs(v) <= 9007199254740992.0;
}

static int check_value(checker *c, const cJSON *value, int depth);

static int check_depth(checker *c, int depth)
{
    if (depth > c->limits->max_depth)
        return fail_at(c, "nested deeper than %d levels", c->limits->max_depth);
    return 0;
}

/* Checks the members of a tagged object that its tag does not define: they are
 * ordinary values and may hide typed values of their own. */
static int check_other_members(checker *c, const cJSON *object, const char *const *known, int depth)
{
    for (const cJSON *member = object->child; member; member = member->next) {
        int is_known = 0;
        for (const char *const *k = known; *k && !is_known; k++)
            is_known = strcmp(member->string, *k) == 0;
        if (is_known)
            continue;
        size_t saved = path_push_key(c, member->string);
        int rc = check_value(c, member, depth + 1);
        path_pop(c, saved);
        if (rc < 0)
            return -1;
    }
    return 0;
}

/* A member a tag reads fields of (sv_detections' `image`, an image's origins) is also
 * checked whole, as any value: a typed value hidden in it, or the member itself tagged,
 * is checked and claims its buffer like any other. Without this the `buffer`/`data`
 * rewrite (frames.c), which finds every tagged object in the text, touched values no
 * check had seen (attack note F2). */
static int check_whole(checker *c, const cJSON *member, const char *key, int depth)
{
    size_t saved = path_push_key(c, key);
    int rc = check_value(c, member, depth);
    path_pop(c, saved);
    return rc;
}

/* ---- base64 and images ------------------------------------------------------- */

static long long check_base64_field(checker *c, const cJSON *object, const char *key, const char *tag)
{
    const cJSON *item = field(object, key);
    if (!item)
        return fail_at(c, "%s needs '%s' (a base64 string)", tag, key);
    if (!cJSON_IsString(item) || !item->valuestring)
        return fail_at(c, "%s '%s' must be a base64 string", tag, key);
    size_t len = strlen(item->valuestring);
    long long n = bb_base64_check(item->valuestring, len);
    if (n < 0)
        return fail_at(c, "%s '%s' is not valid base64 (standard alphabet, padded, no whitespace)", tag,
                       key);
    return n;
}

/* The C side never decodes pixels; it only looks at the file signature, so the
 * sandbox is handed nothing but the two formats the contract names. */
static int check_image_base64(checker *c, const cJSON *object, const char *tag)
{
    long long n = check_base64_field(c, object, "value", tag);
    if (n < 0)
        return -1;
    const char *text = field(object, "value")->valuestring;
    size_t len = strlen(text);
    unsigned char *head = NULL;
    size_t head_len = 0;
    if (bb_base64_decode(text, len < 12 ? len : 12, &head, &head_len) < 0)
        return fail_at(c, "%s 'value' is not valid base64", tag);
    static const unsigned char png[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'};
    int is_png = head_len >= 8 && memcmp(head, png, 8) == 0;
    int is_jpeg = head_len >= 3 && head[0] == 0xFF && head[1] == 0xD8 && head[2] == 0xFF;
    free(head);
    if (!is_png && !is_jpeg)
        return fail_at(c, "%s 'value' is not a JPEG or PNG image (%lld bytes)", tag, n);
    return 0;
}

/* ---- small typed fields ------------------------------------------------------ */

static int check_string_member(checker *c, const cJSON *object, const char *key, const char *tag,
                               int required)
{
    const cJSON *item = field(object, key);
    if (!item && !required)
        return 0;
    if (!item)
        return fail_at(c, "%s needs '%s' (a string)", tag, key);
    if (!cJSON_IsString(item))
        return fail_at(c, "%s '%s' must be a string", tag, key);
    return 0;
}

static int check_optional_type(checker *c, const cJSON *object, const char *key, const char *tag,
                               int (*ok)(const cJSON *), const char *expected)
{
    const cJSON *item = field(object, key);
    if (is_null_or_absent(item) || ok(item))
        return 0;
    return fail_at(c, "%s '%s' must be %s or null", tag, key, expected);
}

static int is_string(const cJSON *item) { return cJSON_IsString(item); }
static int is_number(const cJSON *item) { return cJSON_IsNumber(item); }
static int is_bool(const cJSON *item) { return cJSON_IsBool(item); }
static int is_count(const cJSON *item) { return is_integer(item) && item->valuedouble >= 0; }
static int is_datetime(const cJSON *item)
{
    return cJSON_IsString(item) && item->valuestring && bb_valid_iso8601(item->valuestring);
}

static const char *const video_metadata_keys[] = {"_type", "video_identifier", "frame_number",
                                                  "frame_timestamp", "fps", "measured_fps",
                                                  "comes_from_video_file", NULL};

static int check_video_metadata_fields(checker *c, const cJSON *object, int depth)
{
    const char *tag = "video_metadata";
    if (check_depth(c, depth) < 0)
        return -1;
    if (check_optional_type(c, object, "video_identifier", tag, is_string, "a string") < 0 ||
        check_optional_type(c, object, "frame_number", tag, is_count, "a non-negative integer") < 0 ||
        check_optional_type(c, object, "frame_timestamp", tag, is_datetime, "an ISO 8601 string") < 0 ||
        check_optional_type(c, object, "fps", tag, is_number, "a number") < 0 ||
        check_optional_type(c, object, "measured_fps", tag, is_number, "a number") < 0 ||
        check_optional_type(c, object, "comes_from_video_file", tag, is_bool, "true/false") < 0)
        return -1;
    return check_other_members(c, object, video_metadata_keys, depth);
}

static int check_origin(checker *c, const cJSON *object, const char *key, int depth)
{
    const cJSON *origin = field(object, key);
    if (is_null_or_absent(origin))
        return 0;
    if (!cJSON_IsObject(origin))
        return fail_at(c, "workflow_image '%s' must be an object {offset_x, offset_y, width, height}", key);
    if (check_depth(c, depth + 1) < 0)
        return -1;
    static const char *const names[] = {"offset_x", "offset_y", "width", "height"};
    for (int i = 0; i < 4; i++) {
        const cJSON *v = field(origin, names[i]);
        if (!cJSON_IsNumber(v) || (i >= 2 && v->valuedouble < 0))
            return fail_at(c, "workflow_image '%s' needs '%s' as a%s number", key, names[i],
                           i >= 2 ? " non-negative" : "");
    }
    return check_whole(c, origin, key, depth + 1);
}

/* ---- the tags ------------------------------------------------------------------ */

/* A raw frame (frames.h): uint8 pixels in BGR order, C order, shape [h, w] or
 * [h, w, c] with c 1, 3 or 4, in a buffer or in `data` (base64 of the bytes). */
static int check_raw_image(checker *c, const cJSON *object)
{
    const cJSON *dims = field(object, "shape");
    double extent[3] = {1, 1, 1};
    int n = 0;
    if (cJSON_IsArray(dims)) {
        for (const cJSON *d = dims->child; d; d = d->next, n++) {
            if (n >= 3 || !is_count(d) || d->valuedouble < 1 || d->valuedouble > NDARRAY_MAX_DIM) {
                n = -1;
                break;
            }
            extent[n] = d->valuedouble;
        }
    }
    if (n < 2 || (n == 3 && extent[2] != 1 && extent[2] != 3 && extent[2] != 4))
        return fail_at(c, "a raw workflow_image needs 'shape' [height, width] or [height, width, "
                          "channels] (positive; 1, 3 or 4 channels)");
    const cJSON *dtype = field(object, "dtype");
    if (dtype && (!cJSON_IsString(dtype) || strcmp(dtype->valuestring, "uint8") != 0))
        return fail_at(c, "a raw workflow_image is uint8 ('dtype' may only say \"uint8\")");
    double need = extent[0] * extent[1] * extent[2];
    if (need > (double)c->max_array_bytes)
        return fail_at(c, "a raw workflow_image of %.0f bytes is over the size limit of %zu bytes", need,
                       c->max_array_bytes);
    const cJSON *buffer = field(object, "buffer");
    const cJSON *data = field(object, "data");
    if ((buffer != NULL) == (data != NULL))
        return fail_at(c, "a raw workflow_image needs exactly one of 'buffer' (an index into the "
                          "buffers) or 'data' (base64 of the pixels)");
    if (data) {
        long long got = check_base64_field(c, object, "data", "workflow_image");
        if (got < 0)
            return -1;
        if ((double)got != need)
            return fail_at(c, "raw workflow_image data is %lld bytes, its shape needs %.0f", got, need);
        return 0;
    }
    char why[160];
    if (bb_frames_claim(c->limits->buffers, buffer, need, why, sizeof why) < 0)
        return fail_at(c, "raw workflow_image: %s", why);
    return 0;
}

static int check_workflow_image(checker *c, const cJSON *object, int depth)
{
    static const char *const known[] = {"_type", "type", "value", "video_metadata", "parent_id",
                                        "parent_origin", "root_parent_id", "root_parent_origin", NULL};
    static const char *const known_raw[] = {"_type", "type", "shape", "dtype", "buffer", "data",
                                            "video_metadata", "parent_id", "parent_origin",
                                            "root_parent_id", "root_parent_origin", NULL};
    const cJSON *type = field(object, "type");
    int raw = cJSON_IsString(type) && strcmp(type->valuestring, "raw") == 0;
    if (!raw && (!cJSON_IsString(type) || strcmp(type->valuestring, "base64") != 0))
        return fail_at(c, "workflow_image needs 'type': \"base64\" (or \"raw\" for a BGR frame)");
    if (raw ? check_raw_image(c, object) < 0 : check_image_base64(c, object, "workflow_image") < 0)
        return -1;
    const cJSON *metadata = field(object, "video_metadata");
    if (!is_null_or_absent(metadata)) {
        if (!cJSON_IsObject(metadata))
            return fail_at(c, "workflow_image 'video_metadata' must be an object or null");
        if (check_video_metadata_fields(c, metadata, depth + 1) < 0)
            return -1;
    }
    if (check_optional_type(c, object, "parent_id", "workflow_image", is_string, "a string") < 0 ||
        check_optional_type(c, object, "root_parent_id", "workflow_image", is_string, "a string") < 0 ||
        check_origin(c, object, "parent_origin", depth) < 0 ||
        check_origin(c, object, "root_parent_origin", depth) < 0)
        return -1;
    return check_other_members(c, object, raw ? known_raw : known, depth);
}

/* The untagged Roboflow form {"type": "base64", "value": …}. */
static int check_untagged_image(checker *c, const cJSON *object, int depth)
{
    static const char *const known[] = {"type", "value", NULL};
    if (check_image_base64(c, object, "image") < 0)
        return -1;
    return check_other_members(c, object, known, depth);
}

static int check_prediction(checker *c, const cJSON *p, int depth)
{
    static const char *const known[] = {"x", "y", "width", "height", "confidence", "class_id",
                                        "class", "detection_id", NULL};
    if (!cJSON_IsObject(p))
        return fail_at(c, "a prediction must be an object");
    if (check_depth(c, depth) < 0)
        return -1;
    /* Inputs carry every Roboflow field; a block's own sv.Detections may lack
     * confidence, class_id and class, so in results those are checked when present. */
    int strict = c->kind == BB_ERR_INVALID_REQUEST;
    static const char *const numbers[] = {"x", "y", "width", "height", "confidence"};
    for (int i = 0; i < 5; i++) {
        const cJSON *v = field(p, numbers[i]);
        if (!cJSON_IsNumber(v) && (i < 4 || strict || !is_null_or_absent(v)))
            return fail_at(c, "prediction needs '%s' as a number", numbers[i]);
    }
    const cJSON *class_id = field(p, "class_id");
    if (!is_integer(class_id) && (strict || !is_null_or_absent(class_id)))
        return fail_at(c, "prediction needs 'class_id' as an integer");
    if (check_string_member(c, p, "class", "prediction", strict) < 0 ||
        check_string_member(c, p, "detection_id", "prediction", 0) < 0)
        return -1;
    return check_other_members(c, p, known, depth);
}

static int check_sv_detections(checker *c, const cJSON *object, int depth)
{
    static const char *const known[] = {"_type", "image", "predictions", NULL};
    const cJSON *image = field(object, "image");
    if (!cJSON_IsObject(image) || !is_count(field(image, "width")) || !is_count(field(image, "height")))
        return fail_at(c, "sv_detections needs 'image': {width, height} as non-negative integers");
    const cJSON *predictions = field(object, "predictions");
    if (!cJSON_IsArray(predictions))
        return fail_at(c, "sv_detections needs 'predictions' as a list");
    if (check_depth(c, depth + 1) < 0 || check_whole(c, image, "image", depth + 1) < 0)
        return -1;
    size_t saved = path_push_key(c, "predictions");
    int index = 0, rc = 0;
    for (const cJSON *p = predictions->child; p && rc == 0; p = p->next, index++) {
        size_t inner = path_push_index(c, index);
        rc = check_prediction(c, p, depth + 2);
        path_pop(c, inner);
    }
    path_pop(c, saved);
    if (rc < 0)
        return -1;
    return check_other_members(c, object, known, depth);
}

typedef enum { DT_BOOL, DT_INT, DT_UINT, DT_FLOAT } dtype_class;

typedef struct dtype_info {
    const char *name;
    size_t itemsize;
    dtype_class cls;
    double min, max; /* integer ranges */
} dtype_info;

static const dtype_info dtypes[] = {
    {"bool", 1, DT_BOOL, 0, 1},
    {"int8", 1, DT_INT, -128.0, 127.0},
    {"int16", 2, DT_INT, -32768.0, 32767.0},
    {"int32", 4, DT_INT, -2147483648.0, 2147483647.0},
    {"int64", 8, DT_INT, -9223372036854775808.0, 9223372036854775807.0},
    {"uint8", 1, DT_UINT, 0, 255.0},
    {"uint16", 2, DT_UINT, 0, 65535.0},
    {"uint32", 4, DT_UINT, 0, 4294967295.0},
    {"uint64", 8, DT_UINT, 0, 18446744073709551615.0},
    {"float16", 2, DT_FLOAT, 0, 0},
    {"float32", 4, DT_FLOAT, 0, 0},
    {"float64", 8, DT_FLOAT, 0, 0},
};

static int scalar_fits(const dtype_info *dt, const cJSON *item)
{
    if (dt->cls == DT_BOOL)
        return cJSON_IsBool(item) ||
               (cJSON_IsNumber(item) && (item->valuedouble == 0 || item->valuedouble == 1));
    if (!cJSON_IsNumber(item))
        return 0;
    if (dt->cls == DT_FLOAT)
        return 1;
    double v = item->valuedouble;
    /* int64/uint64 extremes round in a double; the runtime's numpy has the last word. */
    return isfinite(v) && v == floor(v) && v >= dt->min && v <= dt->max;
}

typedef struct ndarray_shape {
    int dims;
    double extent[NDARRAY_MAX_DIMS];
    const dtype_info *dtype;
} ndarray_shape;

static void shape_text(const ndarray_shape *shape, char *out, size_t cap)
{
    size_t n = 0;
    out[n++] = '[';
    for (int i = 0; i < shape->dims && n + 24 < cap; i++)
        n += (size_t)snprintf(out + n, cap - n, i ? ",%.0f" : "%.0f", shape->extent[i]);
    snprintf(out + n, cap - n, "]");
}

/* The nested lists of the `value` form must have exactly the declared shape. */
static int check_nd_value(checker *c, const ndarray_shape *shape, const cJSON *item, int dim, int depth)
{
    if (dim == shape->dims) {
        if (!scalar_fits(shape->dtype, item))
            return fail_at(c, "ndarray element is not a %s value", shape->dtype->name);
        return 0;
    }
    if (check_depth(c, depth) < 0)
        return -1;
    if (!cJSON_IsArray(item))
        return fail_at(c, "ndarray 'value' does not match the shape: a list expected at dimension %d", dim);
    double count = 0;
    for (const cJSON *child = item->child; child; child = child->next)
        count++;
    if (count != shape->extent[dim])
        return fail_at(c, "ndarray 'value' does not match the shape: dimension %d has %.0f items, shape says %.0f",
                       dim, count, shape->extent[dim]);
    int index = 0;
    for (const cJSON *child = item->child; child; child = child->next, index++) {
        size_t saved = path_push_index(c, index);
        int rc = check_nd_value(c, shape, child, dim + 1, depth + 1);
        path_pop(c, saved);
        if (rc < 0)
            return -1;
    }
    return 0;
}

static int check_ndarray(checker *c, const cJSON *object, int depth)
{
    static const char *const known[] = {"_type", "dtype", "shape", "value", "data", "buffer", NULL};
    ndarray_shape shape = {0};
    const cJSON *dtype = field(object, "dtype");
    if (!cJSON_IsString(dtype))
        return fail_at(c, "ndarray needs 'dtype' as a string");
    for (size_t i = 0; i < sizeof dtypes / sizeof dtypes[0]; i++)
        if (strcmp(dtype->valuestring, dtypes[i].name) == 0)
            shape.dtype = &dtypes[i];
    if (!shape.dtype) {
        char shown[40];
        bb_wire_printable(dtype->valuestring, shown, sizeof shown);
        return fail_at(c, "ndarray dtype '%s' is not allowed (bool, int8-64, uint8-64, float16/32/64)", shown);
    }
    const cJSON *dims = field(object, "shape");
    if (!cJSON_IsArray(dims))
        return fail_at(c, "ndarray needs 'shape' as a list of non-negative integers");
    double elements = 1, nonzero = 1;
    for (const cJSON *d = dims->child; d; d = d->next) {
        if (shape.dims == NDARRAY_MAX_DIMS)
            return fail_at(c, "ndarray has more than %d dimensions", NDARRAY_MAX_DIMS);
        if (!is_count(d) || d->valuedouble > NDARRAY_MAX_DIM)
            return fail_at(c, "ndarray 'shape' must hold non-negative integers below 2^31");
        shape.extent[shape.dims++] = d->valuedouble;
        elements *= d->valuedouble;
        if (d->valuedouble > 0)
            nonzero *= d->valuedouble;
    }
    char shape_shown[NDARRAY_MAX_DIMS * 12 + 4];
    shape_text(&shape, shape_shown, sizeof shape_shown);
    if (nonzero * (double)shape.dtype->itemsize > (double)c->max_array_bytes)
        return fail_at(c, "ndarray shape %s %s is over the size limit of %zu bytes", shape_shown,
                       shape.dtype->name, c->max_array_bytes);
    const cJSON *value = field(object, "value");
    const cJSON *data = field(object, "data");
    const cJSON *buffer = field(object, "buffer");
    if ((value != NULL) + (data != NULL) + (buffer != NULL) != 1)
        return fail_at(c, "ndarray needs exactly one of 'value' (nested lists), 'data' (base64) or "
                          "'buffer' (an index into the buffers)");
    if (buffer) {
        char why[160];
        if (bb_frames_claim(c->limits->buffers, buffer, elements * (double)shape.dtype->itemsize, why,
                            sizeof why) < 0)
            return fail_at(c, "ndarray shape %s %s: %s", shape_shown, shape.dtype->name, why);
    } else if (data) {
        long long n = check_base64_field(c, object, "data", "ndarray");
        if (n < 0)
            return -1;
        double need = elements * (double)shape.dtype->itemsize;
        if ((double)n != need)
            return fail_at(c, "ndarray data is %lld bytes, shape %s %s needs %.0f", n, shape_shown,
                           shape.dtype->name, need);
    } else {
        size_t saved = path_push_key(c, "value");
        int rc = check_nd_value(c, &shape, value, 0, depth + 1);
        path_pop(c, saved);
        if (rc < 0)
            return -1;
    }
    return check_other_members(c, object, known, depth);
}

static int check_bytes(checker *c, const cJSON *object, int depth)
{
    static const char *const known[] = {"_type", "value", NULL};
    if (check_base64_field(c, object, "value", "bytes") < 0)
        return -1;
    return check_other_members(c, object, known, depth);
}

static int check_datetime(checker *c, const cJSON *object, int depth)
{
    static const char *const known[] = {"_type", "value", NULL};
    if (!is_datetime(field(object, "value")))
        return fail_at(c, "datetime needs 'value' as an ISO 8601 string (YYYY-MM-DD[THH:MM[:SS[.f]]][Z|+HH:MM])");
    return check_other_members(c, object, known, depth);
}

static int check_video_metadata(checker *c, const cJSON *object, int depth)
{
    return check_video_metadata_fields(c, object, depth);
}

static int check_batch(checker *c, const cJSON *object, int depth)
{
    static const char *const known[] = {"_type", "value", NULL};
    const cJSON *value = field(object, "value");
    if (!cJSON_IsArray(value))
        return fail_at(c, "batch needs 'value' as a list");
    size_t saved = path_push_key(c, "value");
    int rc = check_value(c, value, depth + 1);
    path_pop(c, saved);
    if (rc < 0)
        return -1;
    return check_other_members(c, object, known, depth);
}

static int check_object(checker *c, const cJSON *object, int depth)
{
    static const char *const known[] = {"_type", "class", "value", NULL};
    if (check_string_member(c, object, "class", "object", 1) < 0 ||
        check_string_member(c, object, "value", "object", 1) < 0)
        return -1;
    return check_other_members(c, object, known, depth);
}

typedef struct tag_checker {
    const char *tag;
    int (*check)(checker *c, const cJSON *object, int depth);
} tag_checker;

static const tag_checker tags[] = {
    {"workflow_image", check_workflow_image},
    {"sv_detections", check_sv_detections},
    {"ndarray", check_ndarray},
    {"bytes", check_bytes},
    {"datetime", check_datetime},
    {"video_metadata", check_video_metadata},
    {"batch", check_batch},
    {"object", check_object},
};

static int check_value(checker *c, const cJSON *value, int depth)
{
    if (cJSON_IsArray(value)) {
        if (check_depth(c, depth) < 0)
            return -1;
        int index = 0;
        for (const cJSON *child = value->child; child; child = child->next, index++) {
            size_t saved = path_push_index(c, index);
            int rc = check_value(c, child, depth + 1);
            path_pop(c, saved);
            if (rc < 0)
                return -1;
        }
        return 0;
    }
    if (!cJSON_IsObject(value))
        return 0;
    if (check_depth(c, depth) < 0)
        return -1;
    const char *twice = NULL;
    int dup = bb_wire_duplicate_key(value, &twice);
    if (dup < 0)
        return bb_fail(c->err, BB_ERR_INTERNAL, "%s: out of memory", c->what);
    if (dup > 0) {
        char shown[48];
        bb_wire_printable(twice, shown, sizeof shown);
        return fail_at(c, "key '%s' appears twice", shown);
    }
    const cJSON *tag = field(value, "_type");
    if (tag) {
        if (!cJSON_IsString(tag))
            return fail_at(c, "'_type' must be a string");
        for (size_t i = 0; i < sizeof tags / sizeof tags[0]; i++)
            if (strcmp(tag->valuestring, tags[i].tag) == 0)
                return tags[i].check(c, value, depth);
        char shown[48];
        bb_wire_printable(tag->valuestring, shown, sizeof shown);
        return fail_at(c, "unknown _type '%s'", shown);
    }
    const cJSON *type = field(value, "type");
    if (cJSON_IsString(type) && strcmp(type->valuestring, "base64") == 0 && field(value, "value"))
        return check_untagged_image(c, value, depth);
    static const char *const no_tag_members[] = {NULL};   /* an untagged object: all are values */
    return check_other_members(c, value, no_tag_members, depth);
}

int bb_wire_check_values(const cJSON *value, const bb_limits *limits, bb_error_kind kind,
                         const char *what, bb_error **err)
{
    bb_limits defaults;
    if (!limits) {
        bb_limits_default(&defaults);
        limits = &defaults;
    }
    if (!value)
        return bb_fail(err, kind, "%s: missing", what);
    checker c = {.limits = limits, .kind = kind, .what = what, .err = err};
    c.max_array_bytes =
        kind == BB_ERR_INVALID_REQUEST ? limits->max_input_bytes : limits->max_result_bytes;
    if (limits->buffers)
        memset(limits->buffers->used, 0, sizeof limits->buffers->used);
    if (check_value(&c, value, 1) < 0)
        return -1;
    long unnamed = bb_frames_unclaimed(limits->buffers);
    if (unnamed >= 0)
        return bb_fail(err, kind, "%s: buffer %ld is not named by any value (each is named exactly once)",
                       what, unnamed);
    return 0;
}

/* ---- building an image value -------------------------------------------------------- */

int bb_json_image_value(const unsigned char *bytes, size_t len, bb_buf *out)
{
    if (!bytes && len)
        return -1;
    bb_buf_puts(out, "{\"_type\":\"workflow_image\",\"type\":\"base64\",\"value\":\"");
    if (bb_base64_encode(bytes, len, out) < 0)
        out->failed = 1;
    bb_buf_puts(out, "\",\"video_metadata\":null}");
    return out->failed ? -1 : 0;
}
