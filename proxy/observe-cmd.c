/* `wingman observe`: requests as a running wingman finishes them, read from
 * its admin's /tap (doc/observe.md). The filters go in the query, so the
 * admin ships only what matches; they are checked here first, so a bad one
 * is named before anything is asked. */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "observe-cmd.h"
#include "observe/tap.h"

#define OBS_ADMIN_DEFAULT "127.0.0.1:15000"
#define OBS_LAST_MAX 10000

enum { OBS_OK = 0, OBS_FAIL = 1, OBS_USAGE = 2 };

static void usage(FILE *f)
{
	fprintf(f,
		"usage: wingman observe [--admin ADDR] [--path RE2] [--status 5xx,404] [--flags UF,UO]\n"
		"         [--from IP|CIDR|PRINCIPAL,...] [--json] [--follow | --last N]\n"
		"Prints the requests a running wingman finished, one line each: time, source,\n"
		"destination, method, path, status, response flags, duration, trace id.\n"
		"  --admin ADDR   the wingman's admin address (default " OBS_ADMIN_DEFAULT ")\n"
		"  --path RE2     requests whose path (query included) the regex matches somewhere\n"
		"  --status LIST  status codes (503) or classes (5xx); 0 is no response\n"
		"  --flags LIST   any of Envoy's response flags (UF, UO, NR, URX, DC, ...)\n"
		"  --from LIST    client addresses, CIDRs, or mTLS principals (cluster.local/ns/NS/sa/SA,\n"
		"                 spiffe:// optional, '*' at either end a wildcard)\n"
		"  --json         one JSON object per request instead\n"
		"  -f, --follow   print requests as they finish, until Ctrl-C\n"
		"  --last N       without --follow: the last N the admin kept (default 20; the admin\n"
		"                 keeps admin.tap_recent of them, none by default)\n"
		"Exit status: 0 done (or interrupted), 1 the admin could not be reached or refused,\n"
		"2 a bad argument.\n");
}

struct obs {
	struct event_base *base;
	struct evbuffer *line;		/* an incomplete line */
	const char *admin;
	bool json;
	bool failed;			/* the admin said no, or could not be reached */
	bool quiet_pipe;		/* stdout went away: stop, not an error */
	int status;
};

/* Writes the complete lines of what arrived: text-mode notices ("# ...")
 * to stderr, the rest to stdout. */
static void put_lines(struct obs *o, struct evbuffer *in, bool last)
{
	size_t n;
	char *l;

	evbuffer_add_buffer(o->line, in);
	while ((l = evbuffer_readln(o->line, &n, EVBUFFER_EOL_LF)) || (last && evbuffer_get_length(o->line))) {
		if (!l) {
			n = evbuffer_get_length(o->line);
			l = malloc(n + 1);
			if (!l)
				return;
			evbuffer_remove(o->line, l, n);
			l[n] = '\0';
		}
		if (o->status != 200)
			fprintf(stderr, "wingman: admin %s: %s\n", o->admin, l);
		else if (!o->json && l[0] == '#')
			fprintf(stderr, "wingman: %s\n", l[1] == ' ' ? l + 2 : l + 1);
		else if (printf("%s\n", l) < 0)
			o->quiet_pipe = true;
		free(l);
	}
	if (fflush(stdout))
		o->quiet_pipe = true;
	if (o->quiet_pipe)
		event_base_loopbreak(o->base);
}

static void on_chunk(struct evhttp_request *req, void *arg)
{
	struct obs *o = arg;

	o->status = evhttp_request_get_response_code(req);
	put_lines(o, evhttp_request_get_input_buffer(req), false);
}

static void on_error(enum evhttp_request_error e, void *arg)
{
	struct obs *o = arg;
	static const char *const why[] = {
		[EVREQ_HTTP_TIMEOUT] = "timed out", [EVREQ_HTTP_EOF] = "connection closed",
		[EVREQ_HTTP_INVALID_HEADER] = "not an HTTP answer", [EVREQ_HTTP_BUFFER_ERROR] = "connection failed",
		[EVREQ_HTTP_REQUEST_CANCEL] = "cancelled", [EVREQ_HTTP_DATA_TOO_LONG] = "answer too long",
	};

	fprintf(stderr, "wingman: cannot read the admin at %s: %s\n", o->admin,
		(size_t)e < sizeof(why) / sizeof(why[0]) && why[e] ? why[e] : "error");
	o->failed = true;
}

static void on_done(struct evhttp_request *req, void *arg)
{
	struct obs *o = arg;

	if (!req) {
		if (!o->failed)
			fprintf(stderr, "wingman: cannot reach the admin at %s (is wingman running with "
				"admin: { address: %s }?)\n", o->admin, o->admin);
		o->failed = true;
	} else {
		o->status = evhttp_request_get_response_code(req);
		if (!o->status && !o->failed) {
			fprintf(stderr, "wingman: cannot reach the admin at %s (is wingman running with "
				"admin: { address: %s }?)\n", o->admin, o->admin);
			o->failed = true;
		}
		put_lines(o, evhttp_request_get_input_buffer(req), true);
		if (o->status && o->status != 200)
			o->failed = true;
	}
	event_base_loopbreak(o->base);
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
	event_base_loopbreak(arg);
}

/* Adds "&key=value" (value URI-encoded) when value is given. */
static int add_param(struct evbuffer *uri, const char *key, const char *value)
{
	char *enc;
	int rc;

	if (!value)
		return 0;
	if (!(enc = evhttp_uriencode(value, -1, 0)))
		return -ENOMEM;
	rc = evbuffer_add_printf(uri, "&%s=%s", key, enc) < 0 ? -ENOMEM : 0;
	free(enc);
	return rc;
}

/* host and port of ADDR ("host:port", "[v6]:port"); false when it is not one. */
static bool split_addr(const char *addr, char *host, size_t hlen, unsigned *port)
{
	const char *colon = strrchr(addr, ':');
	size_t n = colon ? (size_t)(colon - addr) : 0;
	bool bracket = n >= 2 && addr[0] == '[' && addr[n - 1] == ']';
	char *end;
	unsigned long p;

	if (!colon || !n || !colon[1])
		return false;
	p = strtoul(colon + 1, &end, 10);
	if (*end || !p || p > 65535)
		return false;
	if (bracket) {
		addr++;
		n -= 2;
	}
	if (!n || n >= hlen || (!bracket && memchr(addr, ':', n)))
		return false;
	memcpy(host, addr, n);
	host[n] = '\0';
	*port = (unsigned)p;
	return true;
}

int observe_main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "admin", required_argument, NULL, 'a' }, { "path", required_argument, NULL, 'p' },
		{ "status", required_argument, NULL, 's' }, { "flags", required_argument, NULL, 'F' },
		{ "from", required_argument, NULL, 'r' }, { "json", no_argument, NULL, 'j' },
		{ "follow", no_argument, NULL, 'f' }, { "last", required_argument, NULL, 'l' },
		{ "help", no_argument, NULL, 'h' }, { NULL, 0, NULL, 0 },
	};
	const char *path = NULL, *status = NULL, *flags = NULL, *from = NULL, *last = NULL;
	struct obs o = { .admin = OBS_ADMIN_DEFAULT };
	struct evhttp_connection *conn = NULL;
	struct evhttp_request *req;
	struct event *sigint = NULL, *sigterm = NULL;
	struct evbuffer *uri = NULL;
	struct tap_filter f;
	bool follow = false;
	char err[512], host[256];
	unsigned port;
	int opt, rc = OBS_FAIL;

	optind = 1;
	opterr = 0;	/* said here, with the "wingman: " prefix */
	while ((opt = getopt_long(argc, argv, ":fh", opts, NULL)) != -1) {
		switch (opt) {
		case 'a': o.admin = optarg; break;
		case 'p': path = optarg; break;
		case 's': status = optarg; break;
		case 'F': flags = optarg; break;
		case 'r': from = optarg; break;
		case 'j': o.json = true; break;
		case 'f': follow = true; break;
		case 'l': last = optarg; break;
		case 'h':
			usage(stdout);
			return OBS_OK;
		case ':':
			fprintf(stderr, "wingman: observe: %s needs a value (see wingman observe --help)\n",
				argv[optind - 1]);
			return OBS_USAGE;
		default:
			fprintf(stderr, "wingman: observe: unknown option \"%s\" (see wingman observe --help)\n",
				argv[optind - 1]);
			return OBS_USAGE;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "wingman: observe: unexpected argument \"%s\" (see wingman observe --help)\n",
			argv[optind]);
		return OBS_USAGE;
	}
	if (!split_addr(o.admin, host, sizeof(host), &port)) {
		fprintf(stderr, "wingman: --admin \"%s\": expected HOST:PORT (e.g. " OBS_ADMIN_DEFAULT ")\n", o.admin);
		return OBS_USAGE;
	}
	if (last) {
		char *end;
		unsigned long n = strtoul(last, &end, 10);

		if (!*last || *end || !n || n > OBS_LAST_MAX) {
			fprintf(stderr, "wingman: --last \"%s\": a count from 1 to %d\n", last, OBS_LAST_MAX);
			return OBS_USAGE;
		}
		if (follow) {
			fprintf(stderr, "wingman: --last: only without --follow\n");
			return OBS_USAGE;
		}
	}
	if (tap_filter_parse(&f, path, status, flags, from, err, sizeof(err))) {
		tap_filter_free(&f);
		fprintf(stderr, "wingman: --%s\n", err);
		return OBS_USAGE;
	}
	tap_filter_free(&f);

	signal(SIGPIPE, SIG_IGN);
	if (!(o.base = event_base_new()) || !(o.line = evbuffer_new()) || !(uri = evbuffer_new()) ||
	    evbuffer_add_printf(uri, "/tap?format=%s%s", o.json ? "json" : "text", follow ? "&follow" : "") < 0 ||
	    add_param(uri, "path", path) || add_param(uri, "status", status) || add_param(uri, "flags", flags) ||
	    add_param(uri, "from", from) || add_param(uri, "last", last) || evbuffer_add(uri, "", 1) ||
	    !(conn = evhttp_connection_base_new(o.base, NULL, host, (unsigned short)port)) ||
	    !(req = evhttp_request_new(on_done, &o))) {
		fprintf(stderr, "wingman: observe: out of memory\n");
		goto out;
	}
	evhttp_request_set_chunked_cb(req, on_chunk);
	evhttp_request_set_error_cb(req, on_error);
	evhttp_add_header(evhttp_request_get_output_headers(req), "Host", o.admin);
	if (!follow)
		evhttp_connection_set_timeout(conn, 10);
	sigint = evsignal_new(o.base, SIGINT, on_signal, o.base);
	sigterm = evsignal_new(o.base, SIGTERM, on_signal, o.base);
	if (!sigint || !sigterm || event_add(sigint, NULL) || event_add(sigterm, NULL) ||
	    evhttp_make_request(conn, req, EVHTTP_REQ_GET, (const char *)evbuffer_pullup(uri, -1))) {
		fprintf(stderr, "wingman: cannot ask the admin at %s\n", o.admin);
		goto out;
	}
	event_base_dispatch(o.base);
	rc = o.failed ? OBS_FAIL : OBS_OK;
out:
	if (sigint)
		event_free(sigint);
	if (sigterm)
		event_free(sigterm);
	if (conn)
		evhttp_connection_free(conn);	/* an unfinished request goes with it */
	if (uri)
		evbuffer_free(uri);
	if (o.line)
		evbuffer_free(o.line);
	if (o.base)
		event_base_free(o.base);
	return rc;
}
