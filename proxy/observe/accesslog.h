/* Envoy-format access log. Format strings use Envoy's %COMMAND% syntax; lines
 * are formatted on the worker into a per-worker buffer and written by a logger
 * thread, so a slow disk or pipe never blocks a worker. */
#ifndef WM_ACCESSLOG_H
#define WM_ACCESSLOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct arena;
struct stream;
struct stream_info;
struct http_req_head;
struct http_resp_head;
struct worker;
struct evbuffer;
struct cfg_errs;
struct ynode;

/* Envoy's default format (with a trailing newline). */
extern const char accesslog_default_format[];

struct al_format;

/* Compiles text format fmt (al-format.c) onto arena a; a newline ends it
 * when fmt does not. omit_empty is Envoy's omit_empty_values: an absent
 * value prints nothing instead of "-" (in a json_format, a member whose
 * value is null is left out). On error returns NULL and sets *err to a static
 * message and *errpos to the byte offset in fmt. */
struct al_format *al_format_parse(struct arena *a, const char *fmt, bool omit_empty, const char **err,
				  size_t *errpos);

/* Compiles Envoy's json_format, the YAML map n: each value a format string
 * (one command alone keeps its type: a number, a string, or null when
 * absent; anything else is a string), a number or boolean written as it is,
 * or a nested map or list; members come out sorted by key, one object per
 * line. On error returns NULL with *err, *at (the node) and *errpos (the
 * offset in its string). */
struct al_format *al_json_parse(struct arena *a, const struct ynode *n, bool omit_empty, const char **err,
				size_t *errpos, const struct ynode **at);

/* What a line is formatted from: a stream's record and heads, or a TCP
 * connection's record alone (mesh/tcp.c), whose HTTP operators print "-". */
struct al_subject {
	const struct stream_info *info;
	const struct http_req_head *req;	/* NULL: no request head */
	const struct http_resp_head *resp;	/* NULL with req */
	const char *cluster;		/* %UPSTREAM_CLUSTER%, or NULL */
	const char *route;		/* %ROUTE_NAME%, or NULL */
};

/* Appends one formatted line for x to out. */
void al_format_subject(const struct al_format *f, const struct al_subject *x, struct evbuffer *out);
/* Appends one formatted line for s to out. */
void al_format_line(const struct al_format *f, const struct stream *s, struct evbuffer *out);

/* Formats s's line with its snapshot's format (cfg->access_log, which must be
 * set) into its worker's buffer, handed to the logger thread when full
 * (stream_cbs.log). Worker thread. */
void accesslog_stream(struct stream *s);

/* Formats x's line with f into w's buffer, as accesslog_stream() does.
 * Worker thread. */
void accesslog_subject(const struct al_format *f, const struct al_subject *x, struct worker *w);

/* Writes Envoy's short response-flag list ("UF,URX", or "-" when none) to buf,
 * NUL-terminated and truncated to len. Returns the length written. */
size_t al_response_flags(uint32_t flags, char *buf, size_t len);
/* The RF_* bit of Envoy's short code ("UF"), len bytes: 0, or -EINVAL. */
int al_response_flag(const char *code, size_t len, uint32_t *flag);

/* Logger thread. path "/dev/stdout" and "/dev/stderr" write to fds 1/2. */
int accesslog_start(const char *path);
/* Changes the target file (on reload). */
int accesslog_set_path(const char *path);
/* Queues a line-buffer from a worker; takes ownership of buf's contents. */
void accesslog_submit(struct evbuffer *buf);
/* Reopen the file (SIGUSR1). */
void accesslog_reopen(void);
/* Flush everything queued and stop the thread. */
void accesslog_stop(void);

#endif
