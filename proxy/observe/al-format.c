/* Access-log formats: Envoy's %COMMAND(ARG):N% strings and its json_format
 * dictionaries, compiled once per config, and the formatter workers run per
 * line. Every command evaluates to a typed value (absent, a string, a
 * number); a text format prints it or "-", a json_format value that is one
 * command alone keeps the type (null, a string, a number), as Envoy's
 * formatter does with json_format. */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>

#include "observe/accesslog.h"
#include "core/arena.h"
#include "core/json.h"
#include "config/cfg-t.h"
#include "config/ytree.h"
#include "http/stream.h"
#include "observe/trace.h"

const char accesslog_default_format[] =
	"[%START_TIME%] \"%REQ(:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% %PROTOCOL%\" "
	"%RESPONSE_CODE% %RESPONSE_FLAGS% %BYTES_RECEIVED% %BYTES_SENT% %DURATION% "
	"%RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)% \"%REQ(X-FORWARDED-FOR)%\" \"%REQ(USER-AGENT)%\" "
	"\"%REQ(X-REQUEST-ID)%\" \"%REQ(:AUTHORITY)%\" \"%UPSTREAM_HOST%\"\n";

/* Most commands read one stream_info field, found by its offset; the others
 * each have their own case in eval(). */
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
	AL_TRACE_ID,			/* the request's trace context, as forwarded */
	AL_ABSENT,			/* never set in wingman: always absent */
	AL_INFO_STR,			/* a const char * field */
	AL_INFO_REASON,			/* a const char * field, spaces written as '_' */
	AL_INFO_TEXT,			/* a char[] field */
	AL_INFO_ADDR_NOPORT,		/* a char[] "ip:port" field, printed without the port */
	AL_INFO_PORT,			/* a char[] "ip:port" field: the port, a number */
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
	{ "REQUEST_HEADER", AL_REQ, ARG_REQUIRED, 0 },
	/* Istio's formatter extension: the header without its query string */
	{ "REQ_WITHOUT_QUERY", AL_REQ, ARG_REQUIRED, 1 },
	{ "RESP", AL_RESP, ARG_REQUIRED, 0 },
	{ "RESPONSE_HEADER", AL_RESP, ARG_REQUIRED, 0 },
	{ "TRAILER", AL_TRAILER, ARG_REQUIRED, 0 },
	{ "RESP_TRAILER", AL_TRAILER, ARG_REQUIRED, 0 },
	{ "RESPONSE_TRAILER", AL_TRAILER, ARG_REQUIRED, 0 },
	{ "RESPONSE_TX_DURATION", AL_RESPONSE_TX_DURATION, ARG_NONE, 0 },
	{ "RESPONSE_CODE", AL_RESPONSE_CODE, ARG_NONE, 0 },
	{ "RESPONSE_FLAGS", AL_RESPONSE_FLAGS, ARG_NONE, 0 },
	{ "UPSTREAM_CLUSTER", AL_UPSTREAM_CLUSTER, ARG_NONE, 0 },
	/* Envoy's cluster name without alt_stat_name, which wingman does not have */
	{ "UPSTREAM_CLUSTER_RAW", AL_UPSTREAM_CLUSTER, ARG_NONE, 0 },
	{ "ROUTE_NAME", AL_ROUTE_NAME, ARG_NONE, 0 },
	{ "HOSTNAME", AL_HOSTNAME, ARG_NONE, 0 },
	{ "TRACE_ID", AL_TRACE_ID, ARG_NONE, 0 },
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
	{ "UPSTREAM_REMOTE_PORT", AL_INFO_PORT, ARG_NONE, INFO(upstream_host) },
	{ "UPSTREAM_LOCAL_ADDRESS", AL_INFO_TEXT, ARG_NONE, INFO(upstream_local) },
	{ "UPSTREAM_LOCAL_ADDRESS_WITHOUT_PORT", AL_INFO_ADDR_NOPORT, ARG_NONE, INFO(upstream_local) },
	{ "UPSTREAM_LOCAL_PORT", AL_INFO_PORT, ARG_NONE, INFO(upstream_local) },
	{ "DOWNSTREAM_REMOTE_ADDRESS", AL_INFO_TEXT, ARG_NONE, INFO(downstream_remote) },
	{ "DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT", AL_INFO_ADDR_NOPORT, ARG_NONE, INFO(downstream_remote) },
	{ "DOWNSTREAM_REMOTE_PORT", AL_INFO_PORT, ARG_NONE, INFO(downstream_remote) },
	/* No PROXY protocol and no trusted hops: the direct peer is the remote. */
	{ "DOWNSTREAM_DIRECT_REMOTE_ADDRESS", AL_INFO_TEXT, ARG_NONE, INFO(downstream_remote) },
	{ "DOWNSTREAM_DIRECT_REMOTE_ADDRESS_WITHOUT_PORT", AL_INFO_ADDR_NOPORT, ARG_NONE, INFO(downstream_remote) },
	{ "DOWNSTREAM_DIRECT_REMOTE_PORT", AL_INFO_PORT, ARG_NONE, INFO(downstream_remote) },
	{ "DOWNSTREAM_LOCAL_ADDRESS", AL_INFO_TEXT, ARG_NONE, INFO(downstream_local) },
	{ "DOWNSTREAM_LOCAL_ADDRESS_WITHOUT_PORT", AL_INFO_ADDR_NOPORT, ARG_NONE, INFO(downstream_local) },
	{ "DOWNSTREAM_LOCAL_PORT", AL_INFO_PORT, ARG_NONE, INFO(downstream_local) },
	{ "UPSTREAM_TRANSPORT_FAILURE_REASON", AL_INFO_REASON, ARG_NONE, INFO(upstream_transport_failure) },
	{ "DOWNSTREAM_PEER_URI_SAN", AL_INFO_STR, ARG_NONE, INFO(downstream_peer_uri_san) },
	{ "DOWNSTREAM_LOCAL_URI_SAN", AL_INFO_STR, ARG_NONE, INFO(downstream_local_uri_san) },
	{ "UPSTREAM_PEER_URI_SAN", AL_INFO_STR, ARG_NONE, INFO(upstream_peer_uri_san) },
	{ "UPSTREAM_LOCAL_URI_SAN", AL_INFO_STR, ARG_NONE, INFO(upstream_local_uri_san) },
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
	bool noquery;			/* AL_REQ: cut at the first '?' (REQ_WITHOUT_QUERY) */
	const char *text;		/* AL_LITERAL text; AL_START_TIME format (NULL: default) */
	size_t len;			/* AL_LITERAL length */
	struct al_hdr hdr[2];		/* AL_REQ/AL_RESP: header and fallback (name NULL if none) */
	size_t max_len;			/* ":N" truncation; 0 = none */
	size_t off;			/* AL_INFO_*: offset of the field in struct stream_info */
};

/* A json_format node: a map (its members sorted by key, as Envoy writes
 * them), a list, one command alone (typed), any other string (a string),
 * or a number or boolean of the config, written as it is. */
#define AL_JSON_DEPTH 16		/* maps and lists in maps and lists */

enum al_jkind { AJ_MAP, AJ_LIST, AJ_TYPED, AJ_TEXT, AJ_RAW };

struct al_json {
	enum al_jkind kind;
	const char *key;		/* a map member's: "\"key\":", escaped */
	size_t klen;
	unsigned n;			/* AJ_MAP, AJ_LIST: kids; AJ_TYPED, AJ_TEXT: items */
	struct al_json *kids;
	struct al_item *items;
	const char *raw;		/* AJ_RAW */
};

struct al_format {
	struct al_item *items;		/* a text format */
	unsigned n;
	struct al_json *json;		/* a json_format: the top map; items unused */
	bool omit_empty;		/* omit_empty_values */
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
	if (it->cmd == AL_REQ)
		it->noquery = al_cmds[i].off;
	else
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

/* Compiles fmt into *items (*n of them); with newline, a '\n' ends the
 * format when fmt does not. 0, or -1 with *err and *errpos. */
static int parse_items(struct arena *a, const char *fmt, bool newline, struct al_item **items, unsigned *n,
		       const char **err, size_t *errpos)
{
	size_t len = strlen(fmt), cap = 2, pos = 0, lit_start = 0;
	struct al_item *v;
	char *lit;

	for (const char *p = fmt; *p; p++)
		cap += *p == '%';
	v = arena_zalloc(a, sizeof(*v) * cap);
	/* literal runs are copied with "%%" collapsed, so they need their own copy */
	lit = arena_alloc(a, len + 2);
	*n = 0;
	if (!v || !lit) {
		*err = "out of memory";
		*errpos = 0;
		return -1;
	}
	while (pos < len) {
		if (fmt[pos] != '%' || fmt[pos + 1] == '%') {
			size_t start = lit_start;

			while (pos < len && (fmt[pos] != '%' || fmt[pos + 1] == '%')) {
				lit[lit_start++] = fmt[pos];
				pos += fmt[pos] == '%' ? 2 : 1;
			}
			v[(*n)++] = (struct al_item){ .cmd = AL_LITERAL, .text = lit + start, .len = lit_start - start };
			continue;
		}
		if (parse_cmd(a, fmt, &pos, &v[*n], err)) {
			*errpos = pos;
			return -1;
		}
		(*n)++;
	}
	if (newline && (!len || fmt[len - 1] != '\n')) {
		lit[lit_start] = '\n';
		v[(*n)++] = (struct al_item){ .cmd = AL_LITERAL, .text = lit + lit_start, .len = 1 };
	}
	*items = v;
	return 0;
}

struct al_format *al_format_parse(struct arena *a, const char *fmt, bool omit_empty, const char **err,
				  size_t *errpos)
{
	struct al_format *f = arena_zalloc(a, sizeof(*f));

	if (!f) {
		*err = "out of memory";
		*errpos = 0;
		return NULL;
	}
	f->omit_empty = omit_empty;
	return parse_items(a, fmt, true, &f->items, &f->n, err, errpos) ? NULL : f;
}

/* A plain scalar that YAML reads as a number or a boolean, as JSON writes
 * it ("1.50" is 1.5, as Envoy's Struct holds a double); NULL for any other. */
static const char *json_literal(struct arena *a, const struct ynode *n)
{
	char num[JSON_NUM_MAX];

	if (!n->plain)
		return NULL;
	if (!strcmp(n->str, "true") || !strcmp(n->str, "false"))
		return n->str;
	return json_number_text(n->str, num) ? arena_strdup(a, num) : NULL;
}

static int key_cmp(const void *x, const void *y)
{
	const struct al_json *a = x, *b = y;

	return strcmp(a->key, b->key);
}

/* Compiles json_format node n into *j; -1 with *err, *errpos (in a string's
 * format) and *at (the node) on error. */
static int parse_json(struct arena *a, const struct ynode *n, struct al_json *j, unsigned depth,
		      const char **err, size_t *errpos, const struct ynode **at)
{
	*at = n;
	*errpos = 0;
	if (depth > AL_JSON_DEPTH) {
		*err = "json_format nested too deep";
		return -1;
	}
	if (n->type == YN_SCALAR) {
		if (n->plain && (!strcmp(n->str, "null") || !strcmp(n->str, "~") || !*n->str)) {
			*err = "expected a string, a number, a boolean, a map or a list";
			return -1;
		}
		if ((j->raw = json_literal(a, n))) {
			j->kind = AJ_RAW;
			return 0;
		}
		if (parse_items(a, n->str, false, &j->items, &j->n, err, errpos))
			return -1;
		j->kind = j->n == 1 && j->items[0].cmd != AL_LITERAL ? AJ_TYPED : AJ_TEXT;
		return 0;
	}
	j->kind = n->type == YN_MAP ? AJ_MAP : AJ_LIST;
	j->n = n->n;
	if (n->n && !(j->kids = arena_zalloc(a, sizeof(*j->kids) * n->n))) {
		*err = "out of memory";
		return -1;
	}
	for (unsigned i = 0; i < n->n; i++) {
		const struct ynode *v = n->type == YN_MAP ? n->items[2 * i + 1] : n->items[i];
		struct al_json *k = &j->kids[i];

		k->key = "";
		if (n->type == YN_MAP) {
			const struct ynode *kn = n->items[2 * i];
			char *q = arena_alloc(a, json_str_max(kn->len) + 1);

			if (!q) {
				*err = "out of memory";
				return -1;
			}
			k->key = q;
			q = json_put_str(q, kn->str, kn->len);
			*q++ = ':';
			k->klen = (size_t)(q - k->key);
			*q = '\0';
		}
		if (parse_json(a, v, k, depth + 1, err, errpos, at))
			return -1;
	}
	if (n->type == YN_MAP && j->n)
		qsort(j->kids, j->n, sizeof(*j->kids), key_cmp);
	return 0;
}

struct al_format *al_json_parse(struct arena *a, const struct ynode *n, bool omit_empty, const char **err,
				size_t *errpos, const struct ynode **at)
{
	struct al_format *f = arena_zalloc(a, sizeof(*f));

	*at = n;
	*errpos = 0;
	if (!f || !(f->json = arena_zalloc(a, sizeof(*f->json)))) {
		*err = "out of memory";
		return NULL;
	}
	f->json->key = "";
	if (n->type != YN_MAP) {
		*err = "json_format: expected a map of keys to format strings";
		return NULL;
	}
	f->omit_empty = omit_empty;
	return parse_json(a, n, f->json, 0, err, errpos, at) ? NULL : f;
}

/* ---- formatting */

/* Line builder: a stack buffer flushed into the evbuffer when full. */
struct lb {
	struct evbuffer *out;
	size_t n;
	char buf[2048];
};

static void lb_flush(struct lb *b)
{
	if (b->n)
		evbuffer_add(b->out, b->buf, b->n);
	b->n = 0;
}

static void lb_put(struct lb *b, const char *s, size_t len)
{
	if (b->n + len > sizeof(b->buf)) {
		lb_flush(b);
		if (len > sizeof(b->buf)) {
			evbuffer_add(b->out, s, len);
			return;
		}
	}
	memcpy(b->buf + b->n, s, len);
	b->n += len;
}

/* s escaped for a JSON string, without quotes. A long value goes in pieces
 * cut between UTF-8 sequences, so the escaping is the same as in one go. */
static void lb_json_body(struct lb *b, const char *s, size_t len)
{
	const size_t piece = (sizeof(b->buf) - 2) / 6;

	while (len) {
		size_t n = len;

		if (n > piece) {
			n = piece;
			for (unsigned k = 0; k < 3 && n > 1 && ((unsigned char)s[n] & 0xc0) == 0x80; k++)
				n--;
		}
		if (b->n + json_str_max(n) > sizeof(b->buf))
			lb_flush(b);
		b->n = (size_t)(json_put_body(b->buf + b->n, s, n) - b->buf);
		s += n;
		len -= n;
	}
}

/* What a command gives: absent, a string or a number. */
enum al_vkind { AV_NONE, AV_STR, AV_NUM };

struct al_val {
	enum al_vkind kind;
	const char *s;
	size_t len;
	uint64_t n;
};

#define AL_SCRATCH 1024			/* room a command's value may be built in */

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

static __thread struct {
	time_t sec;
	char text[24];			/* "YYYY-mm-ddTHH:MM:SS" */
} al_time_cache;

/* Envoy's default START_TIME, "2023-11-14T22:13:20.123Z", into tmp. */
static size_t default_time(uint64_t wall_us, char *tmp)
{
	time_t sec = (time_t)(wall_us / 1000000);

	if (al_time_cache.sec != sec || !al_time_cache.text[0]) {
		struct tm tm;

		gmtime_r(&sec, &tm);
		strftime(al_time_cache.text, sizeof(al_time_cache.text), "%Y-%m-%dT%H:%M:%S", &tm);
		al_time_cache.sec = sec;
	}
	return (size_t)snprintf(tmp, AL_SCRATCH, "%s.%03uZ", al_time_cache.text,
				(unsigned)(wall_us % 1000000 / 1000));
}

/* strftime with Envoy's extensions: %Nf / %f (N fractional digits, default 9)
 * and %s (epoch seconds), always in UTC, into tmp. */
static size_t custom_time(const char *spec, uint64_t wall_us, char *tmp)
{
	time_t sec = (time_t)(wall_us / 1000000);
	unsigned long ns = (unsigned long)(wall_us % 1000000) * 1000;
	char fmt[512];
	size_t n = 0;
	struct tm tm;

	gmtime_r(&sec, &tm);
	for (const char *p = spec; *p && n < sizeof(fmt) - 32; p++) {
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
	return n ? strftime(tmp, AL_SCRATCH, fmt, &tm) : 0;
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

int al_response_flag(const char *code, size_t len, uint32_t *flag)
{
	for (size_t i = 0; i < ARRAY_SIZE(al_flags); i++) {
		if (strlen(al_flags[i].code) == len && !memcmp(al_flags[i].code, code, len)) {
			*flag = al_flags[i].flag;
			return 0;
		}
	}
	return -EINVAL;
}

static void val_str(struct al_val *v, const char *s, size_t len)
{
	if (s && len)
		*v = (struct al_val){ .kind = AV_STR, .s = s, .len = len };
}

static void val_ms(struct al_val *v, uint64_t from, uint64_t to)
{
	if (from && to && to >= from)
		*v = (struct al_val){ .kind = AV_NUM, .n = (to - from) / 1000 };
}

/* "ip:port" → "ip", "[v6]:port" → "v6" (Envoy prints the bare address). */
static void val_addr_noport(struct al_val *v, const char *s)
{
	const char *colon = strrchr(s, ':');
	size_t len = colon ? (size_t)(colon - s) : strlen(s);

	if (len >= 2 && s[0] == '[' && s[len - 1] == ']')
		val_str(v, s + 1, len - 2);
	else
		val_str(v, s, len);
}

static void val_port(struct al_val *v, const char *s)
{
	const char *colon = strrchr(s, ':');

	if (colon && isdigit((unsigned char)colon[1]))
		*v = (struct al_val){ .kind = AV_NUM, .n = strtoull(colon + 1, NULL, 10) };
}

static void val_hdr(struct al_val *v, const struct al_item *it, const struct al_subject *x, char *tmp)
{
	bool req = it->cmd == AL_REQ;
	const struct http_headers *hs = req ? (x->req ? &x->req->h : NULL) : (x->resp ? &x->resp->h : NULL);

	if (it->cmd == AL_TRAILER)
		hs = x->resp ? &x->resp->trailers : NULL;
	if (!hs)
		return;		/* a TCP connection: no heads */
	for (unsigned i = 0; i < 2 && it->hdr[i].name && v->kind == AV_NONE; i++) {
		const struct al_hdr *h = &it->hdr[i];
		const struct http_hdr *hd;
		const char *s;

		switch (h->pseudo) {
		case PS_REQ_FIELD:
			if (req && (s = *(const char *const *)((const char *)x->req + h->off)))
				val_str(v, s, strlen(s));
			break;
		case PS_STATUS:
			if (!req && x->resp->status)
				val_str(v, tmp, (size_t)snprintf(tmp, AL_SCRATCH, "%d", x->resp->status));
			break;
		case PS_XFF:
			if (req && x->info->xff_appended) {
				val_str(v, x->info->client_xff, x->info->client_xff_len);
				break;
			}
			/* the head as received */
			__attribute__((fallthrough));
		case PS_NONE:
			if ((hd = http_hdr_find(hs, h->name)))
				val_str(v, hd->value, hd->vlen);
			break;
		}
	}
	if (it->noquery && v->kind == AV_STR) {
		const char *q = memchr(v->s, '?', v->len);

		if (q)
			v->len = (size_t)(q - v->s);
	}
}

static void val_trace_id(struct al_val *v, const struct al_subject *x, char *tmp)
{
	struct trace_ctx c;

	if (x->req && trace_extract(&x->req->h, &c) == 1)
		val_str(v, tmp, trace_id_hex(&c, tmp));
}

/* What it gives for x; a value built from parts goes in tmp (AL_SCRATCH bytes). */
static void eval(const struct al_item *it, const struct al_subject *x, struct al_val *v, char *tmp)
{
	const struct stream_info *in = x->info;
	const char *field = (const char *)in + it->off;
	const char *s;
	size_t n;

	*v = (struct al_val){ .kind = AV_NONE };
	switch (it->cmd) {
	case AL_LITERAL:
		*v = (struct al_val){ .kind = AV_STR, .s = it->text, .len = it->len };
		break;
	case AL_START_TIME:
		val_str(v, tmp, it->text ? custom_time(it->text, in->start_wall_us, tmp)
					 : default_time(in->start_wall_us, tmp));
		break;
	case AL_REQ:
	case AL_RESP:
	case AL_TRAILER:
		val_hdr(v, it, x, tmp);
		break;
	case AL_RESPONSE_TX_DURATION:
		val_ms(v, in->up_resp_mono_us, in->end_mono_us);
		break;
	case AL_RESPONSE_CODE:
		*v = (struct al_val){ .kind = AV_NUM, .n = in->response_code > 0 ? (uint64_t)in->response_code : 0 };
		break;
	case AL_RESPONSE_FLAGS:
		val_str(v, tmp, al_response_flags(in->flags, tmp, AL_SCRATCH));
		break;
	case AL_UPSTREAM_CLUSTER:
		val_str(v, x->cluster, x->cluster ? strlen(x->cluster) : 0);
		break;
	case AL_ROUTE_NAME:
		val_str(v, x->route, x->route ? strlen(x->route) : 0);
		break;
	case AL_HOSTNAME:
		val_str(v, hostname(), strlen(hostname()));
		break;
	case AL_TRACE_ID:
		val_trace_id(v, x, tmp);
		break;
	case AL_ABSENT:
		break;
	case AL_INFO_STR:
		s = *(const char *const *)field;
		val_str(v, s, s ? strlen(s) : 0);
		break;
	case AL_INFO_REASON:
		/* Envoy writes the reason's spaces as '_', so a line splits on spaces */
		s = *(const char *const *)field;
		n = s ? strnlen(s, AL_SCRATCH) : 0;
		for (size_t i = 0; i < n; i++)
			tmp[i] = s[i] == ' ' ? '_' : s[i];
		val_str(v, tmp, n);
		break;
	case AL_INFO_TEXT:
		val_str(v, field, strlen(field));
		break;
	case AL_INFO_ADDR_NOPORT:
		val_addr_noport(v, field);
		break;
	case AL_INFO_PORT:
		val_port(v, field);
		break;
	case AL_INFO_U64:
		*v = (struct al_val){ .kind = AV_NUM, .n = *(const uint64_t *)field };
		break;
	case AL_INFO_MS:
		val_ms(v, in->start_mono_us, *(const uint64_t *)field);
		break;
	}
}

/* A number's digits into num; returns their count. */
static size_t num_text(uint64_t n, char num[24])
{
	return (size_t)snprintf(num, 24, "%" PRIu64, n);
}

/* One command's text, cut to its maximum length: "-" when absent, or
 * nothing with omit_empty_values. json writes it escaped for a string. */
static void put_text(struct lb *b, const struct al_item *it, const struct al_val *v, bool omit, bool json)
{
	char num[24];
	const char *s = v->s;
	size_t len = v->len;

	if (v->kind == AV_NONE) {
		if (omit)
			return;
		s = "-";
		len = 1;
	} else if (v->kind == AV_NUM) {
		s = num;
		len = num_text(v->n, num);
	}
	if (it->max_len && len > it->max_len && v->kind != AV_NONE)
		len = it->max_len;
	if (json)
		lb_json_body(b, s, len);
	else
		lb_put(b, s, len);
}

static void put_items(struct lb *b, const struct al_item *items, unsigned n, const struct al_subject *x,
		      bool omit, bool json)
{
	char tmp[AL_SCRATCH];
	struct al_val v;

	for (unsigned i = 0; i < n; i++) {
		eval(&items[i], x, &v, tmp);
		put_text(b, &items[i], &v, omit, json);
	}
}

/* One command alone, typed: null, a number or a string; false (nothing
 * written) when it is null and omitted. Writes sep and key first. */
static bool put_typed(struct lb *b, const struct al_json *j, const struct al_subject *x, bool omit, bool sep)
{
	char tmp[AL_SCRATCH], num[24];
	struct al_val v;

	eval(&j->items[0], x, &v, tmp);
	if (v.kind == AV_NONE && omit)
		return false;
	if (sep)
		lb_put(b, ",", 1);
	lb_put(b, j->key, j->klen);
	if (v.kind == AV_NONE) {
		lb_put(b, "null", 4);
	} else if (v.kind == AV_NUM) {
		lb_put(b, num, num_text(v.n, num));
	} else {
		lb_put(b, "\"", 1);
		put_text(b, &j->items[0], &v, omit, true);
		lb_put(b, "\"", 1);
	}
	return true;
}

/* Writes sep, key and j's value; false (nothing written) when the value is
 * null and omitted. */
static bool put_json(struct lb *b, const struct al_json *j, const struct al_subject *x, bool omit, bool sep)
{
	bool any = false;

	if (j->kind == AJ_TYPED)
		return put_typed(b, j, x, omit, sep);
	if (sep)
		lb_put(b, ",", 1);
	lb_put(b, j->key, j->klen);
	switch (j->kind) {
	case AJ_MAP:
	case AJ_LIST:
		lb_put(b, j->kind == AJ_MAP ? "{" : "[", 1);
		for (unsigned i = 0; i < j->n; i++)
			any |= put_json(b, &j->kids[i], x, omit, any);
		lb_put(b, j->kind == AJ_MAP ? "}" : "]", 1);
		break;
	case AJ_TEXT:
		lb_put(b, "\"", 1);
		put_items(b, j->items, j->n, x, omit, true);
		lb_put(b, "\"", 1);
		break;
	case AJ_RAW:
		lb_put(b, j->raw, strlen(j->raw));
		break;
	case AJ_TYPED:
		break;
	}
	return true;
}

void al_format_subject(const struct al_format *f, const struct al_subject *x, struct evbuffer *out)
{
	struct lb b;

	b.out = out;
	b.n = 0;
	if (f->json) {
		put_json(&b, f->json, x, f->omit_empty, false);
		lb_put(&b, "\n", 1);
	} else {
		put_items(&b, f->items, f->n, x, f->omit_empty, false);
	}
	lb_flush(&b);
}

void al_format_line(const struct al_format *f, const struct stream *s, struct evbuffer *out)
{
	const struct al_subject x = {
		.info = &s->info, .req = &s->req, .resp = &s->resp,
		.cluster = s->cluster ? s->cluster->name : NULL, .route = s->route ? s->route->name : NULL,
	};

	al_format_subject(f, &x, out);
}
