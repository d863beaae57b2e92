/* modal_url.h: the endpoint URL rule of DESIGN §4 and the transport checks on URLs
 * (https everywhere, plain http only to loopback), kept apart so they are unit-testable. */
#ifndef BB_MODAL_URL_H
#define BB_MODAL_URL_H

#include <stddef.h>

#include "blockbox.h"

/* The longest workspace id accepted (Roboflow workspace ids are short slugs). */
#define BB_MODAL_MAX_WORKSPACE_ID 128
/* DESIGN §4: labels longer than this are cut and suffixed with a hash. */
#define BB_MODAL_MAX_LABEL 56
/* 56 + "-" + 6 hex + NUL */
#define BB_MODAL_LABEL_SIZE (BB_MODAL_MAX_LABEL + 8)

/* A workspace id must be 1..128 characters of [A-Za-z0-9_-]: it becomes part of a
 * host name and of an app name. Returns 0, or -1 with a ConfigurationError. */
int bb_modal_check_workspace_id(const char *workspace_id, bb_error **err);

/* Writes "inference-workspace-{id}" (the Modal app name) into out. */
int bb_modal_app_name(const char *workspace_id, char *out, size_t size);

/* The endpoint label: "{app}-execute", cut to 56 characters plus "-" and the first
 * 6 hex digits of sha256(full label) when longer. Returns 0, -1 on a bad id. */
int bb_modal_label(const char *workspace_id, char out[BB_MODAL_LABEL_SIZE]);

/* Facts about a URL the driver may talk to. */
typedef struct bb_modal_url_info {
    int plain_http;      /* scheme is http (allowed to loopback only) */
    int loopback;        /* host is 127.0.0.0/8, ::1 or localhost */
    char host[256];      /* host as in the URL (IPv6 in brackets) */
    long port;           /* explicit or the scheme's default */
} bb_modal_url_info;

/* Checks that url is absolute http(s) with a host, no user name or password, and plain
 * http only to a loopback host. `what` names the URL in errors ("MODAL_WEB_ENDPOINT_URL",
 * "redirect target"). kind is the error kind to use on refusal. */
int bb_modal_check_url(const char *url, const char *what, bb_error_kind kind,
                       bb_modal_url_info *info, bb_error **err);

/* 1 if host (as curl reports it: IPv6 in brackets) is a loopback address. */
int bb_modal_host_is_loopback(const char *host);

/* The endpoint URL of a workspace (DESIGN §4). override_url NULL: built from
 * modal_workspace_name and the label. Otherwise override_url with
 * "workspace_id=<escaped id>" appended as a query parameter (? or &). workspace_id
 * NULL appends nothing. Returns a malloc'd URL, or NULL with a ConfigurationError. */
char *bb_modal_endpoint_url(const char *override_url, const char *modal_workspace_name,
                            const char *workspace_id, bb_error **err);

/* "scheme://host[:port]" of url for messages (no path, query or user part); "(endpoint)"
 * if it does not parse. */
void bb_modal_origin_of(const char *url, char *out, size_t size);

#endif
