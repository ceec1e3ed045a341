/* Original-destination dispatch: the protocol sniff, the listener an original
 * destination picks, and the config keys that drive them. */
#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>

#include "config/cfg.h"
#include "mesh/odst.h"
#include "server.h"
#include "t/unit/tap.h"
#include "t/unit/cfg-load.h"

static const char conf[] =
	"listeners:\n"
	"  - name: virtualOutbound\n"
	"    address: 127.0.0.1:15001\n"
	"    direction: outbound\n"
	"    original_dst: true\n"
	"    outbound_policy: REGISTRY_ONLY\n"
	"  - name: virtualInbound\n"
	"    address: 0.0.0.0:15006\n"
	"    direction: inbound\n"
	"    original_dst: true\n"
	"  - name: svc_exact\n"
	"    address: 10.96.0.10:8080\n"
	"    bind_to_port: false\n"
	"    direction: outbound\n"
	"    routes: [{match: {prefix: /}, route: {cluster: c}}]\n"
	"  - name: svc_any\n"
	"    address: 0.0.0.0:8080\n"
	"    bind_to_port: false\n"
	"    direction: outbound\n"
	"    routes: [{match: {prefix: /}, route: {cluster: c}}]\n"
	"  - name: in_8080\n"
	"    address: 0.0.0.0:8080\n"
	"    bind_to_port: false\n"
	"    direction: inbound\n"
	"    routes: [{match: {prefix: /}, route: {cluster: c}}]\n"
	"  - name: bound\n"
	"    address: 127.0.0.1:9090\n"
	"    routes: [{match: {prefix: /}, route: {cluster: c}}]\n"
	"clusters:\n"
	"  - { name: c, endpoints: [127.0.0.1:1], source_address: 127.0.0.6 }\n";

static struct sockaddr_in sin4(const char *ip, unsigned port)
{
	struct sockaddr_in s = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };

	inet_pton(AF_INET, ip, &s.sin_addr);
	return s;
}

static const char *find(const struct cfg *c, const char *from, const char *ip, unsigned port)
{
	struct sockaddr_in s = sin4(ip, port);
	const struct cfg_listener *l = NULL, *t;

	for (unsigned i = 0; i < c->nlisteners; i++)
		if (!strcmp(c->listeners[i].name, from))
			l = &c->listeners[i];
	t = odst_find_listener(c, l, (struct sockaddr *)&s);
	return t ? t->name : "(none)";
}

static void test_sniff(void)
{
	is_int(odst_sniff("GET / HTTP/1.1\r\n", 16), ODST_HTTP, "GET request line");
	is_int(odst_sniff("PRI * HTTP/2.0\r\n", 16), ODST_HTTP, "HTTP/2 preface");
	is_int(odst_sniff("M-SEARCH * HTTP/1.1", 19), ODST_HTTP, "method with a dash");
	is_int(odst_sniff("POS", 3), ODST_MORE, "a partial method waits");
	is_int(odst_sniff("", 0), ODST_MORE, "nothing yet waits");
	is_int(odst_sniff("\x16\x03\x01\x02\x00", 5), ODST_TLS, "TLS ClientHello");
	is_int(odst_sniff("get / HTTP/1.1", 14), ODST_OTHER, "lower-case is not a method");
	is_int(odst_sniff(" GET", 4), ODST_OTHER, "leading space");
	is_int(odst_sniff("SSH-2.0-OpenSSH", 15), ODST_OTHER, "SSH banner");
	is_int(odst_sniff("AAAAAAAAAAAAAAAAAAAAAAAAAAAA", 28), ODST_OTHER, "no space in the first 24 bytes");
}

static void test_find(void)
{
	struct cfg_errs e;
	struct cfg *c = load(conf, &e);

	if (!ok(c != NULL, "interception config loads")) {
		for (unsigned i = 0; i < e.n; i++)
			printf("#   %s\n", e.msgs[i]);
		cfg_errs_free(&e);
		return;
	}
	cfg_errs_free(&e);
	ok(c->listeners[0].original_dst && c->listeners[0].registry_only, "original_dst, REGISTRY_ONLY");
	ok(!c->listeners[1].registry_only, "ALLOW_ANY by default");
	ok(c->listeners[1].bind_to_port && !c->listeners[2].bind_to_port, "bind_to_port");
	is_str(c->clusters[0].source_address, "127.0.0.6", "source_address");
	is_int(c->clusters[0].source.ss_family, AF_INET, "source_address parsed");
	is_str(find(c, "virtualOutbound", "10.96.0.10", 8080), "svc_exact", "exact IP first");
	is_str(find(c, "virtualOutbound", "10.96.0.11", 8080), "svc_any", "then the wildcard of the port");
	is_str(find(c, "virtualOutbound", "10.96.0.10", 8081), "(none)", "other port: none");
	is_str(find(c, "virtualInbound", "10.77.0.3", 8080), "in_8080", "inbound sees inbound listeners only");
	is_str(find(c, "virtualOutbound", "127.0.0.1", 9090), "(none)", "bound listeners are not targets");
	cfg_unref(c);
}

#define CLUSTER "clusters: [{name: c, endpoints: [127.0.0.1:1]}]\n"
#define ROUTES "    routes: [{match: {prefix: /}, route: {cluster: c}}]\n"

static void test_errors(void)
{
	FAILS("listeners:\n  - name: o\n    address: 127.0.0.1:15001\n    original_dst: true\n" ROUTES CLUSTER,
	      "routes on original_dst",
	      "t.yaml:5:13: an original_dst listener takes no routes: it hands connections to the bind_to_port: "
	      "false listener of their original destination");
	FAILS("listeners:\n  - name: o\n    address: 127.0.0.1:15001\n    original_dst: true\n"
	      "    bind_to_port: false\n" CLUSTER,
	      "original_dst without a port",
	      "t.yaml:5:19: an original_dst listener must bind its port (it receives the intercepted connections)");
	FAILS("listeners:\n  - name: o\n    address: 127.0.0.1:15001\n    outbound_policy: REGISTRY_ONLY\n" ROUTES
	      CLUSTER,
	      "outbound_policy without original_dst",
	      "t.yaml:4:22: outbound_policy applies to an outbound original_dst listener only");
	FAILS("listeners:\n  - name: o\n    address: 127.0.0.1:15001\n    original_dst: true\n"
	      "    outbound_policy: DENY\n" CLUSTER,
	      "bad outbound_policy",
	      "t.yaml:5:22: expected ALLOW_ANY or REGISTRY_ONLY");
	FAILS("listeners:\n  - name: o\n    address: 127.0.0.1:15001\n    original_dst: yes\n" ROUTES CLUSTER,
	      "original_dst not a bool",
	      "t.yaml:4:19: expected true or false");
	FAILS("listeners:\n  - name: a\n    address: 0.0.0.0:80\n    bind_to_port: false\n" ROUTES
	      "  - name: b\n    address: 0.0.0.0:80\n    bind_to_port: false\n" ROUTES CLUSTER,
	      "two unbound listeners of one direction on one address",
	      "t.yaml:7:14: duplicate listener address \"0.0.0.0:80\" (listener \"a\" at line 3 uses it)");
	FAILS("listeners:\n  - name: l\n    address: 127.0.0.1:1\n" ROUTES
	      "clusters: [{name: c, endpoints: [127.0.0.1:1], source_address: \"127.0.0.6:0\"}]\n",
	      "source_address with a port",
	      "t.yaml:5:64: invalid source_address \"127.0.0.6:0\": expected an IP address like 127.0.0.6 (no port)");
}

int main(void)
{
	server_hooks_install();
	test_sniff();
	test_find();
	test_errors();
	return done_testing();
}
