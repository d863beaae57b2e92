/* test_wire_values.c: Check tests of the typed-value checks (DESIGN §3 `_type` tags)
 * and of the inputs/context checks: every tag accepted, every fault refused by name. */
#include <check.h>
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wire.h"
#include "wire_test_util.h"
#include "check_main.h"

#define PNG_B64 "iVBORw0KGgoAAAAN"  /* the PNG signature and the start of IHDR */
#define JPEG_B64 "/9j/4AAQ"         /* FF D8 FF E0 00 10 */
#define GIF_B64 "R0lGODlh"          /* GIF89a: a format the contract does not name */
#define F32X4_B64 "AACAPwAAAEAAAEBAAACAQA==" /* float32 1, 2, 3, 4 */
#define F32X3_B64 "AACAPwAAAEAAAEBA"         /* float32 1, 2, 3 */

/* Checks {"v": value} as inputs. */
static int check_input(const char *value, bb_error **err)
{
    char *text = NULL;
    if (asprintf(&text, "{\"v\": %s}", value) < 0)
        return -2;
    bb_limits l = limits();
    int rc = bb_wire_check_inputs(text, strlen(text), &l, err);
    free(text);
    return rc;
}

/* Checks a value as a result would be checked (response error kind). */
static int check_result_value(const char *value, bb_error **err)
{
    cJSON *tree = cJSON_Parse(value);
    ck_assert_msg(tree != NULL, "test JSON does not parse: %s", value);
    bb_limits l = limits();
    int rc = bb_wire_check_values(tree, &l, BB_ERR_INVALID_RESPONSE, "result", err);
    cJSON_Delete(tree);
    return rc;
}

#define accept(value)                                                                              \
    do {                                                                                           \
        bb_error *e_ = NULL;                                                                       \
        int r_ = check_input(value, &e_);                                                          \
        ck_assert_msg(r_ == 0, "refused %s: %s", value, e_ ? bb_error_message(e_) : "?");          \
        r_ = check_result_value("{\"v\": " value "}", &e_);                                        \
        ck_assert_msg(r_ == 0, "refused result %s: %s", value, e_ ? bb_error_message(e_) : "?");   \
    } while (0)

#define refuse(value, needle)                                                                      \
    do {                                                                                           \
        bb_error *e_ = NULL;                                                                       \
        expect_error(check_input(value, &e_), e_, BB_ERR_INVALID_REQUEST, needle);                 \
    } while (0)

/* ---- accepted forms --------------------------------------------------------------------- */

START_TEST(test_workflow_image_forms)
{
    accept("{\"_type\": \"workflow_image\", \"type\": \"base64\", \"value\": \"" PNG_B64 "\", "
           "\"video_metadata\": null}");
    accept("{\"_type\": \"workflow_image\", \"type\": \"base64\", \"value\": \"" JPEG_B64 "\"}");
    accept("{\"_type\": \"workflow_image\", \"type\": \"base64\", \"value\": \"" JPEG_B64 "\", "
           "\"parent_id\": \"cam\", \"parent_origin\": {\"offset_x\": 10, \"offset_y\": -5, \"width\": 640, "
           "\"height\": 480}, \"root_parent_id\": null, \"root_parent_origin\": null, "
           "\"video_metadata\": {\"video_identifier\": \"cam-1\", \"frame_number\": 7, "
           "\"frame_timestamp\": \"2024-05-06T07:08:09.123456+00:00\", \"fps\": 29.97, "
           "\"measured_fps\": null, \"comes_from_video_file\": false}}");
    /* the untagged Roboflow form */
    accept("{\"type\": \"base64\", \"value\": \"" PNG_B64 "\"}");
}
END_TEST

START_TEST(test_detections_forms)
{
    accept("{\"_type\": \"sv_detections\", \"image\": {\"width\": 640, \"height\": 480}, \"predictions\": []}");
    accept("{\"_type\": \"sv_detections\", \"image\": {\"width\": 640, \"height\": 480}, \"predictions\": ["
           "{\"x\": 100.5, \"y\": 100, \"width\": 20, \"height\": 30, \"confidence\": 0.5, \"class_id\": 0, "
           "\"class\": \"car\", \"detection_id\": \"d0\", \"tracker_id\": 3, \"points\": [{\"x\": 1, \"y\": 2}],"
           " \"embedding\": {\"_type\": \"ndarray\", \"dtype\": \"float32\", \"shape\": [4], "
           "\"data\": \"" F32X4_B64 "\"}}]}");
    /* a result from a block's own sv.Detections may lack class fields */
    bb_error *err = NULL;
    expect_ok(check_result_value("{\"d\": {\"_type\": \"sv_detections\", \"image\": {\"width\": 1, \"height\": 1},"
                                 " \"predictions\": [{\"x\": 1, \"y\": 1, \"width\": 1, \"height\": 1}]}}",
                                 &err),
              err);
}
END_TEST

START_TEST(test_ndarray_forms)
{
    accept("{\"_type\": \"ndarray\", \"value\": [[1, 2], [3, 4]], \"dtype\": \"int64\", \"shape\": [2, 2]}");
    accept("{\"_type\": \"ndarray\", \"dtype\": \"float32\", \"shape\": [2, 2], \"data\": \"" F32X4_B64 "\"}");
    accept("{\"_type\": \"ndarray\", \"dtype\": \"uint8\", \"shape\": [4, 3], \"data\": \"" PNG_B64 "\"}");
    accept("{\"_type\": \"ndarray\", \"dtype\": \"float64\", \"shape\": [], \"value\": 2.5}");
    accept("{\"_type\": \"ndarray\", \"dtype\": \"float64\", \"shape\": [0, 3], \"value\": []}");
    accept("{\"_type\": \"ndarray\", \"dtype\": \"int16\", \"shape\": [0], \"data\": \"\"}");
    accept("{\"_type\": \"ndarray\", \"dtype\": \"bool\", \"shape\": [3], \"value\": [true, false, 1]}");
    accept("{\"_type\": \"ndarray\", \"dtype\": \"int8\", \"shape\": [2], \"value\": [-128, 127]}");
    accept("{\"_type\": \"ndarray\", \"dtype\": \"uint16\", \"shape\": [1, 1, 1], \"value\": [[[65535]]]}");
    accept("{\"_type\": \"ndarray\", \"dtype\": \"float16\", \"shape\": [2], \"value\": [0.5, -1e3]}");
    static const char *const all[] = {"bool", "int8", "int16", "int32", "int64", "uint8",
                                      "uint16", "uint32", "uint64", "float16", "float32", "float64"};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) {
        char value[200];
        snprintf(value, sizeof value, "{\"_type\": \"ndarray\", \"dtype\": \"%s\", \"shape\": [2], \"value\": [0, 1]}",
                 all[i]);
        bb_error *err = NULL;
        expect_ok(check_input(value, &err), err);
    }
}
END_TEST

START_TEST(test_small_tags)
{
    accept("{\"_type\": \"bytes\", \"value\": \"aGk=\"}");
    accept("{\"_type\": \"bytes\", \"value\": \"\"}");
    accept("{\"_type\": \"datetime\", \"value\": \"2024-05-06T07:08:09\"}");
    accept("{\"_type\": \"datetime\", \"value\": \"2024-05-06\"}");
    accept("{\"_type\": \"datetime\", \"value\": \"2024-05-06 07:08\"}");
    accept("{\"_type\": \"datetime\", \"value\": \"2024-05-06T07:08:09.5Z\"}");
    accept("{\"_type\": \"datetime\", \"value\": \"2024-05-06T07:08:09.123456-05:30\"}");
    accept("{\"_type\": \"video_metadata\", \"video_identifier\": \"v\", \"frame_number\": 0, "
           "\"frame_timestamp\": \"2024-05-06T07:08:09\", \"fps\": 30, \"custom\": [1]}");
    accept("{\"_type\": \"batch\", \"value\": [1, \"a\", {\"_type\": \"bytes\", \"value\": \"aGk=\"}]}");
    accept("{\"_type\": \"object\", \"class\": \"Foo\", \"value\": \"<Foo at 0x1>\"}");
    accept("{\"plain\": {\"nested\": [1, 2, {\"type\": \"url\", \"value\": \"http://x\"}]}, \"n\": null}");
}
END_TEST

START_TEST(test_batch_of_detections)
{
    accept("{\"_type\": \"batch\", \"value\": ["
           "{\"_type\": \"sv_detections\", \"image\": {\"width\": 2, \"height\": 2}, \"predictions\": ["
           "{\"x\": 1, \"y\": 1, \"width\": 1, \"height\": 1, \"confidence\": 0.5, \"class_id\": 1, \"class\": \"a\","
           " \"detection_id\": \"d\"}]},"
           "{\"_type\": \"sv_detections\", \"image\": {\"width\": 2, \"height\": 2}, \"predictions\": []}]}");
}
END_TEST

/* ---- refusals ------------------------------------------------------------------------- */

START_TEST(test_unknown_and_bad_tags)
{
    refuse("{\"_type\": \"quantum\", \"value\": 1}", "inputs: 'v': unknown _type 'quantum'");
    refuse("{\"_type\": 7}", "'_type' must be a string");
    refuse("{\"_type\": null}", "'_type' must be a string");
    refuse("{\"_type\": \"\\u001b[31mred\"}", "unknown _type '?[31mred'"); /* no escapes in messages */
    /* hidden behind a known tag's unknown member, inside a batch, in a list */
    refuse("{\"_type\": \"bytes\", \"value\": \"aGk=\", \"extra\": {\"_type\": \"quantum\"}}",
           "'v'.extra: unknown _type");
    refuse("{\"_type\": \"batch\", \"value\": [1, {\"_type\": \"evil\"}]}", "'v'.value[1]: unknown _type 'evil'");
    refuse("[[{\"a\": {\"_type\": \"x\"}}]]", "'v'[0][0].a: unknown _type");
}
END_TEST

START_TEST(test_image_refusals)
{
    refuse("{\"_type\": \"workflow_image\", \"value\": \"" PNG_B64 "\"}", "workflow_image needs 'type'");
    refuse("{\"_type\": \"workflow_image\", \"type\": \"url\", \"value\": \"" PNG_B64 "\"}", "'type'");
    refuse("{\"_type\": \"workflow_image\", \"type\": \"base64\"}", "needs 'value'");
    refuse("{\"_type\": \"workflow_image\", \"type\": \"base64\", \"value\": 12}", "must be a base64 string");
    refuse("{\"_type\": \"workflow_image\", \"type\": \"base64\", \"value\": \"iVBOR w0KGgo=\"}",
           "not valid base64");
    refuse("{\"_type\": \"workflow_image\", \"type\": \"base64\", \"value\": \"iVBORw0KGgoAAAA\"}",
           "not valid base64");
    refuse("{\"_type\": \"workflow_image\", \"type\": \"base64\", \"value\": \"" GIF_B64 "\"}",
           "not a JPEG or PNG");
    refuse("{\"_type\": \"workflow_image\", \"type\": \"base64\", \"value\": \"\"}", "not a JPEG or PNG");
    refuse("{\"_type\": \"workflow_image\", \"type\": \"base64\", \"value\": \"" PNG_B64 "\", "
           "\"video_metadata\": \"x\"}",
           "'video_metadata' must be an object or null");
    refuse("{\"_type\": \"workflow_image\", \"type\": \"base64\", \"value\": \"" PNG_B64 "\", "
           "\"video_metadata\": {\"frame_number\": -1}}",
           "'frame_number' must be a non-negative integer");
    refuse("{\"_type\": \"workflow_image\", \"type\": \"base64\", \"value\": \"" PNG_B64 "\", "
           "\"parent_origin\": {\"offset_x\": 1, \"offset_y\": 1, \"width\": 2}}",
           "'parent_origin' needs 'height'");
    refuse("{\"_type\": \"workflow_image\", \"type\": \"base64\", \"value\": \"" PNG_B64 "\", "
           "\"root_parent_origin\": [1, 2, 3, 4]}",
           "'root_parent_origin' must be an object");
    refuse("{\"_type\": \"workflow_image\", \"type\": \"base64\", \"value\": \"" PNG_B64 "\", \"parent_id\": 5}",
           "'parent_id' must be a string");
    refuse("{\"type\": \"base64\", \"value\": \"%%%%\"}", "image 'value' is not valid base64");
    refuse("{\"type\": \"base64\", \"value\": [1]}", "image 'value' must be a base64 string");
}
END_TEST

#define DET(pred) "{\"_type\": \"sv_detections\", \"image\": {\"width\": 640, \"height\": 480}, \"predictions\": [" pred "]}"
#define PRED_OK "\"x\": 1, \"y\": 2, \"width\": 3, \"height\": 4, \"confidence\": 0.5, \"class_id\": 1, \"class\": \"a\""

START_TEST(test_detection_refusals)
{
    refuse("{\"_type\": \"sv_detections\", \"predictions\": []}", "needs 'image'");
    refuse("{\"_type\": \"sv_detections\", \"image\": {\"width\": \"640\", \"height\": 480}, \"predictions\": []}",
           "needs 'image'");
    refuse("{\"_type\": \"sv_detections\", \"image\": {\"width\": 640, \"height\": -1}, \"predictions\": []}",
           "needs 'image'");
    refuse("{\"_type\": \"sv_detections\", \"image\": {\"width\": 1, \"height\": 1}, \"predictions\": {}}",
           "'predictions' as a list");
    refuse(DET("7"), "'v'.predictions[0]: a prediction must be an object");
    refuse(DET("{" PRED_OK "}, {\"x\": \"1\", \"y\": 2, \"width\": 3, \"height\": 4}"),
           "'v'.predictions[1]: prediction needs 'x' as a number");
    refuse(DET("{\"x\": 1, \"y\": 2, \"width\": 3, \"height\": 4, \"class_id\": 1, \"class\": \"a\"}"),
           "'confidence' as a number");
    refuse(DET("{\"x\": 1, \"y\": 2, \"width\": 3, \"height\": 4, \"confidence\": 0.5, \"class_id\": 1.5, "
               "\"class\": \"a\"}"),
           "'class_id' as an integer");
    refuse(DET("{\"x\": 1, \"y\": 2, \"width\": 3, \"height\": 4, \"confidence\": 0.5, \"class_id\": 1, "
               "\"class\": 3}"),
           "'class' must be a string");
    refuse(DET("{" PRED_OK ", \"detection_id\": 9}"), "'detection_id' must be a string");
    refuse(DET("{" PRED_OK ", \"mask\": {\"_type\": \"ndarray\"}}"), "'v'.predictions[0].mask: ndarray needs 'dtype'");
    bb_error *err = NULL;
    expect_error(check_result_value("{\"d\": " DET("{\"x\": 1, \"y\": 2, \"width\": 3, \"height\": 4, "
                                                   "\"confidence\": \"high\"}") "}",
                                    &err),
                 err, BB_ERR_INVALID_RESPONSE, "result: 'd'.predictions[0]: prediction needs 'confidence'");
}
END_TEST

#define ND(rest) "{\"_type\": \"ndarray\", " rest "}"

/* check_input of an ndarray with these fields (all but its _type), as a refusal table
 * walks it. */
static int check_ndarray(const char *fields, const bb_limits *l, bb_wire_response *r, bb_error **err)
{
    char *value = NULL;
    ck_assert_int_ge(asprintf(&value, ND("%s"), fields), 0);
    int rc = check_input(value, err);
    free(value);
    return rc;
}

START_TEST(test_ndarray_refusals)
{
    /* the message the contract gives as its example */
    bb_error *err = NULL;
    bb_limits l = limits();
    const char *text = "{\"image\": {\"_type\": \"ndarray\", \"dtype\": \"float32\", \"shape\": [2, 2], "
                       "\"data\": \"" F32X3_B64 "\"}}";
    expect_error(bb_wire_check_inputs(text, strlen(text), &l, &err), err, BB_ERR_INVALID_REQUEST,
                 "inputs: 'image': ndarray data is 12 bytes, shape [2,2] float32 needs 16");

    static const refusal bad[] = {
        {"\"shape\": [1], \"value\": [1]", "needs 'dtype'"},
        {"\"dtype\": \"object\", \"shape\": [1], \"value\": [1]", "dtype 'object' is not allowed"},
        {"\"dtype\": \"complex64\", \"shape\": [1], \"value\": [1]", "is not allowed"},
        {"\"dtype\": \"<f4\", \"shape\": [1], \"value\": [1]", "is not allowed"},
        {"\"dtype\": 5, \"shape\": [1], \"value\": [1]", "needs 'dtype' as a string"},
        {"\"dtype\": \"int8\", \"value\": [1]", "needs 'shape'"},
        {"\"dtype\": \"int8\", \"shape\": [-1], \"value\": [1]", "non-negative integers"},
        {"\"dtype\": \"int8\", \"shape\": [1.5], \"value\": [1]", "non-negative integers"},
        {"\"dtype\": \"int8\", \"shape\": [\"2\"], \"value\": [1]", "non-negative integers"},
        {"\"dtype\": \"int8\", \"shape\": [4294967296], \"data\": \"\"", "below 2^31"},
        {"\"dtype\": \"int8\", \"shape\": [1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1],"
         " \"data\": \"AA==\"",
         "more than 32 dimensions"},
        /* the attack: a shape whose product is huge while the data is tiny */
        {"\"dtype\": \"float64\", \"shape\": [65536, 65536, 0], \"data\": \"\"", "over the size limit"},
        {"\"dtype\": \"float64\", \"shape\": [1000000, 1000000], \"data\": \"\"", "over the size limit"},
        {"\"dtype\": \"int8\", \"shape\": [1]", "exactly one of 'value'"},
        {"\"dtype\": \"int8\", \"shape\": [1], \"value\": [1], \"data\": \"AQ==\"", "exactly one of"},
        {"\"dtype\": \"int8\", \"shape\": [1], \"data\": \"AQ=\"", "'data' is not valid base64"},
        {"\"dtype\": \"int8\", \"shape\": [1], \"data\": 1", "'data' must be a base64 string"},
        {"\"dtype\": \"int64\", \"shape\": [3], \"data\": \"" F32X4_B64 "\"",
         "ndarray data is 16 bytes, shape [3] int64 needs 24"},
        /* value structure against shape */
        {"\"dtype\": \"int64\", \"shape\": [2, 2], \"value\": [[1, 2], [3]]",
         "'v'.value[1]: ndarray 'value' does not match the shape: dimension 1 has 1 items, shape says 2"},
        {"\"dtype\": \"int64\", \"shape\": [2, 2], \"value\": [[1, 2]]", "dimension 0 has 1 items"},
        {"\"dtype\": \"int64\", \"shape\": [2, 2], \"value\": [1, 2]", "a list expected at dimension 1"},
        {"\"dtype\": \"int64\", \"shape\": [2], \"value\": [[1], [2]]", "element is not a int64 value"},
        {"\"dtype\": \"int64\", \"shape\": [], \"value\": [1]", "element is not"},
        {"\"dtype\": \"int64\", \"shape\": [1], \"value\": [\"1\"]", "element is not"},
        {"\"dtype\": \"int32\", \"shape\": [1], \"value\": [1.5]", "element is not a int32 value"},
        {"\"dtype\": \"int8\", \"shape\": [1], \"value\": [300]", "element is not a int8 value"},
        {"\"dtype\": \"uint8\", \"shape\": [1], \"value\": [-1]", "element is not a uint8 value"},
        {"\"dtype\": \"bool\", \"shape\": [1], \"value\": [2]", "element is not a bool value"},
        {"\"dtype\": \"float32\", \"shape\": [1], \"value\": [null]", "element is not"},
    };
    expect_refusals(bad, BB_CHECK_COUNT(bad), BB_ERR_INVALID_REQUEST, check_ndarray, NULL);
    accept(ND("\"dtype\": \"int64\", \"shape\": [2], \"data\": \"" F32X4_B64 "\""));
}
END_TEST

START_TEST(test_small_tag_refusals)
{
    refuse("{\"_type\": \"bytes\"}", "bytes needs 'value'");
    refuse("{\"_type\": \"bytes\", \"value\": \"aGk\"}", "bytes 'value' is not valid base64");
    refuse("{\"_type\": \"bytes\", \"value\": [104, 105]}", "must be a base64 string");
    static const char *const bad_dates[] = {
        "\"yesterday\"", "\"2024-13-01\"", "\"2024-05-32\"", "\"2024-05-06T25:00\"", "\"2024-05-06T07:60\"",
        "\"2024-05-06T07:08:09+\"", "\"2024-05-06X07:08\"", "\"2024-5-6\"", "\"2024-05-06T07:08:09.\"",
        "\"2024-05-06T07:08:09.1234567890\"", "\"2024-05-06T07:08:09Zjunk\"", "20240506", "null",
        "\"0000-01-01\"",
    };
    for (size_t i = 0; i < sizeof bad_dates / sizeof bad_dates[0]; i++) {
        char value[200];
        snprintf(value, sizeof value, "{\"_type\": \"datetime\", \"value\": %s}", bad_dates[i]);
        bb_error *err = NULL;
        expect_error(check_input(value, &err), err, BB_ERR_INVALID_REQUEST, "ISO 8601");
    }
    refuse("{\"_type\": \"video_metadata\", \"fps\": \"30\"}", "'fps' must be a number");
    refuse("{\"_type\": \"video_metadata\", \"comes_from_video_file\": \"yes\"}", "'comes_from_video_file'");
    refuse("{\"_type\": \"video_metadata\", \"frame_timestamp\": \"noon\"}", "'frame_timestamp'");
    refuse("{\"_type\": \"video_metadata\", \"video_identifier\": 3}", "'video_identifier'");
    refuse("{\"_type\": \"batch\"}", "batch needs 'value' as a list");
    refuse("{\"_type\": \"batch\", \"value\": {}}", "batch needs 'value' as a list");
    refuse("{\"_type\": \"object\", \"value\": \"x\"}", "object needs 'class'");
    refuse("{\"_type\": \"object\", \"class\": \"Foo\", \"value\": 3}", "object 'value' must be a string");
}
END_TEST

/* The attack: cJSON keeps both copies of a key and a lookup finds the first, while
 * Python keeps the last, so a checker reading the first would check the wrong one. */
START_TEST(test_duplicate_keys)
{
    refuse(ND("\"dtype\": \"int8\", \"dtype\": \"float64\", \"shape\": [1], \"data\": \"AQ==\""),
           "key 'dtype' appears twice");
    bb_error *err = NULL;
    bb_limits l = limits();
    const char *text = "{\"a\": 1, \"b\": 2, \"a\": {\"_type\": \"bytes\", \"value\": \"aGk=\"}}";
    expect_error(bb_wire_check_inputs(text, strlen(text), &l, &err), err, BB_ERR_INVALID_REQUEST,
                 "key 'a' appears twice");
    /* many distinct keys pass (they are sorted, not compared pairwise: no clock here, a
     * quadratic 50k would overrun the suite's timeout) and one late repeat is found */
    size_t n = 50000;
    bb_buf big = {0};
    bb_buf_putc(&big, '{');
    for (size_t i = 0; i < n; i++)
        bb_buf_printf(&big, "%s\"k%zu\": %zu", i ? ", " : "", i, i);
    bb_buf_puts(&big, "}");
    expect_ok(bb_wire_check_inputs(big.data, big.len, &l, &err), err);
    big.len--;
    bb_buf_puts(&big, ", \"k17\": 0}");
    expect_error(bb_wire_check_inputs(big.data, big.len, &l, &err), err, BB_ERR_INVALID_REQUEST,
                 "key 'k17' appears twice");
    bb_buf_free(&big);
}
END_TEST

START_TEST(test_depth_of_tree)
{
    bb_limits l = limits();
    l.max_depth = 3;
    bb_error *err = NULL;
    cJSON *tree = cJSON_Parse("{\"a\": [{\"b\": 1}]}");
    expect_ok(bb_wire_check_values(tree, &l, BB_ERR_INVALID_REQUEST, "inputs", &err), err);
    cJSON_Delete(tree);
    /* a tree built by hand (no precheck) deeper than the limit */
    tree = cJSON_Parse("{\"a\": [{\"b\": [1]}]}");
    expect_error(bb_wire_check_values(tree, &l, BB_ERR_INVALID_REQUEST, "inputs", &err), err,
                 BB_ERR_INVALID_REQUEST, "inputs: 'a'[0].b: nested deeper than 3 levels");
    cJSON_Delete(tree);
    tree = cJSON_Parse("{\"a\": {\"_type\": \"batch\", \"value\": [[1]]}}");
    expect_error(bb_wire_check_values(tree, &l, BB_ERR_INVALID_RESPONSE, "result", &err), err,
                 BB_ERR_INVALID_RESPONSE, "nested deeper than 3 levels");
    cJSON_Delete(tree);
    expect_error(bb_wire_check_values(NULL, &l, BB_ERR_INVALID_RESPONSE, "result", &err), err,
                 BB_ERR_INVALID_RESPONSE, "missing");
}
END_TEST

/* ---- the inputs and context texts --------------------------------------------------------- */

/* bb_wire_check_inputs as a refusal table walks it: the whole text. */
static int check_inputs_text(const char *text, const bb_limits *l, bb_wire_response *r, bb_error **err)
{
    return bb_wire_check_inputs(text, strlen(text), l, err);
}

START_TEST(test_inputs_text)
{
    static const refusal bad[] = {
        {"{not json", "inputs: not valid JSON"},
        {"[1, 2, 3]", "inputs: must be a JSON object"},
        {"\"x\"", "must be a JSON object"},
        {"", "not valid JSON"},
        {"{} {}", "unexpected text after the JSON value at byte 3"},
        {"{\"a\": NaN}", "not valid JSON"},
        {"{\"a\": \"\xc0\xaf\"}", "inputs: invalid UTF-8 at byte 7"},     /* overlong */
        {"{\"a\": \"\xed\xb2\x80\"}", "invalid UTF-8"},                    /* surrogate */
        {"{\"a\": \"\\ud800x\"}", "unpaired surrogate"},
        {"{\"a\": \"\\u0000\"}", "NUL character"},
    };
    expect_refusals(bad, BB_CHECK_COUNT(bad), BB_ERR_INVALID_REQUEST, check_inputs_text, NULL);
    bb_limits l = limits();
    bb_error *err = NULL;
    expect_error(bb_wire_check_inputs("{\"a\": \"x\0\"}", 11, &l, &err), err, BB_ERR_INVALID_REQUEST, "NUL byte");
    expect_ok(bb_wire_check_inputs("  {\"a\": 2, \"b\": 40}\n", 20, &l, &err), err);
    /* a length shorter than the string is honoured: only "{}" is read */
    expect_ok(bb_wire_check_inputs("{}garbage", 2, &l, &err), err);
    l.max_input_bytes = 10;
    expect_error(bb_wire_check_inputs("{\"a\": 12345}", 12, &l, &err), err, BB_ERR_INVALID_REQUEST,
                 "inputs: 12 bytes, over the limit of 10 bytes");
    /* depth exactly at the limit passes, one more fails */
    l = limits();
    l.max_depth = 4;
    expect_ok(bb_wire_check_inputs("{\"a\": [[[1]]]}", 14, &l, &err), err);
    expect_error(bb_wire_check_inputs("{\"a\": [[[[1]]]]}", 16, &l, &err), err, BB_ERR_INVALID_REQUEST,
                 "nested deeper than 4 levels");
}
END_TEST

START_TEST(test_context_text)
{
    bb_limits l = limits();
    bb_error *err = NULL;
    expect_ok(bb_wire_check_context(NULL, &l, &err), err);
    expect_ok(bb_wire_check_context("{\"workflow_execution_id\": \"exec-42\"}", &l, &err), err);
    expect_error(bb_wire_check_context("[]", &l, &err), err, BB_ERR_INVALID_REQUEST,
                 "workflow_context: must be a JSON object");
    expect_error(bb_wire_check_context("{}, \"code_str\": \"x\"", &l, &err), err, BB_ERR_INVALID_REQUEST,
                 "workflow_context: unexpected text");
    expect_error(bb_wire_check_context("{\"a\": \"\xff\"}", &l, &err), err, BB_ERR_INVALID_REQUEST,
                 "workflow_context: invalid UTF-8");
}
END_TEST

/* A hostile key cannot put terminal escapes or a huge string into an error message. */
START_TEST(test_paths_are_printable)
{
    bb_error *err = NULL;
    char key[300];
    memset(key, 'k', sizeof key - 1);
    key[sizeof key - 1] = '\0';
    char *text = NULL;
    ck_assert_int_ge(asprintf(&text, "{\"\\u001b]0;pwned\\u0007\": {\"%s\": {\"_type\": \"x\"}}}", key), 0);
    bb_limits l = limits();
    ck_assert_int_eq(bb_wire_check_inputs(text, strlen(text), &l, &err), -1);
    const char *message = bb_error_message(err);
    for (const char *p = message; *p; p++)
        ck_assert_msg((unsigned char)*p >= 0x20 && (unsigned char)*p < 0x7F, "unprintable in \"%s\"", message);
    ck_assert_uint_lt(strlen(message), 400);
    ck_assert_ptr_nonnull(strstr(message, "'?]0;pwned?'.kkk"));
    ck_assert_ptr_nonnull(strstr(message, "unknown _type 'x'"));
    bb_error_free(err);
    free(text);
}
END_TEST

int main(void)
{
    const bb_check_case rows[] = {
        BB_CHECK_TEST("values", test_workflow_image_forms),
        BB_CHECK_TEST("values", test_detections_forms),
        BB_CHECK_TEST("values", test_ndarray_forms),
        BB_CHECK_TEST("values", test_small_tags),
        BB_CHECK_TEST("values", test_batch_of_detections),
        BB_CHECK_TEST("values", test_unknown_and_bad_tags),
        BB_CHECK_TEST("values", test_image_refusals),
        BB_CHECK_TEST("values", test_detection_refusals),
        BB_CHECK_TEST("values", test_ndarray_refusals),
        BB_CHECK_TEST("values", test_small_tag_refusals),
        BB_CHECK_TEST("values", test_duplicate_keys),
        BB_CHECK_TEST("values", test_depth_of_tree),
        BB_CHECK_TEST("values", test_inputs_text),
        BB_CHECK_TEST("values", test_context_text),
        BB_CHECK_TEST("values", test_paths_are_printable),
    };
    return bb_check_run("wire_values", 60, rows, BB_CHECK_COUNT(rows));
}
