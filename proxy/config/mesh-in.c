/* Inbound: what reaches the workload. Each workload port (mesh.workload.ports
 * and the target ports of the Services selecting the workload) gets the
 * cluster "inbound|PORT||" to the app and a listener: not bound, behind
 * virtualInbound (15006) when intercepted, else at mesh.inbound[PORT].
 *
 * PeerAuthentication gives each port's TLS mode (the workload's policy, its
 * port-level mode, the namespace's, the root namespace's; PERMISSIVE by
 * default). AuthorizationPolicies selecting the workload become the rbac
 * list of the port's route, specialised for the port: an operation's ports
 * and a destination.port condition are decided here, as Istio decides them
 * on the workload's port, never on the sidecar's listener port. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/arena.h"
#include "config/cfg-parse.h"
#include "config/mesh.h"

struct wport {
	unsigned port;
	bool tcp;
};

static void add_port(struct wport *v, unsigned *n, unsigned port, bool tcp)
{
	for (unsigned i = 0; i < *n; i++)
		if (v[i].port == port)
			return;
	if (*n < MESH_MAX_PORTS && port && port < 65536) {
		v[*n].port = port;
		v[*n].tcp = tcp;
		(*n)++;
	}
}

static bool tcp_name(const char *s)
{
	static const char *const tcp[] = { "tcp", "tls", "https", "mysql", "mongo", "redis", NULL };

	for (unsigned i = 0; s && tcp[i]; i++) {
		size_t n = strlen(tcp[i]);

		if (!strncmp(s, tcp[i], n) && (!s[n] || s[n] == '-'))
			return true;
	}
	return false;
}

static unsigned workload_ports(struct mesh *m, struct wport *v)
{
	const struct ynode *list = yaml_get(yaml_get(m->sect, "workload"), "ports");
	unsigned n = 0;

	for (unsigned i = 0; list && list->type == YN_SEQ && i < list->n; i++) {
		unsigned long p = list->items[i]->str ? strtoul(list->items[i]->str, NULL, 10) : 0;

		if (!p || p > 65535)
			mesh_error(m, NULL, list->items[i], "mesh.workload.ports: expected port numbers");
		add_port(v, &n, (unsigned)p, false);
	}
	for (struct mesh_res *r = NULL; (r = mesh_next(m, r, "Service"));) {
		const struct ynode *sel = yaml_get(r->spec, "selector"), *ports = yaml_get(r->spec, "ports");

		if (strcmp(r->ns, m->ns) || !sel || !sel->n || !m->wl_labels || !mesh_labels_match(sel, m->wl_labels))
			continue;
		for (unsigned i = 0; ports && ports->type == YN_SEQ && i < ports->n; i++) {
			const struct ynode *p = ports->items[i];
			const char *t = mesh_str(p, "targetPort"), *num = mesh_str(p, "port");
			const char *app = mesh_str(p, "appProtocol");
			unsigned long tp = t ? strtoul(t, NULL, 10) : num ? strtoul(num, NULL, 10) : 0;

			if (t && !tp) {
				mesh_warn(m, r, yaml_get(p, "targetPort"), "named targetPort \"%s\" needs the port in "
					  "mesh.workload.ports (skipped)", t);
				continue;
			}
			add_port(v, &n, (unsigned)tp, tcp_name(app ? app : mesh_str(p, "name")));
		}
	}
	return n;
}

/* ---- PeerAuthentication */

enum mtls { MTLS_UNSET, MTLS_DISABLE, MTLS_PERMISSIVE, MTLS_STRICT };

static enum mtls mtls_mode(struct mesh *m, const struct mesh_res *r, const struct ynode *mtls)
{
	const char *s = mesh_str(mtls, "mode");

	if (!s || !strcmp(s, "UNSET"))
		return MTLS_UNSET;
	if (!strcmp(s, "DISABLE"))
		return MTLS_DISABLE;
	if (!strcmp(s, "PERMISSIVE"))
		return MTLS_PERMISSIVE;
	if (!strcmp(s, "STRICT"))
		return MTLS_STRICT;
	mesh_error(m, r, yaml_get(mtls, "mode"), "mtls.mode: expected UNSET, DISABLE, PERMISSIVE or STRICT");
	return MTLS_UNSET;
}

static enum mtls port_mtls(struct mesh *m, unsigned port, const struct mesh_res **from)
{
	static const char *const known[] = { "selector", "mtls", "portLevelMtls", NULL };
	const struct mesh_res *wl = NULL, *nsr = NULL, *root = NULL;
	enum mtls mode;

	for (struct mesh_res *r = NULL; (r = mesh_next(m, r, "PeerAuthentication"));) {
		const struct ynode *sel = yaml_get(r->spec, "selector");

		if (!r->used) {
			mesh_unsupported(m, r, r->spec, known);
			r->used = true;
		}
		if (sel && !strcmp(r->ns, m->ns) && mesh_selects_workload(m, r, sel))
			wl = wl ? wl : r;
		else if (!sel && !strcmp(r->ns, m->ns))
			nsr = nsr ? nsr : r;
		else if (!sel && !strcmp(r->ns, m->root_ns))
			root = root ? root : r;
	}
	if (wl) {
		const struct ynode *pl = yaml_get(wl->spec, "portLevelMtls");

		for (unsigned i = 0; pl && pl->type == YN_MAP && i < pl->n; i++)
			if (strtoul(pl->items[2 * i]->str, NULL, 10) == port &&
			    (mode = mtls_mode(m, wl, pl->items[2 * i + 1])) != MTLS_UNSET) {
				*from = wl;
				return mode;
			}
		if ((mode = mtls_mode(m, wl, yaml_get(wl->spec, "mtls"))) != MTLS_UNSET) {
			*from = wl;
			return mode;
		}
	}
	if (nsr && (mode = mtls_mode(m, nsr, yaml_get(nsr->spec, "mtls"))) != MTLS_UNSET) {
		*from = nsr;
		return mode;
	}
	if (root && (mode = mtls_mode(m, root, yaml_get(root->spec, "mtls"))) != MTLS_UNSET) {
		*from = root;
		return mode;
	}
	*from = NULL;
	return MTLS_PERMISSIVE;
}

static void listener_tls(struct mesh *m, struct ynode *l, unsigned port)
{
	const struct mesh_res *from;
	enum mtls mode = port_mtls(m, port, &from);
	const struct ynode *at = from ? from->doc : m->sect;
	struct ynode *t;

	if (mode == MTLS_DISABLE)
		return;
	if (!m->tls) {
		if (mode == MTLS_STRICT)
			mesh_error(m, from, at, "mtls STRICT on port %u needs the workload's certificate "
				   "(mesh.tls: {cert, key, ca})", port);
		else if (from)
			mesh_warn(m, from, at, "mtls PERMISSIVE without mesh.tls: port %u accepts plaintext only", port);
		return;
	}
	t = mesh_map(m, at);
	mesh_put_str(m, t, "mode", at, mode == MTLS_STRICT ? "STRICT" : "PERMISSIVE");
	for (unsigned i = 0; i < m->tls->n; i++)
		mesh_put(m, t, m->tls->items[2 * i]->str, m->tls->items[2 * i + 1]);
	mesh_put(m, l, "tls", t);
}

/* ---- AuthorizationPolicy */

static bool has_port(const struct ynode *list, unsigned port)
{
	for (unsigned i = 0; list && list->type == YN_SEQ && i < list->n; i++)
		if (list->items[i]->str && strtoul(list->items[i]->str, NULL, 10) == port)
			return true;
	return false;
}

/* map without the keys named; NULL when it has none of them (use map). */
static struct ynode *without(struct mesh *m, const struct ynode *map, const char *k1, const char *k2)
{
	struct ynode *c;

	if (!yaml_get(map, k1) && !yaml_get(map, k2))
		return NULL;
	c = mesh_map(m, map);
	for (unsigned i = 0; c && i < map->n; i++) {
		const char *k = map->items[2 * i]->str;

		if (strcmp(k, k1) && strcmp(k, k2))
			mesh_put(m, c, k, map->items[2 * i + 1]);
	}
	return c;
}

/* rule for port, or NULL when it cannot match there. */
static const struct ynode *rule_for_port(struct mesh *m, const struct ynode *rule, unsigned port)
{
	const struct ynode *to = yaml_get(rule, "to"), *when = yaml_get(rule, "when");
	struct ynode *out = NULL, *nto = NULL, *nwhen = NULL;

	if (rule->type != YN_MAP)
		return rule;	/* the rbac parser reports it */
	if (to && to->type == YN_SEQ && to->n) {
		nto = mesh_seq(m, to);
		for (unsigned i = 0; i < to->n; i++) {
			const struct ynode *op = yaml_get(to->items[i], "operation");
			const struct ynode *ports = yaml_get(op, "ports"), *not = yaml_get(op, "notPorts");
			struct ynode *nop, *item;

			if ((ports && !has_port(ports, port)) || has_port(not, port))
				continue;
			if (!(nop = without(m, op, "ports", "notPorts"))) {
				mesh_push(m, nto, to->items[i]);
				continue;
			}
			item = mesh_map(m, to->items[i]);
			mesh_put(m, item, "operation", nop);
			mesh_push(m, nto, item);
		}
		if (nto && !nto->n)
			return NULL;
	}
	if (when && when->type == YN_SEQ) {
		nwhen = mesh_seq(m, when);
		for (unsigned i = 0; i < when->n; i++) {
			const struct ynode *c = when->items[i], *vals = yaml_get(c, "values");
			const char *key = mesh_str(c, "key");

			if (!key || strcmp(key, "destination.port")) {
				mesh_push(m, nwhen, (struct ynode *)c);
				continue;
			}
			if ((vals && !has_port(vals, port)) || has_port(yaml_get(c, "notValues"), port))
				return NULL;
		}
	}
	out = mesh_map(m, rule);
	for (unsigned i = 0; out && i < rule->n; i++)
		mesh_put(m, out, rule->items[2 * i]->str, rule->items[2 * i + 1]);
	if (nto)
		mesh_put(m, out, "to", nto);
	if (nwhen)
		mesh_put(m, out, "when", nwhen);
	return out;
}

static struct ynode *policies_for_port(struct mesh *m, unsigned port)
{
	static const char *const known[] = { "selector", "action", "rules", NULL };
	struct ynode *list = mesh_seq(m, m->sect);

	for (struct mesh_res *r = NULL; (r = mesh_next(m, r, "AuthorizationPolicy"));) {
		const char *action = mesh_str(r->spec, "action");
		const struct ynode *rules = yaml_get(r->spec, "rules");
		struct ynode *p, *nr;

		if (yaml_get(r->spec, "targetRef") || yaml_get(r->spec, "targetRefs")) {
			mesh_error(m, r, yaml_get(r->spec, "targetRef") ? yaml_get(r->spec, "targetRef")
									: yaml_get(r->spec, "targetRefs"),
				   "targetRef is not supported: use selector (the policy cannot be enforced)");
			continue;
		}
		if (!mesh_selects_workload(m, r, yaml_get(r->spec, "selector")))
			continue;
		if (!r->used) {
			r->used = true;
			mesh_unsupported(m, r, r->spec, known);
			if (action && !strcmp(action, "CUSTOM"))
				mesh_error(m, r, yaml_get(r->spec, "action"), "action CUSTOM (an external authorizer) "
					   "is not supported: the policy cannot be enforced");
		}
		p = mesh_map(m, r->doc);
		mesh_put_fmt(m, p, "name", r->doc, "%s.%s", r->ns, r->name);
		mesh_put_str(m, p, "action", r->spec, action ? action : "ALLOW");
		nr = mesh_seq(m, rules ? rules : r->spec);
		for (unsigned i = 0; rules && rules->type == YN_SEQ && i < rules->n; i++) {
			const struct ynode *x = rule_for_port(m, rules->items[i], port);

			if (x)
				mesh_push(m, nr, (struct ynode *)x);
		}
		if (rules && rules->type != YN_SEQ)
			mesh_error(m, r, rules, "rules: expected a list");
		mesh_put(m, p, "rules", nr);
		mesh_push(m, list, p);
	}
	return list;
}

void mesh_inbound(struct mesh *m)
{
	struct wport ports[MESH_MAX_PORTS];
	unsigned n = workload_ports(m, ports);
	const struct ynode *at = m->sect;

	if (n && m->intercept) {
		struct ynode *vi = mesh_map(m, at);

		mesh_put_str(m, vi, "name", at, "virtualInbound");
		mesh_put_str(m, vi, "address", at, "0.0.0.0:15006");
		mesh_put_str(m, vi, "direction", at, "inbound");
		mesh_put(m, vi, "original_dst", ytree_plain(m->a, at, "true"));
		mesh_push(m, m->listeners, vi);
	}
	for (unsigned i = 0; i < n; i++) {
		unsigned port = ports[i].port;
		const char *cl = arena_printf(m->a, "inbound|%u||", port);
		struct ynode *c = mesh_map(m, at), *eps = mesh_seq(m, at), *l = mesh_map(m, at);
		const struct ynode *addr = m->inbound ? yaml_get(m->inbound, arena_printf(m->a, "%u", port)) : NULL;
		struct ynode *rbac = policies_for_port(m, port);

		mesh_cilium_rbac(m, port, ports[i].tcp, rbac);
		mesh_put_str(m, c, "name", at, cl);
		mesh_push(m, eps, ytree_fmt(m->a, at, "%s:%u", m->app_host, port));
		mesh_put(m, c, "endpoints", eps);
		mesh_put_str(m, c, "connect_timeout", at, "10s");
		mesh_push(m, m->clusters, c);

		mesh_put_fmt(m, l, "name", at, "inbound|%u", port);
		if (m->intercept) {
			mesh_put_fmt(m, l, "address", at, "0.0.0.0:%u", port);
			mesh_put(m, l, "bind_to_port", ytree_plain(m->a, at, "false"));
		} else if (addr) {
			mesh_put(m, l, "address", (struct ynode *)addr);
		} else {
			mesh_error(m, NULL, m->inbound ? m->inbound : at, "mesh.inbound: no listen address for "
				   "workload port %u (not intercepted: give mesh.inbound: { \"%u\": ADDRESS })", port, port);
			continue;
		}
		mesh_put_str(m, l, "direction", at, "inbound");
		listener_tls(m, l, port);
		if (ports[i].tcp) {
			struct ynode *tp = mesh_map(m, at);

			if (rbac && rbac->n)
				mesh_error(m, NULL, at, "AuthorizationPolicy on TCP port %u: not supported (the policy "
					   "cannot be enforced)", port);
			mesh_put_str(m, l, "protocol", at, "tcp");
			mesh_put_str(m, tp, "cluster", at, cl);
			mesh_put(m, l, "tcp_proxy", tp);
		} else {
			struct ynode *routes = mesh_seq(m, at), *rt = mesh_map(m, at), *match = mesh_map(m, at);
			struct ynode *action = mesh_map(m, at);

			mesh_put_str(m, match, "prefix", at, "/");
			mesh_put(m, rt, "match", match);
			mesh_put_str(m, action, "cluster", at, cl);
			mesh_put(m, rt, "route", action);
			if (rbac && rbac->n)
				mesh_put(m, rt, "rbac", rbac);
			mesh_push(m, routes, rt);
			mesh_put(m, l, "routes", routes);
		}
		mesh_push(m, m->listeners, l);
	}
}
