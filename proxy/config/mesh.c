/* The mesh: section: which workload this sidecar is, where the resources
 * are, and the derived config merged with the native one (doc/istio.md).
 *
 *   mesh:
 *     resources: [istio/]        # files or folders, relative to this file
 *     namespace: blog-system
 *     workload: { labels: { app: was, version: stable } }
 *     trust_domain: cluster.local
 *     tls: { cert: certs/was.pem, key: certs/was-key.pem, ca: certs/root.pem }
 *
 * Resources are read at every load, so SIGHUP (or the file watcher) picks up
 * a changed bundle; a bad bundle fails the load and the old config stays. */
#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/arena.h"
#include "config/cfg-parse.h"
#include "config/mesh.h"

#define MESH_MAX_FILES	10000

/* Kinds read; others (a cluster dump holds many) are skipped with a warning. */
static const char *const kinds[] = {
	"VirtualService", "DestinationRule", "AuthorizationPolicy", "PeerAuthentication", "ServiceEntry",
	"Service", "EndpointSlice", "Pod", "HTTPRoute", "GRPCRoute", "TLSRoute", "CiliumNetworkPolicy",
	"CiliumClusterwideNetworkPolicy", "Telemetry", "Sidecar", NULL
};
_Static_assert(sizeof(kinds) / sizeof(kinds[0]) == MESH_KINDS + 1, "MESH_KINDS is the number of kinds");

/* ---- helpers shared by mesh-out.c and mesh-in.c */

static unsigned kind_of(const char *kind)
{
	unsigned k = 0;

	while (kinds[k] && strcmp(kinds[k], kind))
		k++;
	return k;
}

struct mesh_res *mesh_next(struct mesh *m, struct mesh_res *after, const char *kind)
{
	unsigned k;

	if (after)
		return after->next_kind;
	k = kind_of(kind);
	return k < MESH_KINDS ? m->first[k] : NULL;
}

static uint64_t key_hash(const char *kind, const char *ns, const char *key)
{
	uint64_t h = cfg_hash_str(kind);

	h = cfg_hash_bytes(h, ns, strlen(ns) + 1);
	return cfg_hash_bytes(h, key, strlen(key) + 1);
}

struct mesh_res *mesh_find(struct mesh *m, const char *kind, const char *ns, const char *key,
			   const struct mesh_res *after)
{
	struct mesh_key *e;

	if (!m->index)
		return NULL;
	e = m->index[key_hash(kind, ns, key) & m->mask];
	for (; e && after; e = e->next)
		if (e->r == after && !strcmp(e->kind, kind) && !strcmp(e->ns, ns) && !strcmp(e->key, key))
			after = NULL;
	for (; e; e = e->next)
		if (!strcmp(e->kind, kind) && !strcmp(e->ns, ns) && !strcmp(e->key, key))
			return e->r;
	return NULL;
}

static void index_put(struct mesh *m, const char *kind, const char *ns, const char *key, struct mesh_res *r,
		      struct mesh_key **tail)
{
	struct mesh_key *e = arena_alloc(m->a, sizeof(*e)), **b;

	if (!e) {
		m->rc = -ENOMEM;
		return;
	}
	*e = (struct mesh_key){ kind, ns, key, r, NULL };
	b = &m->index[key_hash(kind, ns, key) & m->mask];
	/* Appended, so a bucket lists its resources in bundle order. */
	if (tail[b - m->index])
		tail[b - m->index]->next = e;
	else
		*b = e;
	tail[b - m->index] = e;
}

/* Kind lists and the index, once every resource is read (m->res moves while
 * it grows): lookups stay linear in the bundle's size. */
static void index_bundle(struct mesh *m)
{
	struct mesh_res *last[MESH_KINDS] = { NULL };
	struct mesh_key **tail;
	uint32_t cap = 16;

	while (cap < 4 * (uint64_t)m->nres)
		cap <<= 1;
	m->mask = cap - 1;
	m->index = arena_zalloc(m->a, cap * sizeof(*m->index));
	tail = calloc(cap, sizeof(*tail));
	if (!m->index || !tail) {
		free(tail);
		m->index = NULL;
		m->rc = -ENOMEM;
		return;
	}
	for (unsigned i = 0; i < m->nres; i++) {
		struct mesh_res *r = &m->res[i];
		unsigned k = kind_of(r->kind);
		const char *svc;

		if (last[k])
			last[k]->next_kind = r;
		else
			m->first[k] = r;
		last[k] = r;
		index_put(m, r->kind, r->ns, r->name, r, tail);
		if (k == kind_of("EndpointSlice") && (svc = mesh_str(r->labels, "kubernetes.io/service-name")))
			index_put(m, "EndpointSlice/service", r->ns, svc, r, tail);
	}
	free(tail);
}

long mesh_names_find(const struct mesh_names *x, const char *name)
{
	if (!x->slot)
		return -1;
	for (uint32_t i = (uint32_t)cfg_hash_str(name) & x->mask; x->slot[i]; i = (i + 1) & x->mask)
		if (!strcmp(x->name[x->slot[i] - 1], name))
			return (long)x->slot[i] - 1;
	return -1;
}

static void names_slot(struct mesh_names *x, uint32_t num)
{
	uint32_t i = (uint32_t)cfg_hash_str(x->name[num]) & x->mask;

	while (x->slot[i])
		i = (i + 1) & x->mask;
	x->slot[i] = num + 1;
}

int mesh_names_add(struct mesh_names *x, const char *name)
{
	if (x->n == x->cap) {
		uint32_t cap = x->cap ? 2 * x->cap : 32;
		const char **v = realloc(x->name, cap * sizeof(*v));
		uint32_t *slot = calloc(2 * cap, sizeof(*slot));

		if (v)
			x->name = v;
		if (!v || !slot) {
			free(slot);
			return -ENOMEM;
		}
		free(x->slot);
		x->slot = slot;
		x->cap = cap;
		x->mask = 2 * cap - 1;
		for (uint32_t k = 0; k < x->n; k++)
			names_slot(x, k);
	}
	x->name[x->n] = name;
	names_slot(x, x->n++);
	return 0;
}

void mesh_names_free(struct mesh_names *x)
{
	free(x->name);
	free(x->slot);
	memset(x, 0, sizeof(*x));
}

void mesh_copy_key(struct mesh *m, struct ynode *to, const char *as, const struct ynode *from, const char *key)
{
	const struct ynode *v = yaml_get(from, key);

	if (v)
		mesh_put(m, to, as, (struct ynode *)v);
}

void mesh_copy_keys(struct mesh *m, struct ynode *to, const struct ynode *from, const char *const *pairs)
{
	for (; pairs[0]; pairs += 2)
		mesh_copy_key(m, to, pairs[0], from, pairs[1]);
}

static void vreport(struct mesh *m, bool error, const struct mesh_res *r, const struct ynode *n, const char *fmt,
		    va_list ap)
{
	char msg[768];

	vsnprintf(msg, sizeof(msg), fmt, ap);
	if (!n && r)
		n = r->doc;
	if (error) {
		if (r)
			cfg_error(m->pc, n, "%s/%s: %s", r->kind, r->name, msg);
		else
			cfg_error(m->pc, n, "%s", msg);
		if (!m->rc)
			m->rc = -EINVAL;
	} else if (r) {
		cfg_warn(m->pc, n, "%s/%s: %s", r->kind, r->name, msg);
	} else {
		cfg_warn(m->pc, n, "%s", msg);
	}
}

void mesh_error(struct mesh *m, const struct mesh_res *r, const struct ynode *n, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vreport(m, true, r, n, fmt, ap);
	va_end(ap);
}

void mesh_warn(struct mesh *m, const struct mesh_res *r, const struct ynode *n, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vreport(m, false, r, n, fmt, ap);
	va_end(ap);
}

void mesh_unsupported(struct mesh *m, const struct mesh_res *r, const struct ynode *map, const char *const *known)
{
	if (!map || map->type != YN_MAP)
		return;
	for (unsigned i = 0; i < map->n; i++)
		if (!cfg_in_list(known, map->items[2 * i]->str))
			mesh_warn(m, r, map->items[2 * i], "field %s is not supported (ignored)", map->items[2 * i]->str);
}

const char *mesh_str(const struct ynode *map, const char *key)
{
	const struct ynode *v = yaml_get(map, key);

	return v && v->type == YN_SCALAR && !cfg_is_null(v) ? v->str : NULL;
}

bool mesh_labels_match(const struct ynode *sel, const struct ynode *labels)
{
	if (!sel || sel->type != YN_MAP)
		return true;
	for (unsigned i = 0; i < sel->n; i++) {
		const char *want = sel->items[2 * i + 1]->str, *have = mesh_str(labels, sel->items[2 * i]->str);

		if (!want || !have || strcmp(want, have))
			return false;
	}
	return true;
}

bool mesh_selects_workload(struct mesh *m, const struct mesh_res *r, const struct ynode *sel)
{
	if (strcmp(r->ns, m->ns) && strcmp(r->ns, m->root_ns))
		return false;
	if (!sel)
		return true;
	/* A selector in the root namespace picks workloads of every namespace. */
	return mesh_labels_match(yaml_get(sel, "matchLabels") ? yaml_get(sel, "matchLabels") : sel, m->wl_labels);
}

const char *mesh_fqdn(struct mesh *m, const char *host, const char *ns)
{
	if (strchr(host, '.') || !strcmp(host, "*"))
		return host;
	return arena_printf(m->a, "%s.%s.svc.%s", host, ns, m->domain);
}

struct ynode *mesh_map(struct mesh *m, const struct ynode *at)
{
	struct ynode *n = ytree_new(m->a, YN_MAP, at);

	if (!n)
		m->rc = -ENOMEM;
	return n;
}

struct ynode *mesh_seq(struct mesh *m, const struct ynode *at)
{
	struct ynode *n = ytree_new(m->a, YN_SEQ, at);

	if (!n)
		m->rc = -ENOMEM;
	return n;
}

void mesh_put(struct mesh *m, struct ynode *map, const char *key, struct ynode *v)
{
	if (ytree_put(m->a, map, key, v))
		m->rc = -ENOMEM;
}

void mesh_push(struct mesh *m, struct ynode *seq, struct ynode *v)
{
	if (ytree_push(m->a, seq, v))
		m->rc = -ENOMEM;
}

void mesh_put_str(struct mesh *m, struct ynode *map, const char *key, const struct ynode *at, const char *s)
{
	mesh_put(m, map, key, ytree_str(m->a, at, s));
}

void mesh_put_fmt(struct mesh *m, struct ynode *map, const char *key, const struct ynode *at, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	mesh_put(m, map, key, ytree_vfmt(m->a, at, fmt, ap));
	va_end(ap);
}

const char *mesh_source(struct mesh *m, const struct mesh_res *r)
{
	const char *s = arena_printf(m->a, "%s:%d %s/%s/%s", r->doc->file ? r->doc->file : "?", r->doc->line,
				     r->kind, r->ns, r->name);

	if (!s)
		m->rc = -ENOMEM;
	return s;
}

/* ---- the section */

static int parse_section(struct mesh *m, const struct ynode *n)
{
	static const char *const keys[] = {
		"resources", "namespace", "workload", "trust_domain", "cluster_domain", "root_namespace", "tls",
		"intercept", "outbound", "inbound", "app_address", "extensionProviders", "accessLogFile",
		"accessLogFormat", "accessLogEncoding", NULL
	};
	static const char *const wkeys[] = { "labels", "ports", NULL };
	struct cfg_parse *pc = m->pc;
	const struct ynode *v, *w;
	int rc = 0;

	if (cfg_open_map(pc, n, "a map {resources, namespace, workload, ...}", keys, &rc))
		return -EINVAL;
	m->ns = "default";
	m->trust_domain = "cluster.local";
	m->domain = "cluster.local";
	m->root_ns = "istio-system";
	m->app_host = "127.0.0.1";
	m->intercept = true;
	if ((v = yaml_get(n, "namespace")) && cfg_get_nonempty_str(pc, v, &m->ns, "mesh.namespace: empty"))
		rc = -EINVAL;
	if ((v = yaml_get(n, "trust_domain")) && cfg_get_nonempty_str(pc, v, &m->trust_domain, "empty trust domain"))
		rc = -EINVAL;
	if ((v = yaml_get(n, "cluster_domain")) && cfg_get_nonempty_str(pc, v, &m->domain, "empty cluster domain"))
		rc = -EINVAL;
	if ((v = yaml_get(n, "root_namespace")) && cfg_get_nonempty_str(pc, v, &m->root_ns, "empty namespace"))
		rc = -EINVAL;
	if ((v = yaml_get(n, "app_address")) && cfg_get_nonempty_str(pc, v, &m->app_host, "empty address"))
		rc = -EINVAL;
	if ((v = yaml_get(n, "intercept")) && cfg_get_bool(pc, v, &m->intercept))
		rc = -EINVAL;
	if ((w = yaml_get(n, "workload"))) {
		if (cfg_open_map(pc, w, "a map {labels, ports}", wkeys, &rc))
			return -EINVAL;
		if ((v = yaml_get(w, "labels")) && !cfg_expect_map(pc, v, "a map of labels"))
			m->wl_labels = v;
		else if (v)
			rc = -EINVAL;
	}
	if ((v = yaml_get(n, "tls"))) {
		if (cfg_expect_map(pc, v, "a map {cert, key, ca}"))
			rc = -EINVAL;
		else
			m->tls = v;
	}
	m->outbound = yaml_get(n, "outbound");
	if ((v = yaml_get(n, "inbound")) && cfg_expect_map(pc, v, "a map of workload port to listen address"))
		rc = -EINVAL;
	else
		m->inbound = v;
	if (!(v = cfg_need(pc, n, "resources", "mesh")) ||
	    cfg_expect_items(pc, v, "a list of files or folders", "mesh.resources: empty list"))
		rc = -EINVAL;
	return rc;
}

/* ---- reading the bundle */

static struct mesh_res *res_add(struct mesh *m)
{
	if (m->nres == m->cap) {
		struct mesh_res *v = util_grow(m->res, &m->cap, sizeof(*v), 64);

		if (!v) {
			m->rc = -ENOMEM;
			return NULL;
		}
		m->res = v;
	}
	memset(&m->res[m->nres], 0, sizeof(m->res[0]));
	return &m->res[m->nres++];
}

static void take_doc(struct mesh *m, const struct ynode *doc, unsigned depth)
{
	const struct ynode *meta, *items;
	const char *kind, *name, *ns;
	struct mesh_res *r;

	if (doc->type != YN_MAP) {
		mesh_error(m, NULL, doc, "expected a Kubernetes resource (a map with kind and metadata)");
		return;
	}
	if (!(kind = mesh_str(doc, "kind"))) {
		mesh_error(m, NULL, doc, "a resource without kind");
		return;
	}
	if (!strcmp(kind, "List") && depth == 0) {
		items = yaml_get(doc, "items");
		if (items && items->type != YN_SEQ) {
			mesh_error(m, NULL, items, "List: expected items to be a list");
			return;
		}
		for (unsigned i = 0; items && i < items->n; i++)
			take_doc(m, items->items[i], 1);
		return;
	}
	meta = yaml_get(doc, "metadata");
	name = mesh_str(meta, "name");
	if (!cfg_in_list(kinds, kind)) {
		mesh_warn(m, NULL, doc, "%s/%s: kind %s is not supported (skipped)", kind, name ? name : "?", kind);
		return;
	}
	if (!name) {
		mesh_error(m, NULL, meta ? meta : doc, "%s: missing metadata.name", kind);
		return;
	}
	ns = mesh_str(meta, "namespace");
	if (!(r = res_add(m)))
		return;
	r->kind = kind;
	r->name = name;
	r->ns = ns ? ns : m->ns;
	r->doc = doc;
	r->labels = yaml_get(meta, "labels");
	if (!(r->spec = yaml_get(doc, "spec")) && strcmp(kind, "EndpointSlice") && strcmp(kind, "Pod"))
		mesh_error(m, r, doc, "missing spec");
	else if (r->spec && r->spec->type != YN_MAP)
		mesh_error(m, r, r->spec, "expected spec to be a map");
}

/* Remembers path for the watcher (server.c), as it is before it is read. */
static void watch(struct mesh *m, const char *path)
{
	struct cfg_watch *w = arena_zalloc(m->a, sizeof(*w));

	if (!w || !(w->path = arena_strdup(m->a, path))) {
		m->rc = -ENOMEM;
		return;
	}
	file_sig_of(path, &w->sig);
	w->next = m->pc->cfg->watched;
	m->pc->cfg->watched = w;
}

static void load_file(struct mesh *m, const struct ynode *at, const char *path)
{
	struct ynode **docs;
	unsigned ndocs;
	char *buf = NULL;
	size_t len = 0;
	const char *file;
	int err;

	watch(m, path);
	if ((err = cfg_read_file(path, &buf, &len))) {
		cfg_error(m->pc, at, "mesh.resources: cannot read %s: %s", path, strerror(-err));
		m->rc = -EINVAL;
		return;
	}
	if (!(file = arena_strdup(m->a, path))) {
		m->rc = -ENOMEM;
	} else if ((err = yaml_load_docs(m->a, buf, len, file, m->pc->errs, &docs, &ndocs))) {
		m->rc = err;
	} else {
		for (unsigned i = 0; i < ndocs; i++)
			take_doc(m, docs[i], 0);
	}
	free(buf);
}

static bool is_resource_file(const char *name)
{
	size_t n = strlen(name);

	if (name[0] == '.')	/* hidden, and a ConfigMap volume's ..data and ..TIMESTAMP */
		return false;
	return (n > 5 && !strcmp(name + n - 5, ".yaml")) || (n > 4 && !strcmp(name + n - 4, ".yml")) ||
	       (n > 5 && !strcmp(name + n - 5, ".json"));
}

static int by_name(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* A folder's resource files in name order (not its subfolders, as kubectl -f). */
static void load_dir(struct mesh *m, const struct ynode *at, const char *path, DIR *d)
{
	char **names = NULL;
	unsigned n = 0, cap = 0;
	struct dirent *de;

	while ((de = readdir(d)) && n < MESH_MAX_FILES) {
		char **v;

		if (!is_resource_file(de->d_name))
			continue;
		if (n == cap) {
			if (!(v = util_grow(names, &cap, sizeof(*v), 16)))
				break;
			names = v;
		}
		if (!(names[n] = strdup(de->d_name)))
			break;
		n++;
	}
	if (n)
		qsort(names, n, sizeof(*names), by_name);
	for (unsigned i = 0; i < n; i++) {
		size_t plen = strlen(path);
		const char *p = arena_printf(m->a, "%.*s/%s", (int)(plen > 1 && path[plen - 1] == '/' ? plen - 1 : plen),
					     path, names[i]);
		struct stat st;

		if (p && stat(p, &st) == 0 && S_ISREG(st.st_mode))
			load_file(m, at, p);
		free(names[i]);
	}
	free(names);
}

static void load_resources(struct mesh *m)
{
	const struct ynode *list = yaml_get(m->sect, "resources");

	for (unsigned i = 0; i < list->n; i++) {
		const struct ynode *v = list->items[i];
		const char *path;
		struct stat st;
		DIR *d;

		if (cfg_get_nonempty_str(m->pc, v, &path, "mesh.resources: empty path")) {
			m->rc = -EINVAL;
			continue;
		}
		if (!(path = cfg_resolve_path(m->pc, path))) {
			m->rc = -ENOMEM;
			return;
		}
		if (stat(path, &st)) {
			cfg_error(m->pc, v, "mesh.resources: cannot read %s: %s", path, strerror(errno));
			m->rc = -EINVAL;
		} else if (S_ISDIR(st.st_mode) && (watch(m, path), d = opendir(path))) {
			load_dir(m, v, path, d);
			closedir(d);
		} else {
			load_file(m, v, path);
		}
	}
}

/* ---- merging with the native config */

static const char *item_name(const struct ynode *n)
{
	return n->type == YN_MAP ? mesh_str(n, "name") : NULL;
}

/* derived's items, less those a native item of the same name replaces,
 * then the native ones. */
static struct ynode *merge_list(struct mesh *m, const char *what, const struct ynode *native, struct ynode *derived)
{
	struct ynode *out;

	if (!native)
		return derived;
	if (native->type != YN_SEQ)
		return (struct ynode *)native;	/* its parser says what is wrong */
	out = mesh_seq(m, native);
	for (unsigned i = 0; out && i < derived->n; i++) {
		const char *name = item_name(derived->items[i]);
		bool replaced = false;

		for (unsigned j = 0; name && j < native->n && !replaced; j++) {
			const char *nn = item_name(native->items[j]);

			if (nn && !strcmp(nn, name)) {
				cfg_warn(m->pc, native->items[j], "the native %s \"%s\" replaces the one derived from %s",
					 what, name, mesh_str(derived->items[i], "source") ? mesh_str(derived->items[i], "source")
								 : "the mesh section");
				replaced = true;
			}
		}
		if (!replaced)
			mesh_push(m, out, derived->items[i]);
	}
	for (unsigned j = 0; out && j < native->n; j++)
		mesh_push(m, out, native->items[j]);
	return out;
}

/* node: as written, with mesh.workload.labels for its labels when it says
 * none: the pod labels Istio's node metadata carries (app, version, the
 * canonical names), for the Istio metrics and the metadata exchange. */
static void node_labels(struct mesh *m, const struct ynode *root, struct ynode *top)
{
	const struct ynode *native = yaml_get(root, "node");
	struct ynode *node;

	if (!m->wl_labels || (native && (native->type != YN_MAP || yaml_get(native, "labels"))))
		return;
	node = mesh_map(m, native ? native : m->sect);
	for (unsigned i = 0; node && native && i < native->n; i++)
		mesh_put(m, node, native->items[2 * i]->str, native->items[2 * i + 1]);
	mesh_put(m, node, "labels", (struct ynode *)m->wl_labels);
	mesh_put(m, top, "node", node);
}

int cfg_mesh_derive(struct cfg_parse *pc, const struct ynode *root, const struct ynode **out)
{
	struct mesh m = { .pc = pc, .a = pc->arena };
	struct ynode *top;

	*out = root;
	if (!(m.sect = yaml_get(root, "mesh")))
		return 0;
	if (parse_section(&m, m.sect))
		return -EINVAL;
	m.listeners = mesh_seq(&m, m.sect);
	m.clusters = mesh_seq(&m, m.sect);
	if (!m.rc)
		load_resources(&m);
	if (!m.rc)
		index_bundle(&m);
	if (!m.rc) {
		/* Both sides even after an error: -t lists every problem of the bundle. */
		mesh_policies(&m);
		mesh_outbound(&m);
		if (m.rc != -ENOMEM)
			mesh_inbound(&m);
	}
	if (!m.rc) {
		top = mesh_map(&m, root);
		for (unsigned i = 0; top && i < root->n; i++)
			mesh_put(&m, top, root->items[2 * i]->str, root->items[2 * i + 1]);
		mesh_put(&m, top, "listeners", merge_list(&m, "listener", yaml_get(root, "listeners"), m.listeners));
		mesh_policy_top(&m, root, top);
		node_labels(&m, root, top);
		mesh_put(&m, top, "clusters", merge_list(&m, "cluster", yaml_get(root, "clusters"), m.clusters));
		*out = top;
	}
	free(m.res);
	return m.rc;
}
