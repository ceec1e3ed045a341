/* Peer metadata: the google.protobuf.Struct codec
 * (byte vectors from Google's protobuf, deterministic serialization; what a
 * protobuf parser skips, refuses and bounds), Istio's reading of the Struct
 * into a workload, this workload's own from node:, and the per-thread cache. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/arena.h"
#include "config/cfg.h"
#include "core/pbstruct.h"
#include "observe/peer.h"
#include "server.h"
#include "t/unit/tap.h"
#include "t/unit/cfg-load.h"

#define BIN(s) (const uint8_t *)(s), sizeof(s) - 1

/* Struct {"a": "b"}, and one of every kind, as Google's protobuf serializes
 * them deterministically (python3-protobuf 3.21). */
static const char vec_ab[] = "\x0a\x08\x0a\x01\x61\x12\x03\x1a\x01\x62";
static const char vec_all[] =
	"\x0a\x17\x0a\x01\x6c\x12\x12\x32\x10\x0a\x03\x1a\x01\x73\x0a\x09\x11\x00\x00\x00\x00\x00\x00\x00\x40"
	"\x0a\x07\x0a\x01\x6e\x12\x02\x08\x00\x0a\x11\x0a\x01\x73\x12\x0c\x2a\x0a\x0a\x08\x0a\x01\x6b\x12\x03"
	"\x1a\x01\x76\x0a\x07\x0a\x01\x74\x12\x02\x20\x01\x0a\x0e\x0a\x01\x78\x12\x09\x11\x00\x00\x00\x00\x00"
	"\x00\xf8\x3f";

static int decode(struct arena *a, const uint8_t *b, size_t n, struct pbs_value *v)
{
	return pbs_decode(a, b, n, v);
}

static void test_struct(void)
{
	struct arena *a = arena_new(4096);
	struct pbs_value v;
	const struct pbs_value *x;
	uint8_t out[256];
	size_t n;
	const char *s;

	is_int(decode(a, BIN(vec_ab), &v), 0, "struct: {a: b}");
	s = pbs_get_str(&v, "a", &n);
	ok(s && n == 1 && *s == 'b', "struct: a is \"b\"");
	is_int(pbs_encode(&v, out, sizeof(out)), sizeof(vec_ab) - 1, "struct: encodes back");
	ok(memcmp(out, vec_ab, sizeof(vec_ab) - 1) == 0, "struct: the same bytes");
	is_int(pbs_encode(&v, out, 5), -E2BIG, "struct: encode past cap");

	is_int(decode(a, BIN(vec_all), &v), 0, "struct: every kind");
	ok((x = pbs_get(&v, "n")) && x->kind == PBS_NULL, "struct: null");
	ok((x = pbs_get(&v, "x")) && x->kind == PBS_NUMBER && x->num == 1.5, "struct: number");
	ok((x = pbs_get(&v, "t")) && x->kind == PBS_BOOL && x->b, "struct: bool");
	ok((x = pbs_get(&v, "l")) && x->kind == PBS_LIST && x->items.n == 2 && x->items.v[0].kind == PBS_STRING &&
	   x->items.v[1].kind == PBS_NUMBER && x->items.v[1].num == 2.0, "struct: list");
	ok((x = pbs_get(&v, "s")) && x->kind == PBS_STRUCT && pbs_get_str(x, "k", &n) && n == 1, "struct: nested");
	ok(!pbs_get(&v, "missing") && !pbs_get_str(&v, "x", &n) && n == 0, "struct: absent, and not a string");
	is_int(pbs_encode(&v, out, sizeof(out)), sizeof(vec_all) - 1, "struct: every kind encodes back");
	ok(memcmp(out, vec_all, sizeof(vec_all) - 1) == 0, "struct: byte for byte");

	is_int(decode(a, (const uint8_t *)"", 0, &v), 0, "struct: empty input is an empty Struct");
	ok(v.kind == PBS_STRUCT && v.fields.n == 0, "struct: no fields");
	/* Unknown fields of every wire type, at each level, are skipped. */
	is_int(decode(a, BIN("\x10\x05\x19\x01\x02\x03\x04\x05\x06\x07\x08\x25\x01\x02\x03\x04"
			     "\x0a\x0e\x18\x01\x0a\x01\x61\x12\x07\x38\x07\x1a\x01\x62\x40\x00"), &v), 0,
	       "struct: unknown fields skipped");
	s = pbs_get_str(&v, "a", &n);
	ok(s && n == 1 && *s == 'b', "struct: the known ones read");
	/* A known number with another wire type is unknown too. */
	is_int(decode(a, BIN("\x0a\x07\x0a\x01\x61\x12\x02\x18\x01"), &v), 0, "struct: string_value as a varint");
	ok((x = pbs_get(&v, "a")) && x->kind == PBS_UNSET, "struct: skipped, the Value is empty");
	/* A key twice: the last wins; a Value with two kinds: the last wins. */
	is_int(decode(a, BIN("\x0a\x08\x0a\x01\x61\x12\x03\x1a\x01\x31\x0a\x08\x0a\x01\x61\x12\x03\x1a\x01\x32"), &v), 0,
	       "struct: a key twice");
	ok(pbs_get_str(&v, "a", &n) && *pbs_get_str(&v, "a", &n) == '2', "struct: the last entry wins");
	is_int(decode(a, BIN("\x0a\x0a\x0a\x01\x61\x12\x05\x1a\x01\x31\x20\x01"), &v), 0, "struct: two kinds");
	ok((x = pbs_get(&v, "a")) && x->kind == PBS_BOOL, "struct: the last kind wins");
	is_int(decode(a, BIN("\x0a\x03\x12\x01\x00"), &v), -EINVAL, "struct: field number 0");
	is_int(decode(a, BIN("\x0a\x08\x0a\x01\x61\x12\x03\x1a\x01"), &v), -EINVAL, "struct: truncated");
	is_int(decode(a, BIN("\x0b\x0c"), &v), -EINVAL, "struct: a group");
	is_int(decode(a, BIN("\x0e"), &v), -EINVAL, "struct: wire type 6");
	is_int(decode(a, BIN("\x08\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01"), &v), -EINVAL, "struct: 11-byte varint");
	is_int(decode(a, BIN("\x0a\x08\x0a\x01\xff\x12\x03\x1a\x01\x62"), &v), -EINVAL, "struct: a key not UTF-8");
	is_int(decode(a, BIN("\x0a\x08\x0a\x01\x61\x12\x03\x1a\x01\xc0"), &v), -EINVAL, "struct: a string not UTF-8");
	arena_free(a);
}

/* Structs nested depth deep ({a: {a: ... {}}}) into b; their length. */
static size_t nested(uint8_t *b, unsigned depth)
{
	size_t n = 0;

	/* From the inside out: Struct.fields entry {key "a", value {struct_value: b}}. */
	for (unsigned i = 1; i < depth; i++) {
		uint8_t h[9] = { 0x0a, (uint8_t)(7 + n), 0x0a, 0x01, 'a', 0x12, (uint8_t)(2 + n), 0x2a, (uint8_t)n };

		memmove(b + sizeof(h), b, n);
		memcpy(b, h, sizeof(h));
		n += sizeof(h);
	}
	return n;
}

static void test_bounds(void)
{
	struct arena *a = arena_new(4096);
	struct pbs_value v;
	uint8_t b[512], *many;
	size_t n;

	n = nested(b, PBS_MAX_DEPTH);
	is_int(decode(a, b, n, &v), 0, "bounds: %d levels", PBS_MAX_DEPTH);
	n = nested(b, PBS_MAX_DEPTH + 1);
	is_int(decode(a, b, n, &v), -EINVAL, "bounds: %d levels refused", PBS_MAX_DEPTH + 1);

	/* PBS_MAX_VALUES + 1 empty entries. */
	many = malloc(2 * (PBS_MAX_VALUES + 1));
	for (unsigned i = 0; i <= PBS_MAX_VALUES; i++)
		many[2 * i] = 0x0a, many[2 * i + 1] = 0;
	is_int(decode(a, many, 2 * PBS_MAX_VALUES, &v), 0, "bounds: %d values", PBS_MAX_VALUES);
	is_int(decode(a, many, 2 * (PBS_MAX_VALUES + 1), &v), -EINVAL, "bounds: one more refused");
	free(many);
	arena_free(a);
}

/* Istio's node metadata of the web workload (python3-protobuf, deterministic). */
static const char web_b64[] = "CisKBkxBQkVMUxIhKh8KDAoDYXBwEgUaA3dlYgoPCgd2ZXJzaW9uEgQaAnYxChYKDVdPUktMT0FEX05BTUUSBRoDd2Vi";

static const char *field(const struct peer *p, enum peer_field f, char *buf)
{
	size_t n;
	const char *v = peer_get(p, f, &n);

	memcpy(buf, v, n);
	buf[n] = '\0';
	return buf;
}

static void test_peer(void)
{
	struct peer *p = peer_decode(web_b64, strlen(web_b64));
	const struct peer *c1, *c2;
	char buf[300];

	ok(p != NULL, "peer: Istio's metadata decodes");
	is_str(field(p, PEER_WORKLOAD, buf), "web", "peer: WORKLOAD_NAME");
	is_str(field(p, PEER_APP, buf), "web", "peer: LABELS app");
	is_str(field(p, PEER_VERSION, buf), "v1", "peer: LABELS version");
	is_str(field(p, PEER_SERVICE, buf), "", "peer: no canonical name said");
	is_str(field(p, PEER_NAMESPACE, buf), "", "peer: no namespace said");
	free(p);
	is_str(field(NULL, PEER_APP, buf), "", "peer: none at all");
	ok(!peer_decode("not base64!", 11), "peer: not base64");
	ok(!peer_decode("Cg==", 4), "peer: not a Struct (truncated)");

	c1 = peer_lookup(web_b64, strlen(web_b64));
	c2 = peer_lookup(web_b64, strlen(web_b64));
	ok(c1 && c1 == c2, "cache: the second lookup is the first's");
	ok(!peer_lookup("Cg==", 4) && !peer_lookup("Cg==", 4), "cache: remembers what is not metadata");
	peer_thread_exit();
}

static void test_local(void)
{
	static const char conf[] =
		"node: { id: \"sidecar~10.1.2.3~was-v1-abc.blog~blog.svc.cluster.local\", workload: was-v1, namespace: blog,\n"
		"        version: v1, service: was-svc.blog.svc.cluster.local, cluster_id: Kubernetes,\n"
		"        labels: { app.kubernetes.io/name: was, service.istio.io/canonical-revision: r1 } }\n";
	struct cfg_errs e;
	struct cfg *cfg = load(conf, &e);
	struct arena *a = arena_new(4096);
	struct peer_local me;
	struct peer *p;
	char *h, buf[300];

	if (!ok(cfg != NULL, "local: config loads"))
		return;
	is_int(peer_local_of(a, cfg, &me), 0, "local: derived");
	is_str(me.v[PEER_NAME], "was-v1-abc", "local: NAME, the pod of an Istio-style id");
	is_str(me.v[PEER_APP], "was", "local: app from app.kubernetes.io/name");
	is_str(me.v[PEER_SERVICE], "was", "local: canonical name = app");
	is_str(me.v[PEER_REVISION], "r1", "local: canonical revision from its label");
	is_str(me.v[PEER_VERSION], "v1", "local: version from node.version");
	ok((h = peer_local_header(a, &me)) != NULL, "local: header");
	ok(h && (p = peer_decode(h, strlen(h))), "local: what it sends decodes");
	if (h && p) {
		is_str(field(p, PEER_NAMESPACE, buf), "blog", "local: round trip NAMESPACE");
		is_str(field(p, PEER_WORKLOAD, buf), "was-v1", "local: round trip WORKLOAD_NAME");
		is_str(field(p, PEER_CLUSTER, buf), "Kubernetes", "local: round trip CLUSTER_ID");
		is_str(field(p, PEER_REVISION, buf), "r1", "local: round trip canonical revision");
		free(p);
	}
	cfg_unref(cfg);
	cfg_errs_free(&e);

	cfg = load("node: { id: web-0, workload: web }\n", &e);
	is_int(peer_local_of(a, cfg, &me), 0, "local: a bare node");
	is_str(me.v[PEER_NAME], "web-0", "local: NAME is node.id");
	is_str(me.v[PEER_APP], "web", "local: app falls back to the workload");
	is_str(me.v[PEER_REVISION], "latest", "local: no version: latest");
	ok(!me.v[PEER_VERSION] && !me.v[PEER_NAMESPACE], "local: the rest unsaid");
	cfg_unref(cfg);
	cfg_errs_free(&e);
	FAILS("node: { labels: { app: { x: 1 } } }\n", "node.labels: a map value",
	      "t.yaml:1:24: expected a string, found a map");
	FAILS("node: { labels: [app] }\n", "node.labels: a list", "t.yaml:1:17: expected a map of label: value, found a list");
	FAILS("node: { id: \"web\\r\\nx-evil: 1\" }\nmetadata_exchange: true\n", "metadata_exchange: node.id with CR LF",
	      "t.yaml:2:20: metadata_exchange: node.id has a control character, so it cannot be x-envoy-peer-metadata-id");
	arena_free(a);
}

int main(void)
{
	server_hooks_install();
	test_struct();
	test_bounds();
	test_peer();
	test_local();
	return done_testing();
}
