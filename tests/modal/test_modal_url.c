/* test_modal_url.c: unit tests of the modal driver's pure parts: the DESIGN §4 URL
 * rule (long labels included), URL transport checks, gzip, Retry-After, backoff, deadlines. */
#include <check.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "buf.h"
#include "error.h"
#include "modal_url.h"
#include "modal_util.h"
#include "check_main.h"

static void label_is(const char *ws, const char *want)
{
    char label[BB_MODAL_LABEL_SIZE];
    ck_assert_int_eq(bb_modal_label(ws, label), 0);
    ck_assert_str_eq(label, want);
    ck_assert_uint_le(strlen(label), 63);
}

START_TEST(label_rule)
{
    label_is("ws1", "inference-workspace-ws1-execute");
    /* exactly 56 characters: kept */
    label_is("bbbbbbbbbbbbbbbbbbbbbbbbbbbb", "inference-workspace-bbbbbbbbbbbbbbbbbbbbbbbbbbbb-execute");
    /* 57: cut to 56, "-" and sha256(full label)[:6] (values computed with Python hashlib) */
    label_is("bbbbbbbbbbbbbbbbbbbbbbbbbbbbb", "inference-workspace-bbbbbbbbbbbbbbbbbbbbbbbbbbbbb-execut-e7821f");
    label_is("abcdefghijklmnopqrstuvwxyz-0123456789",
             "inference-workspace-abcdefghijklmnopqrstuvwxyz-012345678-790051");
    label_is("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "inference-workspace-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-execu-4802a6");
    char label[BB_MODAL_LABEL_SIZE];
    ck_assert_int_eq(bb_modal_label("bad.id", label), -1);
    ck_assert_int_eq(bb_modal_label("", label), -1);
}
END_TEST

START_TEST(endpoint_urls)
{
    bb_error *err = NULL;
    char *url = bb_modal_endpoint_url(NULL, "roboflow", "ws1", &err);
    ck_assert_str_eq(url, "https://roboflow--inference-workspace-ws1-execute.modal.run");
    free(url);
    url = bb_modal_endpoint_url(NULL, "acme", "abcdefghijklmnopqrstuvwxyz-0123456789", &err);
    ck_assert_str_eq(url, "https://acme--inference-workspace-abcdefghijklmnopqrstuvwxyz-012345678-790051.modal.run");
    free(url);
    /* the override gets ?workspace_id= or &workspace_id= */
    url = bb_modal_endpoint_url("https://example.com/run", "roboflow", "ws_1", &err);
    ck_assert_str_eq(url, "https://example.com/run?workspace_id=ws_1");
    free(url);
    url = bb_modal_endpoint_url("https://example.com/run?x=1", "roboflow", "ws-1", &err);
    ck_assert_str_eq(url, "https://example.com/run?x=1&workspace_id=ws-1");
    free(url);
    url = bb_modal_endpoint_url("https://127.0.0.1:8443/", "roboflow", NULL, &err);
    ck_assert_str_eq(url, "https://127.0.0.1:8443/");
    free(url);
    ck_assert_ptr_null(err);
    /* an id that would escape the host or the query is refused */
    ck_assert_ptr_null(bb_modal_endpoint_url(NULL, "roboflow", "evil.com#", &err));
    ck_assert_int_eq(bb_error_get_kind(err), BB_ERR_CONFIGURATION);
    bb_error_free(err);
    err = NULL;
    ck_assert_ptr_null(bb_modal_endpoint_url("https://x.io/", "roboflow", "a&b=c", &err));
    bb_error_free(err);
    err = NULL;
    ck_assert_ptr_null(bb_modal_endpoint_url(NULL, "evil.com/", "ws1", &err));
    bb_error_free(err);
    err = NULL;
    ck_assert_ptr_null(bb_modal_endpoint_url(NULL, "roboflow", NULL, &err));
    bb_error_free(err);
}
END_TEST

/* pred must hold for every text of yes and for none of no (NULL ends each list). */
static void expect_split(int (*pred)(const char *), const char *what, const char *const *yes,
                         const char *const *no)
{
    for (; *yes; yes++)
        ck_assert_msg(pred(*yes), "%s: \"%s\" should pass", what, *yes);
    for (; *no; no++)
        ck_assert_msg(!pred(*no), "%s: \"%s\" should not pass", what, *no);
}

START_TEST(loopback_hosts)
{
    static const char *const yes[] = {"127.0.0.1", "127.8.9.10", "localhost", "LOCALHOST", "[::1]",
                                      "[::ffff:127.0.0.1]", NULL};
    static const char *const no[] = {"128.0.0.1", "localhost.evil.com", "127.0.0.1.nip.io", "[::2]", "0.0.0.0",
                                     "", NULL};
    expect_split(bb_modal_host_is_loopback, "loopback", yes, no);
}
END_TEST

static int url_ok(const char *url)
{
    bb_error *err = NULL;
    bb_modal_url_info info;
    int rc = bb_modal_check_url(url, "URL", BB_ERR_CONFIGURATION, &info, &err);
    bb_error_free(err);
    return rc == 0;
}

START_TEST(url_transport_rules)
{
    static const char *const yes[] = {"https://roboflow--x.modal.run", "http://127.0.0.1:8080/", "http://localhost/",
                                      "http://[::1]:99/", NULL};
    static const char *const no[] = {"http://example.com/", "http://127.0.0.1.evil.com/", "ftp://127.0.0.1/",
                                     "file:///etc/passwd", "https://user:pw@example.com/",
                                     "https://example.com/\r\nX: y", "not a url", "", NULL};
    expect_split(url_ok, "URL", yes, no);
    bb_error *err = NULL;
    bb_modal_url_info info;
    ck_assert_int_eq(bb_modal_check_url("https://user:hunter2@example.com/", "URL", BB_ERR_CONFIGURATION,
                                        &info, &err), -1);
    ck_assert(!strstr(bb_error_message(err), "hunter2"));
    bb_error_free(err);
    ck_assert_int_eq(bb_modal_check_url("https://Example.com/x", "URL", BB_ERR_CONFIGURATION, &info, NULL), 0);
    ck_assert_int_eq(info.port, 443);
    ck_assert_int_eq(info.plain_http, 0);
}
END_TEST

START_TEST(gzip_round_trip)
{
    char text[5000];
    for (size_t i = 0; i < sizeof text; i++)
        text[i] = "{\"a\": [1, 2, 3]}"[i % 16];
    bb_buf gz = {0};
    ck_assert_int_eq(bb_modal_gzip(text, sizeof text, &gz), 0);
    ck_assert_uint_lt(gz.len, sizeof text / 4);
    ck_assert_int_eq((unsigned char)gz.data[0], 0x1f);   /* gzip magic */
    ck_assert_int_eq((unsigned char)gz.data[1], 0x8b);
    char back[6000];
    z_stream zs = {0};
    ck_assert_int_eq(inflateInit2(&zs, 16 + MAX_WBITS), Z_OK);
    zs.next_in = (Bytef *)gz.data;
    zs.avail_in = (uInt)gz.len;
    zs.next_out = (Bytef *)back;
    zs.avail_out = sizeof back;
    ck_assert_int_eq(inflate(&zs, Z_FINISH), Z_STREAM_END);
    ck_assert_uint_eq(zs.total_out, sizeof text);
    inflateEnd(&zs);
    ck_assert_int_eq(memcmp(back, text, sizeof text), 0);
    bb_buf_free(&gz);
}
END_TEST

START_TEST(retry_after_values)
{
    ck_assert_int_eq(bb_modal_parse_retry_after("3"), 3000);
    ck_assert_int_eq(bb_modal_parse_retry_after(" 0 "), 0);
    ck_assert_int_eq(bb_modal_parse_retry_after("3600"), BB_MODAL_RETRY_AFTER_MAX_MS + 1);
    ck_assert_int_eq(bb_modal_parse_retry_after("99999999999999999999"), BB_MODAL_RETRY_AFTER_MAX_MS + 1);
    ck_assert_int_eq(bb_modal_parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"), -1);
    ck_assert_int_eq(bb_modal_parse_retry_after("-1"), -1);
    ck_assert_int_eq(bb_modal_parse_retry_after("1.5"), -1);
    ck_assert_int_eq(bb_modal_parse_retry_after(NULL), -1);
}
END_TEST

START_TEST(backoff_is_bounded_full_jitter)
{
    for (int attempt = 0; attempt < 40; attempt++) {
        long cap = BB_MODAL_BACKOFF_BASE_MS << (attempt < 5 ? attempt : 5);
        if (cap > BB_MODAL_BACKOFF_CAP_MS)
            cap = BB_MODAL_BACKOFF_CAP_MS;
        ck_assert_int_eq(bb_modal_backoff_ms(attempt, 0), 0);
        ck_assert_int_le(bb_modal_backoff_ms(attempt, 0xffffffffu), cap);
        ck_assert_int_eq(bb_modal_backoff_ms(attempt, (unsigned)cap), cap);
    }
}
END_TEST

START_TEST(deadlines)
{
    ck_assert_int_eq(bb_modal_deadline_ms(1000), 1000 + 2500);
    ck_assert_int_eq(bb_modal_deadline_ms(20000), 20000 + 10000);
    ck_assert_int_eq(bb_modal_deadline_ms(0), 2000);
}
END_TEST

START_TEST(unknown_hash_detection)
{
    const char *yes = "{\"success\": false, \"error_type\": \"UnknownCodeHash\", \"error\": \"x\"}";
    const char *block = "{\"success\": true, \"result\": \"{\\\"s\\\": \\\"UnknownCodeHash\\\"}\"}";
    const char *other = "{\"success\": false, \"error_type\": \"ValueError\", \"error\": \"UnknownCodeHash\"}";
    ck_assert(bb_modal_is_unknown_code_hash(yes, strlen(yes)));
    ck_assert(!bb_modal_is_unknown_code_hash(block, strlen(block)));
    ck_assert(!bb_modal_is_unknown_code_hash(other, strlen(other)));
    ck_assert(!bb_modal_is_unknown_code_hash("UnknownCodeHash", 15));
    ck_assert(!bb_modal_is_unknown_code_hash(NULL, 0));
}
END_TEST

START_TEST(server_timing)
{
    ck_assert_int_eq(bb_modal_parse_server_timing("app;dur=1.25"), 1250);
    ck_assert_int_eq(bb_modal_parse_server_timing("app;desc=\"x\";dur=0.5, db;dur=9"), 500);
    ck_assert_int_eq(bb_modal_parse_server_timing("app, db;dur=9"), -1);
    ck_assert_int_eq(bb_modal_parse_server_timing("app;dur=-3"), -1);
    ck_assert_int_eq(bb_modal_parse_server_timing(NULL), -1);
}
END_TEST

int main(void)
{
    const bb_check_case rows[] = {
        BB_CHECK_TEST("units", label_rule),
        BB_CHECK_TEST("units", endpoint_urls),
        BB_CHECK_TEST("units", loopback_hosts),
        BB_CHECK_TEST("units", url_transport_rules),
        BB_CHECK_TEST("units", gzip_round_trip),
        BB_CHECK_TEST("units", retry_after_values),
        BB_CHECK_TEST("units", backoff_is_bounded_full_jitter),
        BB_CHECK_TEST("units", deadlines),
        BB_CHECK_TEST("units", unknown_hash_detection),
        BB_CHECK_TEST("units", server_timing),
    };
    return bb_check_run("modal_url", 0, rows, BB_CHECK_COUNT(rows));
}
