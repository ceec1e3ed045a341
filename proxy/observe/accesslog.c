/* Envoy-format access log: the format-string parser, the line formatter that
 * workers run, and the logger thread that owns the file.
 *
 * Workers batch lines in their own evbuffer and hand the batch over with
 * accesslog_submit() (a mutex and a chain move, never a write). The logger
 * thread writes with blocking write(2); when it falls behind by more than
 * AL_MAX_QUEUED bytes, new batches are dropped and counted in access_log.dropped. */
#include <ctype.h>
#include <stddef.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>

#include "observe/accesslog.h"
#include "core/arena.h"
#include "config/cfg-t.h"
#include "core/log.h"
#include "core/stats.h"
#include "core/worker.h"
#include "http/stream.h"

#define AL_MAX_QUEUED (16u << 20)

const char accesslog_default_format[] =
	"[%START_TIME%] \"%REQ(:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% %PROTOCOL%\" "
	"%RESPONSE_CODE% %RESPONSE_FLAGS% %BYTES_RECEIVED% %BYTES_SENT% %DURATION% "
	"%RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)% \"%REQ(X-FORWARDED-FOR)%\" \"%REQ(USER-AGENT)%\" "
	"\"%REQ(X-REQUEST-ID)%\" \"%REQ(:AUTHORITY)%\" \"%UPSTREAM_HOST%\"\n";

/* Most commands print one stream_info field, found by its offset; the
 * others each have their own case in al_format_line(). */
enum al_cmd {
	AL_LITERAL,
	AL_START_TIME,
	AL_REQ,
	AL_RESP,
	AL_TRAILER,			/* response trailer */
	AL_RESPONSE_CODE,
	AL_RESPONSE_FLAGS,
	AL_UPSTREAM_CLUSTER,
	AL_ROUTE_NAME,
	AL_HOSTNAME,
	AL_ABSENT,			/* never set in wingman: always "-" */
	AL_INFO_STR,			/* a const char * field */
	AL_INFO_TEXT,			/* a char[] field */
	AL_INFO_ADDR_NOPORT,		/* a char[] "ip:port" field, printed without the port */
	AL_INFO_U64,			/* a uint64_t field */
	AL_INFO_MS,			/* milliseconds from start_mono_us to a uint64_t field */
	AL_RESPONSE_TX_DURATION,	/* first upstream response byte to the last byte sent */
};

enum al_arg { ARG_NONE, ARG_REQUIRED, ARG_OPTIONAL };

#define INFO(field) offsetof(struct stream_info, field)

static const struct {
	const char *name;
	enum al_cmd cmd;
	enum al_arg arg;
	size_t off;			/* AL_INFO_*: the field's offset in struct stream_info */
} al_cmds[] = {
	{ "START_TIME", AL_START_TIME, ARG_OPTIONAL, 0 },
	{ "REQ", AL_REQ, ARG_REQUIRED, 0 },
	{ "RESP", AL_RESP, ARG_REQUIRED, 0 },
	{ "TRAILER", AL_TRAILER, ARG_REQUIRED, 0 },
	{ "RESP_TRAILER", AL_TRAILER, ARG_REQUIRED, 0 },
	{ "RESPONSE_TX_DURATION", AL_RESPONSE_TX_DURATION, ARG_NONE, 0 },
	{ "RESPONSE_CODE", AL_RESPONSE_CODE, ARG_NONE, 0 },
	{ "RESPONSE_FLAGS", AL_RESPONSE_FLAGS, ARG_NONE, 0 },
	{ "UPSTREAM_CLUSTER", AL_UPSTREAM_CLUSTER, ARG_NONE, 0 },
	{ "ROUTE_NAME", AL_ROUTE_NAME, ARG_NONE, 0 },
	{ "HOSTNAME", AL_HOSTNAME, ARG_NONE, 0 },
	/* Envoy sets it only when a network filter (network RBAC) closes the
	 * connection for L4 policy; wingman has no such filter. */
	{ "CONNECTION_TERMINATION_DETAILS", AL_ABSENT, ARG_NONE, 0 },
	/* one stream_info field each */
	{ "PROTOCOL", AL_INFO_STR, ARG_NONE, INFO(protocol) },
	{ "RESPONSE_CODE_DETAILS", AL_INFO_STR, ARG_NONE, INFO(code_details) },
	{ "BYTES_RECEIVED", AL_INFO_U64, ARG_NONE, INFO(bytes_received) },
	{ "BYTES_SENT", AL_INFO_U64, ARG_NONE, INFO(bytes_sent) },
	{ "CONNECTION_ID", AL_INFO_U64, ARG_NONE, INFO(connection_id) },
	{ "UPSTREAM_REQUEST_ATTEMPT_COUNT", AL_INFO_U64, ARG_NONE, INFO(upstream_attempts) },
	{ "DURATION", AL_INFO_MS, ARG_NONE, INFO(end_mono_us) },
	{ "REQUEST_DURATION", AL_INFO_MS, ARG_NONE, INFO(req_end_mono_us) },
	{ "RESPONSE_DURATION", AL_INFO_MS, ARG_NONE, INFO(up_resp_mono_us) },
	{ "UPSTREAM_HOST", AL_INFO_TEXT, ARG_NONE, INFO(upstream_host) },
	{ "UPSTREAM_REMOTE_ADDRESS", AL_INFO_TEXT, ARG_NONE, INFO(upstream_host) },
	{ "UPSTREAM_REMOTE_ADDRESS_WITHOUT_PORT", AL_INFO_ADDR_NOPORT, ARG_NONE, INFO(upstream_host) },
	{ "UPSTREAM_LOCAL_ADDRESS", AL_INFO_TEXT, ARG_NONE, INFO(upstream_local) },
	{ "UPSTREAM_LOCAL_ADDRESS_WITHOUT_PORT", AL_INFO_ADDR_NOPORT, ARG_NONE, INFO(upstream_local) },
	{ "DOWNSTREAM_REMOTE_ADDRESS", AL_INFO_TEXT, ARG_NONE, INFO(downstream_remote) },
	{ "DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT", AL_INFO_ADDR_NOPORT, ARG_NONE, INFO(downstream_remote) },
	{ "DOWNSTREAM_LOCAL_ADDRESS", AL_INFO_TEXT, ARG_NONE, INFO(downstream_local) },
	{ "DOWNSTREAM_LOCAL_ADDRESS_WITHOUT_PORT", AL_INFO_ADDR_NOPORT, ARG_NONE, INFO(downstream_local) },
	{ "UPSTREAM_TRANSPORT_FAILURE_REASON", AL_INFO_STR, ARG_NONE, INFO(upstream_transport_failure) },
	{ "DOWNSTREAM_PEER_URI_SAN", AL_INFO_STR, ARG_NONE, INFO(downstream_peer_uri_san) },
	{ "DOWNSTREAM_TLS_VERSION", AL_INFO_STR, ARG_NONE, INFO(downstream_tls_version) },
	{ "REQUESTED_SERVER_NAME", AL_INFO_STR, ARG_NONE, INFO(requested_server_name) },
};

#undef INFO

/* Envoy's short response-flag codes, in Envoy's print order. */
static const struct {
	uint32_t flag;
	const char *code;
} al_flags[] = {
	{ RF_UH, "UH" }, { RF_UT, "UT" }, { RF_LR, "LR" }, { RF_UR, "UR" }, { RF_UF, "UF" },
	{ RF_UC, "UC" }, { RF_UO, "UO" }, { RF_NR, "NR" }, { RF_DI, "DI" }, { RF_FI, "FI" },
	{ RF_RL, "RL" }, { RF_UAEX, "UAEX" }, { RF_DC, "DC" }, { RF_URX, "URX" }, { RF_SI, "SI" },
	{ RF_DPE, "DPE" }, { RF_UMSDR, "UMSDR" }, { RF_DT, "DT" },
};

/* Request pseudo-headers (and Host) map onto fields of the parsed head,
 * :status onto the response status, the rest onto the header list. */
enum al_pseudo { PS_NONE, PS_REQ_FIELD, PS_STATUS, PS_XFF };

struct al_hdr {
	const char *name;		/* lower-cased */
	enum al_pseudo pseudo;
	size_t off;			/* PS_REQ_FIELD: offset of the field in struct http_req_head */
};

struct al_item {
	enum al_cmd cmd;
	const char *text;		/* AL_LITERAL text; AL_START_TIME format (NULL: default) */
	size_t len;			/* AL_LITERAL length */
	struct al_hdr hdr[2];		/* AL_REQ/AL_RESP: header and fallback (name NULL if none) */
	size_t max_len;			/* ":N" truncation; 0 = none */
	size_t off;			/* AL_INFO_*: offset of the field in struct stream_info */
};

struct al_format {
	struct al_item *items;
	unsigned n;
};

static void set_hdr(struct al_hdr *h, char *name)
{
	static const struct {
		const char *name;
		size_t off;
	} req_fields[] = {
		{ ":method", offsetof(struct http_req_head, method) },
		{ ":path", offsetof(struct http_req_head, path) },
		{ ":authority", offsetof(struct http_req_head, authority) },
		{ "host", offsetof(struct http_req_head, authority) },
		{ ":scheme", offsetof(struct http_req_head, scheme) },
	};

	for (char *p = name; *p; p++)
		*p = (char)tolower((unsigned char)*p);
	h->name = name;
	h->pseudo = !strcmp(name, ":status") ? PS_STATUS : !strcmp(name, "x-forwarded-for") ? PS_XFF : PS_NONE;
	for (size_t i = 0; i < ARRAY_SIZE(req_fields); i++) {
		if (!strcmp(name, req_fields[i].name)) {
			h->pseudo = PS_REQ_FIELD;
			h->off = req_fields[i].off;
		}
	}
}

/* Parses one %COMMAND[(arg)][:N]% starting at fmt[*pos] == '%'; advances *pos past it. */
static int parse_cmd(struct arena *a, const char *fmt, size_t *pos, struct al_item *it, const char **err)
{
	const char *p = fmt + *pos + 1, *name = p, *arg = NULL;
	size_t nlen, alen = 0, i;

	while (isupper((unsigned char)*p) || isdigit((unsigned char)*p) || *p == '_')
		p++;
	nlen = (size_t)(p - name);
	if (!nlen) {
		*err = "expected a command name after '%'";
		return -1;
	}
	for (i = 0; i < ARRAY_SIZE(al_cmds); i++)
		if (strlen(al_cmds[i].name) == nlen && !memcmp(al_cmds[i].name, name, nlen))
			break;
	if (i == ARRAY_SIZE(al_cmds)) {
		*err = "unknown command";
		return -1;
	}
	if (*p == '(') {
		arg = ++p;
		while (*p && *p != ')')
			p++;
		if (!*p) {
			*err = "missing ')' after command argument";
			return -1;
		}
		alen = (size_t)(p - arg);
		p++;
	}
	if (*p == ':') {
		char *end;
		unsigned long n;

		p++;
		if (!isdigit((unsigned char)*p)) {
			*err = "expected a maximum length after ':'";
			return -1;
		}
		n = strtoul(p, &end, 10);
		if (n == 0 || n > 1u << 20) {
			*err = "maximum length out of range";
			return -1;
		}
		it->max_len = n;
		p = end;
	}
	if (*p != '%') {
		*err = "command not terminated by '%'";
		return -1;
	}
	if (al_cmds[i].arg == ARG_NONE && arg) {
		*err = "command takes no argument";
		return -1;
	}
	if (al_cmds[i].arg == ARG_REQUIRED && !alen) {
		*err = "command needs an argument";
		return -1;
	}
	it->cmd = al_cmds[i].cmd;
	it->off = al_cmds[i].off;
	if (it->cmd == AL_START_TIME && alen) {
		it->text = arena_strndup(a, arg, alen);
		if (!it->text) {
			*err = "out of memory";
			return -1;
		}
	} else if (it->cmd == AL_REQ || it->cmd == AL_RESP || it->cmd == AL_TRAILER) {
		char *s = arena_strndup(a, arg, alen), *q;

		if (!s) {
			*err = "out of memory";
			return -1;
		}
		q = strchr(s, '?');
		if (q) {
			*q++ = '\0';
			if (!*q || strchr(q, '?')) {
				*err = "bad alternative header";
				return -1;
			}
			set_hdr(&it->hdr[1], q);
		}
		if (!*s) {
			*err = "empty header name";
			return -1;
		}
		set_hdr(&it->hdr[0], s);
	}
	*pos = (size_t)(p + 1 - fmt);
	return 0;
}

struct al_format *al_format_parse(struct arena *a, const char *fmt, const char **err, size_t *errpos)
{
	size_t len = strlen(fmt), cap = 2, pos = 0, lit_start;
	struct al_format *f;
	char *lit;

	for (const char *p = fmt; *p; p++)
		cap += *p == '%';
	f = arena_zalloc(a, sizeof(*f));
	if (f)
		f->items = arena_zalloc(a, sizeof(*f->items) * cap);
	/* literal runs are copied with "%%" collapsed, so they need their own copy */
	lit = arena_alloc(a, len + 2);
	if (!f || !f->items || !lit) {
		*err = "out of memory";
		*errpos = 0;
		return NULL;
	}
	lit_start = 0;
	while (pos < len) {
		if (fmt[pos] != '%' || fmt[pos + 1] == '%') {
			size_t start = lit_start;

			while (pos < len && (fmt[pos] != '%' || fmt[pos + 1] == '%')) {
				lit[lit_start++] = fmt[pos];
				pos += fmt[pos] == '%' ? 2 : 1;
			}
			f->items[f->n++] = (struct al_item){
				.cmd = AL_LITERAL, .text = lit + start, .len = lit_start - start,
			};
			continue;
		}
		if (parse_cmd(a, fmt, &pos, &f->items[f->n], err)) {
			*errpos = pos;
			return NULL;
		}
		f->n++;
	}
	if (!len || fmt[len - 1] != '\n') {
		lit[lit_start] = '\n';
		f->items[f->n++] = (struct al_item){ .cmd = AL_LITERAL, .text = lit + lit_start, .len = 1 };
	}
	return f;
}

/* Line builder: a stack buffer flushed into the evbuffer when full. */
struct lb {
	struct evbuffer *out;
	size_t n;
	char buf[2048];
};

static void lb_put(struct lb *b, const char *s, size_t len)
{
	if (b->n + len > sizeof(b->buf)) {
		evbuffer_add(b->out, b->buf, b->n);
		b->n = 0;
		if (len > sizeof(b->buf)) {
			evbuffer_add(b->out, s, len);
			return;
		}
	}
	memcpy(b->buf + b->n, s, len);
	b->n += len;
}

/* A value, "-" when absent or empty, cut to the item's maximum length. */
static void lb_val(struct lb *b, const struct al_item *it, const char *s, size_t len)
{
	if (!s || !len) {
		lb_put(b, "-", 1);
		return;
	}
	if (it->max_len && len > it->max_len)
		len = it->max_len;
	lb_put(b, s, len);
}

static void lb_str(struct lb *b, const struct al_item *it, const char *s)
{
	lb_val(b, it, s, s ? strlen(s) : 0);
}

static void lb_u64(struct lb *b, const struct al_item *it, uint64_t v)
{
	char num[24];

	lb_val(b, it, num, (size_t)snprintf(num, sizeof(num), "%" PRIu64, v));
}

static void lb_ms(struct lb *b, const struct al_item *it, uint64_t from, uint64_t to)
{
	if (!from || !to || to < from)
		lb_put(b, "-", 1);
	else
		lb_u64(b, it, (to - from) / 1000);
}

/* "ip:port" → "ip", "[v6]:port" → "v6" (Envoy prints the bare address). */
static void lb_addr_noport(struct lb *b, const struct al_item *it, const char *s)
{
	const char *colon = strrchr(s, ':');
	size_t len = colon ? (size_t)(colon - s) : strlen(s);

	if (len >= 2 && s[0] == '[' && s[len - 1] == ']')
		lb_val(b, it, s + 1, len - 2);
	else
		lb_val(b, it, s, len);
}

static void lb_hdr(struct lb *b, const struct al_item *it, const struct al_subject *x, bool req)
{
	for (unsigned i = 0; i < 2 && it->hdr[i].name; i++) {
		const struct al_hdr *h = &it->hdr[i];
		const struct http_headers *hs = req ? (x->req ? &x->req->h : NULL) : (x->resp ? &x->resp->h : NULL);

		if (it->cmd == AL_TRAILER)
			hs = x->resp ? &x->resp->trailers : NULL;
		const char *v = NULL;
		char status[12];

		if (!hs)
			break;	/* a TCP connection: no heads */

		switch (h->pseudo) {
		case PS_REQ_FIELD:
			v = req ? *(const char *const *)((const char *)x->req + h->off) : NULL;
			break;
		case PS_STATUS:
			if (!req && x->resp->status) {
				snprintf(status, sizeof(status), "%d", x->resp->status);
				v = status;
			}
			break;
		case PS_XFF:
			if (req && x->info->xff_appended) {
				if (x->info->client_xff_len) {
					lb_val(b, it, x->info->client_xff, x->info->client_xff_len);
					return;
				}
				break;
			}
			/* the head as received */
			__attribute__((fallthrough));
		case PS_NONE: {
			const struct http_hdr *hd = http_hdr_find(hs, h->name);

			if (hd && hd->vlen) {
				lb_val(b, it, hd->value, hd->vlen);
				return;
			}
			break;
		}
		}
		if (v && *v) {
			lb_str(b, it, v);
			return;
		}
	}
	lb_put(b, "-", 1);
}

static __thread struct {
	time_t sec;
	char text[24];			/* "YYYY-mm-ddTHH:MM:SS" */
} al_time_cache;

static void lb_default_time(struct lb *b, uint64_t wall_us)
{
	time_t sec = (time_t)(wall_us / 1000000);
	char frac[8];

	if (al_time_cache.sec != sec || !al_time_cache.text[0]) {
		struct tm tm;

		gmtime_r(&sec, &tm);
		strftime(al_time_cache.text, sizeof(al_time_cache.text), "%Y-%m-%dT%H:%M:%S", &tm);
		al_time_cache.sec = sec;
	}
	lb_put(b, al_time_cache.text, strlen(al_time_cache.text));
	snprintf(frac, sizeof(frac), ".%03uZ", (unsigned)(wall_us % 1000000 / 1000));
	lb_put(b, frac, strlen(frac));
}

/* strftime with Envoy's extensions: %Nf / %f (N fractional digits, default 9)
 * and %s (epoch seconds), always in UTC. */
static void lb_custom_time(struct lb *b, const struct al_item *it, uint64_t wall_us)
{
	time_t sec = (time_t)(wall_us / 1000000);
	unsigned long ns = (unsigned long)(wall_us % 1000000) * 1000;
	char fmt[512], out[1024];
	size_t n = 0, olen;
	struct tm tm;

	gmtime_r(&sec, &tm);
	for (const char *p = it->text; *p && n < sizeof(fmt) - 32; p++) {
		int digits = 0;
		const char *q = p + 1;

		if (*p != '%') {
			fmt[n++] = *p;
			continue;
		}
		if (*q >= '1' && *q <= '9' && q[1] == 'f') {
			digits = *q - '0';
			q++;
		} else if (*q == 'f') {
			digits = 9;
		}
		if (digits) {
			char d[16];

			snprintf(d, sizeof(d), "%09lu", ns);
			memcpy(fmt + n, d, (size_t)digits);
			n += (size_t)digits;
			p = q;
		} else if (*q == 's') {
			n += (size_t)snprintf(fmt + n, sizeof(fmt) - n, "%lld", (long long)sec);
			p = q;
		} else if (*q) {
			fmt[n++] = '%';
			fmt[n++] = *q;
			p = q;
		}
	}
	fmt[n] = '\0';
	olen = n ? strftime(out, sizeof(out), fmt, &tm) : 0;
	lb_val(b, it, out, olen);
}

static void lb_flags(struct lb *b, uint32_t flags)
{
	bool any = false;

	for (size_t i = 0; i < ARRAY_SIZE(al_flags); i++) {
		if (!(flags & al_flags[i].flag))
			continue;
		if (any)
			lb_put(b, ",", 1);
		lb_put(b, al_flags[i].code, strlen(al_flags[i].code));
		any = true;
	}
	if (!any)
		lb_put(b, "-", 1);
}

size_t al_response_flags(uint32_t flags, char *buf, size_t len)
{
	size_t n = 0;

	if (!len)
		return 0;
	for (size_t i = 0; flags && i < ARRAY_SIZE(al_flags); i++) {
		size_t cl;

		if (!(flags & al_flags[i].flag))
			continue;
		cl = strlen(al_flags[i].code);
		if (n + (n ? 1 : 0) + cl >= len)
			break;
		if (n)
			buf[n++] = ',';
		memcpy(buf + n, al_flags[i].code, cl);
		n += cl;
	}
	if (!n && len > 1)
		buf[n++] = '-';
	buf[n] = '\0';
	return n;
}

static char al_hostname[256];
static pthread_once_t al_hostname_once = PTHREAD_ONCE_INIT;

static void hostname_init(void)
{
	if (gethostname(al_hostname, sizeof(al_hostname) - 1))
		al_hostname[0] = '\0';
}

static const char *hostname(void)
{
	pthread_once(&al_hostname_once, hostname_init);
	return al_hostname;
}

void al_format_subject(const struct al_format *f, const struct al_subject *x, struct evbuffer *out)
{
	const struct stream_info *in = x->info;
	const char *field = (const char *)in;	/* base of the AL_INFO_* offsets */
	struct lb b;

	b.out = out;
	b.n = 0;
	for (unsigned i = 0; i < f->n; i++) {
		const struct al_item *it = &f->items[i];

		switch (it->cmd) {
		case AL_LITERAL:
			lb_put(&b, it->text, it->len);
			break;
		case AL_START_TIME:
			if (it->text)
				lb_custom_time(&b, it, in->start_wall_us);
			else
				lb_default_time(&b, in->start_wall_us);
			break;
		case AL_REQ:
			lb_hdr(&b, it, x, true);
			break;
		case AL_RESP:
		case AL_TRAILER:
			lb_hdr(&b, it, x, false);
			break;
		case AL_RESPONSE_TX_DURATION:
			lb_ms(&b, it, in->up_resp_mono_us, in->end_mono_us);
			break;
		case AL_RESPONSE_CODE:
			lb_u64(&b, it, in->response_code > 0 ? (uint64_t)in->response_code : 0);
			break;
		case AL_RESPONSE_FLAGS:
			lb_flags(&b, in->flags);
			break;
		case AL_UPSTREAM_CLUSTER:
			lb_str(&b, it, x->cluster);
			break;
		case AL_ROUTE_NAME:
			lb_str(&b, it, x->route);
			break;
		case AL_HOSTNAME:
			lb_str(&b, it, hostname());
			break;
		case AL_ABSENT:
			lb_put(&b, "-", 1);
			break;
		case AL_INFO_STR:
			lb_str(&b, it, *(const char *const *)(field + it->off));
			break;
		case AL_INFO_TEXT:
			lb_str(&b, it, field + it->off);
			break;
		case AL_INFO_ADDR_NOPORT:
			lb_addr_noport(&b, it, field + it->off);
			break;
		case AL_INFO_U64:
			lb_u64(&b, it, *(const uint64_t *)(field + it->off));
			break;
		case AL_INFO_MS:
			lb_ms(&b, it, in->start_mono_us, *(const uint64_t *)(field + it->off));
			break;
		}
	}
	if (b.n)
		evbuffer_add(out, b.buf, b.n);
}

void al_format_line(const struct al_format *f, const struct stream *s, struct evbuffer *out)
{
	const struct al_subject x = {
		.info = &s->info, .req = &s->req, .resp = &s->resp,
		.cluster = s->cluster ? s->cluster->name : NULL, .route = s->route ? s->route->name : NULL,
	};

	al_format_subject(f, &x, out);
}

void accesslog_stream(struct stream *s)
{
	al_format_line(s->cfg->access_log, s, s->worker->log_buf);
	worker_log_flush_maybe(s->worker);
}

void accesslog_subject(const struct al_format *f, const struct al_subject *x, struct worker *w)
{
	al_format_subject(f, x, w->log_buf);
	worker_log_flush_maybe(w);
}

/* The logger thread's state; everything but fd is under mu. */
static struct {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	pthread_t thread;
	bool running;
	bool stop;
	bool reopen;
	bool swap;			/* new_fd/new_path wait for the logger to take them */
	bool on;			/* a path is configured: submissions are kept */
	struct evbuffer *q;
	size_t pending;			/* bytes queued or being written */
	int new_fd;
	char *new_path;
	char *path;			/* main thread's view of the current path */
	int fd;				/* logger thread only once running */
	char *cur_path;			/* logger thread only once running */
} al = {
	.mu = PTHREAD_MUTEX_INITIALIZER,
	.cv = PTHREAD_COND_INITIALIZER,
	.fd = -1,
	.new_fd = -1,
};

static int al_open(const char *path)
{
	int fd;

	if (!strcmp(path, "/dev/stdout"))
		return STDOUT_FILENO;
	if (!strcmp(path, "/dev/stderr"))
		return STDERR_FILENO;
	fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0) {
		int err = errno;

		log_err("access log: cannot open %s: %s", path, strerror(err));
		return -err;
	}
	return fd;
}

static void al_close(int fd)
{
	if (fd > STDERR_FILENO)
		close(fd);
}

/* Writes and drains all of batch; on a hard error the rest is dropped. */
static void al_write(int fd, struct evbuffer *batch)
{
	static bool warned;

	while (evbuffer_get_length(batch)) {
		int n;

		if (fd < 0) {
			evbuffer_drain(batch, evbuffer_get_length(batch));
			return;
		}
		n = evbuffer_write(batch, fd);
		if (n >= 0)
			continue;
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN || errno == EWOULDBLOCK) {
			struct pollfd p = { .fd = fd, .events = POLLOUT };

			poll(&p, 1, 1000);
			continue;
		}
		if (!warned) {
			log_err("access log: write failed: %s (dropping lines)", strerror(errno));
			warned = true;
		}
		evbuffer_drain(batch, evbuffer_get_length(batch));
	}
}

static void *al_main(void *arg)
{
	struct evbuffer *batch = arg;

	pthread_mutex_lock(&al.mu);
	for (;;) {
		int old_fd = -1;
		char *old_path = NULL;
		bool reopen, done;
		size_t len;

		while (!evbuffer_get_length(al.q) && !al.stop && !al.swap && !al.reopen)
			pthread_cond_wait(&al.cv, &al.mu);
		if (al.swap) {
			old_fd = al.fd;
			old_path = al.cur_path;
			al.fd = al.new_fd;
			al.cur_path = al.new_path;
			al.new_fd = -1;
			al.new_path = NULL;
			al.swap = false;
		}
		reopen = al.reopen;
		al.reopen = false;
		evbuffer_add_buffer(batch, al.q);
		len = evbuffer_get_length(batch);
		pthread_mutex_unlock(&al.mu);

		al_close(old_fd);
		free(old_path);
		if (reopen && al.cur_path && al.fd > STDERR_FILENO) {
			int fd = al_open(al.cur_path);

			if (fd >= 0) {
				al_close(al.fd);
				al.fd = fd;
			}
		}
		al_write(al.fd, batch);

		pthread_mutex_lock(&al.mu);
		al.pending -= len;
		done = al.stop && !evbuffer_get_length(al.q) && !al.swap;
		if (done)
			break;
	}
	pthread_mutex_unlock(&al.mu);
	evbuffer_free(batch);
	return NULL;
}

static bool same_path(const char *a, const char *b)
{
	return (!a && !b) || (a && b && !strcmp(a, b));
}

int accesslog_start(const char *path)
{
	struct evbuffer *batch;
	sigset_t all, old;
	int fd = -1, err;

	if (al.running)
		return accesslog_set_path(path);
	if (path) {
		fd = al_open(path);
		if (fd < 0)
			return fd;
	}
	al.q = evbuffer_new();
	batch = evbuffer_new();
	if (!al.q || !batch || (path && !(al.path = strdup(path))) ||
	    (path && !(al.cur_path = strdup(path)))) {
		if (al.q)
			evbuffer_free(al.q);
		if (batch)
			evbuffer_free(batch);
		free(al.path);
		free(al.cur_path);
		al.q = NULL;
		al.path = al.cur_path = NULL;
		al_close(fd);
		return -ENOMEM;
	}
	al.fd = fd;
	al.on = path != NULL;
	al.stop = false;
	/* signals stay with the main thread */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	err = pthread_create(&al.thread, NULL, al_main, batch);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (err) {
		evbuffer_free(batch);
		evbuffer_free(al.q);
		al.q = NULL;
		al_close(fd);
		al.fd = -1;
		return -err;
	}
	al.running = true;
	return 0;
}

int accesslog_set_path(const char *path)
{
	char *dup = NULL;
	int fd = -1;

	if (!al.running)
		return accesslog_start(path);
	if (same_path(path, al.path))
		return 0;
	if (path) {
		dup = strdup(path);
		if (!dup)
			return -ENOMEM;
		fd = al_open(path);
		if (fd < 0) {
			free(dup);
			return fd;
		}
	}
	free(al.path);
	al.path = path ? strdup(path) : NULL;
	pthread_mutex_lock(&al.mu);
	if (al.swap) {
		al_close(al.new_fd);
		free(al.new_path);
	}
	al.new_fd = fd;
	al.new_path = dup;
	al.swap = true;
	al.on = path != NULL;
	pthread_cond_signal(&al.cv);
	pthread_mutex_unlock(&al.mu);
	return 0;
}

static uint64_t count_lines(struct evbuffer *buf)
{
	struct evbuffer_iovec v[16];
	struct evbuffer_ptr ptr;
	uint64_t lines = 0;
	int n;

	evbuffer_ptr_set(buf, &ptr, 0, EVBUFFER_PTR_SET);
	for (;;) {
		size_t total = 0;

		n = evbuffer_peek(buf, -1, &ptr, v, 16);
		for (int i = 0; i < n && i < 16; i++) {
			const char *p = v[i].iov_base, *end = p + v[i].iov_len;

			while ((p = memchr(p, '\n', (size_t)(end - p)))) {
				lines++;
				p++;
			}
			total += v[i].iov_len;
		}
		if (n <= 16 || evbuffer_ptr_set(buf, &ptr, total, EVBUFFER_PTR_ADD))
			break;
	}
	return lines;
}

void accesslog_submit(struct evbuffer *buf)
{
	size_t len = evbuffer_get_length(buf);
	bool on;

	if (!len)
		return;
	pthread_mutex_lock(&al.mu);
	on = al.running && al.on && !al.stop;
	if (on && al.pending + len <= AL_MAX_QUEUED) {
		evbuffer_add_buffer(al.q, buf);
		al.pending += len;
		pthread_cond_signal(&al.cv);
		pthread_mutex_unlock(&al.mu);
		return;
	}
	pthread_mutex_unlock(&al.mu);
	if (on && stats_tls)
		stats_add(SERVER_STAT(SS_ACCESS_LOG_DROPPED), (int64_t)count_lines(buf));
	evbuffer_drain(buf, len);
}

void accesslog_reopen(void)
{
	pthread_mutex_lock(&al.mu);
	al.reopen = true;
	pthread_cond_signal(&al.cv);
	pthread_mutex_unlock(&al.mu);
}

void accesslog_stop(void)
{
	if (!al.running)
		return;
	pthread_mutex_lock(&al.mu);
	al.stop = true;
	pthread_cond_signal(&al.cv);
	pthread_mutex_unlock(&al.mu);
	pthread_join(al.thread, NULL);
	al.running = false;
	al_close(al.fd);
	al.fd = -1;
	evbuffer_free(al.q);
	al.q = NULL;
	free(al.path);
	free(al.cur_path);
	al.path = al.cur_path = NULL;
	al.on = false;
}
