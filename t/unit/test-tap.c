/* The live tap: the /tap filter parser (status, flags, from, path) and its
 * matching, the records' JSON and text, and the per-worker rings (in order,
 * merged by finish time, full rings drop and count). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "observe/tap.h"
#include "config/cfg-t.h"
#include "core/stats.h"
#include "core/worker.h"
#include "http/stream.h"
#include "buf.h"
#include "tap.h"

static char err[512];

/* "ok", or the parser's error. */
static const char *parse(struct tap_filter *f, const char *path, const char *status, const char *flags,
			 const char *from)
{
	int rc = tap_filter_parse(f, path, status, flags, from, err, sizeof(err));

	if (rc)
		tap_filter_free(f);
	return rc ? err : "ok";
}

/* Whether a filter made of these criteria matches r. */
static bool match(const char *path, const char *status, const char *flags, const char *from,
		  const struct tap_rec *r)
{
	struct tap_filter f;
	bool m;

	if (strcmp(parse(&f, path, status, flags, from), "ok"))
		return false;
	m = tap_filter_match(&f, r);
	tap_filter_free(&f);
	return m;
}

static struct tap_rec got[8];
static unsigned ngot;

static void collect(const struct tap_rec *r, void *arg)
{
	if (ngot < 8)
		got[ngot] = *r;
	ngot++;
}

int main(void)
{
	struct tap_filter f;
	struct tap_rec r = {
		.start_wall_us = 1700000000123456ULL, .duration_us = 7999, .bytes_received = 3, .bytes_sent = 45,
		.flags = RF_UF | RF_URX, .status = 503,
		.method = "GET", .protocol = "HTTP/2", .src = "10.1.2.3:40000", .dst = "127.0.0.1:8080",
		.local = "127.0.0.1:15006", .principal = "spiffe://cluster.local/ns/shop/sa/cart",
		.authority = "cart", .path = "/api/items?x=1", .trace_id = "463ac35c9f6413ad48485a3953bb6124",
		.request_id = "rid-1", .listener = "inbound", .route = "api", .cluster = "inbound|8080||",
		.details = "upstream_reset_before_response_started{connection_failure}",
	};
	struct tap_rec v6 = r;
	struct evbuffer *b = evbuffer_new();
	char *s;

	/* the parser: what is accepted, and errors that say which value and why */
	is_str(parse(&f, NULL, NULL, NULL, NULL), "ok", "no criteria");
	tap_filter_free(&f);
	is_str(parse(&f, "", "", "", ""), "ok", "empty criteria are none");
	tap_filter_free(&f);
	is_str(parse(&f, "^/api", " 5xx , 404,0 ", "UF,UO", "10.0.0.0/8, ::1, fe80::/10, 1.2.3.4/32, spiffe://a/b, c/*"),
	       "ok", "every kind of item");
	is_int(f.nstatus, 3, "three status items");
	is_int(f.status[0].lo, 500, "5xx from 500");
	is_int(f.status[0].hi, 599, "... to 599");
	is_int(f.status[1].lo, 404, "404");
	is_int(f.status[2].hi, 0, "0: no response");
	is_int(f.flags, RF_UF | RF_UO, "flags UF and UO");
	is_int(f.nfrom, 6, "six from items");
	is_int(f.from[0].bits, 96 + 8, "an IPv4 CIDR counts from the mapped prefix");
	is_int(f.from[1].bits, 128, "an address is a /128");
	is_str(f.from[4].principal, "a/b", "spiffe:// is taken off a principal");
	tap_filter_free(&f);
	is_str(parse(&f, NULL, "9xx", NULL, NULL), "status: \"9xx\" is not a status code (503) or class (5xx)",
	       "a class out of range");
	is_str(parse(&f, NULL, "700", NULL, NULL), "status: \"700\" is not a status code (100-599, or 0: no response)",
	       "a code out of range");
	is_str(parse(&f, NULL, "5xx,,404", NULL, NULL), "status: an empty item in \"5xx,,404\"", "an empty item");
	is_str(parse(&f, NULL, "2000", NULL, NULL), "status: \"2000\" is not a status code (503) or class (5xx)",
	       "four digits");
	is_str(parse(&f, NULL, NULL, "UF,ZZ", NULL),
	       "flags: \"ZZ\" is not one of Envoy's response flags (UF, UO, NR, URX, ...)", "an unknown flag");
	is_str(parse(&f, NULL, NULL, "uf", NULL),
	       "flags: \"uf\" is not one of Envoy's response flags (UF, UO, NR, URX, ...)", "flags are upper case");
	is_str(parse(&f, NULL, NULL, NULL, "10.0.0.0/33"), "from: \"10.0.0.0/33\": the prefix length must be 0-32",
	       "an IPv4 prefix too long");
	is_str(parse(&f, NULL, NULL, NULL, "::/129"), "from: \"::/129\": the prefix length must be 0-128",
	       "an IPv6 prefix too long");
	is_str(parse(&f, NULL, NULL, NULL, "10.0.0.0/"), "from: \"10.0.0.0/\": the prefix length must be 0-32",
	       "an empty prefix");
	is_str(parse(&f, NULL, NULL, NULL, "web"),
	       "from: \"web\" is not an address, a CIDR or a principal (cluster.local/ns/NS/sa/SA)", "a bare name");
	is_str(parse(&f, NULL, NULL, NULL, "a/*/b"),
	       "from: \"a/*/b\": a principal has no spaces, and '*' only at an end", "'*' inside");
	is_str(parse(&f, "(", NULL, NULL, NULL), "path: \"(\" is not an RE2 regex: missing ): (", "a bad regex");
	{
		char many[256] = "1";

		for (int i = 0; i < TAP_FILTER_MAX; i++)
			strcat(many, ",1");
		strcpy(many, "200");
		for (int i = 0; i < TAP_FILTER_MAX; i++)
			strcat(many, ",200");
		is_str(parse(&f, NULL, many, NULL, NULL), "status: more than 16 items", "items are bounded");
	}

	/* matching: each criterion must hold; a list holds when one item does */
	ok(match(NULL, NULL, NULL, NULL, &r), "no criteria: everything");
	ok(match("items", NULL, NULL, NULL, &r), "path: searched anywhere");
	ok(match("x=1$", NULL, NULL, NULL, &r), "path: the query is part of it");
	ok(!match("^/items", NULL, NULL, NULL, &r), "path: no match");
	ok(match(NULL, "5xx", NULL, NULL, &r), "status class");
	ok(match(NULL, "404,503", NULL, NULL, &r), "status list");
	ok(!match(NULL, "2xx,4xx", NULL, NULL, &r), "status: none of the list");
	ok(match(NULL, NULL, "UO,URX", NULL, &r), "flags: any of them");
	ok(!match(NULL, NULL, "NR", NULL, &r), "flags: not set");
	ok(match(NULL, NULL, NULL, "10.0.0.0/8", &r), "from: a CIDR");
	ok(match(NULL, NULL, NULL, "10.1.2.3", &r), "from: the address");
	ok(!match(NULL, NULL, NULL, "10.1.2.4,192.168.0.0/16", &r), "from: other addresses");
	ok(match(NULL, NULL, NULL, "::ffff:10.1.2.0/120", &r), "from: IPv4 as mapped IPv6");
	ok(match(NULL, NULL, NULL, "cluster.local/ns/shop/sa/cart", &r), "from: the principal");
	ok(match(NULL, NULL, NULL, "spiffe://cluster.local/ns/shop/sa/cart", &r), "from: the principal with spiffe://");
	ok(match(NULL, NULL, NULL, "cluster.local/ns/shop/*", &r), "from: a principal prefix");
	ok(match(NULL, NULL, NULL, "*/sa/cart", &r), "from: a principal suffix");
	ok(!match(NULL, NULL, NULL, "cluster.local/ns/other/*", &r), "from: another namespace");
	ok(match(NULL, "5xx", "UF", "10.0.0.0/8", &r), "every criterion holds");
	ok(!match(NULL, "5xx", "UF", "11.0.0.0/8", &r), "one criterion fails");
	strcpy(v6.src, "[2001:db8::7]:5555");
	v6.principal[0] = '\0';
	ok(match(NULL, NULL, NULL, "2001:db8::/32", &v6), "from: an IPv6 CIDR");
	ok(!match(NULL, NULL, NULL, "2001:db9::/32", &v6), "from: another IPv6 CIDR");
	ok(!match(NULL, NULL, NULL, "10.0.0.0/8", &v6), "from: IPv4 CIDR, IPv6 client");
	ok(!match(NULL, NULL, NULL, "*", &v6), "from: '*' wants a principal (mTLS)");
	ok(match(NULL, NULL, NULL, "*", &r), "from: '*' any principal");

	/* the records written out */
	tap_rec_json(&r, b);
	s = buf_take(b);
	is_str(s, "{\"start_time\":\"2023-11-14T22:13:20.123Z\",\"source\":\"10.1.2.3:40000\","
		  "\"principal\":\"spiffe://cluster.local/ns/shop/sa/cart\",\"destination\":\"127.0.0.1:8080\","
		  "\"local\":\"127.0.0.1:15006\",\"method\":\"GET\",\"authority\":\"cart\",\"path\":\"/api/items?x=1\","
		  "\"protocol\":\"HTTP/2\",\"response_code\":503,\"response_flags\":\"UF,URX\","
		  "\"response_code_details\":\"upstream_reset_before_response_started{connection_failure}\","
		  "\"duration\":7,\"bytes_received\":3,\"bytes_sent\":45,"
		  "\"trace_id\":\"463ac35c9f6413ad48485a3953bb6124\",\"request_id\":\"rid-1\",\"listener\":\"inbound\","
		  "\"route_name\":\"api\",\"upstream_cluster\":\"inbound|8080||\"}\n", "a record as JSON");
	free(s);
	tap_rec_text(&r, b);
	s = buf_take(b);
	is_str(s, "2023-11-14T22:13:20.123Z 10.1.2.3:40000(spiffe://cluster.local/ns/shop/sa/cart) -> 127.0.0.1:8080 "
		  "GET /api/items?x=1 503 UF,URX 7ms 463ac35c9f6413ad48485a3953bb6124\n", "a record as a line");
	free(s);
	{
		struct tap_rec e = { .start_wall_us = 1700000000000000ULL };

		strcpy(e.path, "/a\x01\x7f");
		tap_rec_text(&e, b);
		s = buf_take(b);
		is_str(s, "2023-11-14T22:13:20.000Z - -> - - /a?? 0 - 0ms -\n", "absent fields: -, control bytes: ?");
		free(s);
		tap_rec_json(&e, b);
		s = buf_take(b);
		ok(strstr(s, "\"source\":null") && strstr(s, "\"path\":\"/a\\u0001\\u007f\"") &&
		   strstr(s, "\"response_flags\":\"-\""), "absent fields are null, bytes escaped");
		free(s);
	}

	/* the rings */
	{
		static struct worker w[2] = { { .id = 0 }, { .id = 1 } };
		struct stream st[3];
		static const char *const paths[3] = { "/early", "/late", "/middle" };	/* workers 0, 0, 1 */

		if (tap_stats_register() || stats_init(0))
			return 1;
		memset(st, 0, sizeof(st));
		ok(!tap_on(), "off to begin with");
		is_int(tap_set(true, 2), 0, "on for two workers");
		ok(tap_on(), "on");
		for (int i = 0; i < 3; i++) {
			st[i].worker = &w[i == 2];
			st[i].req.method = "GET";
			st[i].req.path = paths[i];
			st[i].info.protocol = "HTTP/1.1";
			st[i].info.code_details = "via_upstream";
			st[i].info.upstream_transport_failure = "";
			st[i].info.downstream_peer_uri_san = "";
			st[i].info.start_wall_us = 1000000;
			st[i].info.start_mono_us = 1;
			st[i].info.end_mono_us = 1 + (i == 0 ? 100 : i == 1 ? 900 : 500);
			st[i].info.response_code = 200;
			tap_stream(&st[i]);
		}
		is_int(tap_drain(collect, NULL), 3, "three records drained");
		is_str(got[0].path, "/early", "merged by finish time: first");
		is_str(got[1].path, "/middle", "... second");
		is_str(got[2].path, "/late", "... third");
		is_int(tap_drain(collect, NULL), 0, "nothing left");
		for (int i = 0; i < 600; i++)
			tap_stream(&st[0]);
		ngot = 0;
		is_int(tap_drain(collect, NULL), 512, "a ring holds 512 records");
		tap_set(false, 2);
		ok(!tap_on(), "off");
		tap_fini();
	}
	evbuffer_free(b);
	return done_testing();
}
