/* Config snapshots: YAML → validated, immutable struct cfg on one arena.
 *
 * This file holds the top level, the load entry points and the hand-off of
 * filters' sections; each section has its own file (cfg-listeners.c,
 * cfg-routes.c, cfg-clusters.c), sharing cfg-errs.c's getters through
 * cfg-parse.h, and cfg-dump.c writes a snapshot back out as JSON.
 *
 * Validation never stops at the first problem: every section parser reports
 * what it finds through cfg_error() and carries on with the next sibling, so
 * `-t` and a failed reload show every mistake at once, sorted by position.
 * Clusters and top-level filters are parsed before listeners so routes can
 * resolve cluster names and route-level filter parsers can see top-level
 * configs. */
#include <errno.h>
#include <stddef.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/arena.h"
#include "config/cfg.h"
#include "config/cfg-parse.h"
#include "config/ytree.h"

#define CFG_MAX_WORKERS		256
#define CFG_MAX_FILE		(16u << 20)
#define CFG_SOCKET_PATH_MAX	108	/* sizeof(sockaddr_un.sun_path) on Linux */

const struct cfg_hooks *cfg_hooks;

void cfg_hooks_set(const struct cfg_hooks *h)
{
	cfg_hooks = h;
}

static const struct cfg_filter *find_filter(const char *name)
{
	for (unsigned i = 0; i < cfg_hooks->nfilters; i++)
		if (strcmp(cfg_hooks->filters[i].name, name) == 0)
			return &cfg_hooks->filters[i];
	return NULL;
}

const struct cfg_filter *cfg_filter_of(const struct filter_conf *fc)
{
	for (unsigned i = 0; i < cfg_hooks->nfilters; i++)
		if (cfg_hooks->filters[i].ops == fc->ops)
			return &cfg_hooks->filters[i];
	return NULL;
}

/* "key: value" allowed-key lists with the filters of one scope appended. */
static const char **keys_with_filters(struct cfg_parse *pc, const char *const *base, unsigned scope)
{
	unsigned nb = 0, i = 0;
	const char **v;

	while (base[nb])
		nb++;
	if (!(v = cfg_zalloc_n(pc, nb + cfg_hooks->nfilters + 1, sizeof(*v))))
		return NULL;
	for (; i < nb; i++)
		v[i] = base[i];
	for (unsigned f = 0; f < cfg_hooks->nfilters; f++)
		if (cfg_hooks->filters[f].scope & scope)
			v[i++] = cfg_hooks->filters[f].name;
	v[i] = NULL;
	return v;
}

int cfg_parse_filters(struct cfg_parse *pc, const struct ynode *map, const char *const *base, unsigned scope,
		      struct filter_conf **out, unsigned *nout)
{
	unsigned n = 0;
	int rc = 0;

	*out = cfg_zalloc_n(pc, map->n, sizeof(**out));
	if (!*out)
		return -ENOMEM;
	for (unsigned i = 0; i < map->n; i++) {
		const struct ynode *k = map->items[2 * i], *v = map->items[2 * i + 1];
		const struct cfg_filter *f;
		unsigned before = pc->errs->n;
		void *conf;

		if (cfg_in_list(base, k->str) || !(f = find_filter(k->str)) || !(f->scope & scope))
			continue;
		conf = f->conf_parse ? f->conf_parse(pc, v, scope) : (void *)f->ops;
		if (!conf) {
			if (pc->errs->n == before)
				cfg_error(pc, v, "%s: invalid configuration", f->name);
			rc = -EINVAL;
			continue;
		}
		(*out)[n].ops = f->ops;
		(*out)[n].conf = conf;
		(*out)[n].name = f->name;
		n++;
	}
	*nout = n;
	return rc;
}

/* Explains keys that name a filter which is not allowed in this scope; the
 * generic unknown-key message would list allowed keys without saying why. */
static void misplaced_filters(struct cfg_parse *pc, const struct ynode *map, const char *const *allowed,
			      const char *where)
{
	for (unsigned i = 0; i < map->n; i++) {
		const struct ynode *k = map->items[2 * i];

		if (!cfg_in_list(allowed, k->str) && find_filter(k->str))
			cfg_error(pc, k, "filter \"%s\" cannot be configured %s", k->str, where);
	}
}

int cfg_check_keys_scoped(struct cfg_parse *pc, const struct ynode *map, const char *const *base,
			  unsigned scope, const char *where)
{
	const char **allowed = keys_with_filters(pc, base, scope);
	struct ynode filtered;
	struct ynode **items;
	unsigned n = 0;
	int rc;

	if (!allowed)
		return -ENOMEM;
	if (map->type != YN_MAP)
		return cfg_expect_map(pc, map, "a map");
	misplaced_filters(pc, map, allowed, where);
	/* Check the remaining keys only, so a misplaced filter is reported once. */
	if (!(items = cfg_zalloc_n(pc, 2 * map->n, sizeof(*items))))
		return -ENOMEM;
	for (unsigned i = 0; i < map->n; i++) {
		const struct ynode *k = map->items[2 * i];

		if (cfg_in_list(allowed, k->str) || !find_filter(k->str)) {
			items[2 * n] = map->items[2 * i];
			items[2 * n + 1] = map->items[2 * i + 1];
			n++;
		}
	}
	filtered = *map;
	filtered.items = items;
	filtered.n = n;
	rc = cfg_check_keys(pc, &filtered, allowed);
	return rc || n != map->n ? -EINVAL : 0;
}

struct filter_conf *cfg_build_chain(struct cfg_parse *pc, const struct filter_conf *own, unsigned nown,
				    unsigned need, unsigned *nchain)
{
	const struct cfg *cfg = pc->cfg;
	struct filter_conf *chain;
	unsigned n = 0;

	if (!(chain = cfg_zalloc_n(pc, cfg->nfilters + pc->nlistener_filters + pc->nvhost_filters + nown,
				   sizeof(*chain))))
		return NULL;
	for (unsigned f = 0; f < cfg_hooks->nfilters; f++) {
		const struct filter_ops *ops = cfg_hooks->filters[f].ops;
		const struct filter_conf *pick = NULL;

		if ((cfg_hooks->filters[f].flags & need) != need)
			continue;
		for (unsigned i = 0; i < cfg->nfilters; i++)
			if (cfg->filters[i].ops == ops)
				pick = &cfg->filters[i];
		for (unsigned i = 0; i < pc->nlistener_filters; i++)
			if (pc->listener_filters[i].ops == ops)
				pick = &pc->listener_filters[i];
		for (unsigned i = 0; i < pc->nvhost_filters; i++)
			if (pc->vhost_filters[i].ops == ops)
				pick = &pc->vhost_filters[i];
		for (unsigned i = 0; i < nown; i++)
			if (own[i].ops == ops)
				pick = &own[i];
		if (pick)
			chain[n++] = *pick;
	}
	*nchain = n;
	return chain;
}

const struct cfg_stats_group *cfg_stats_group(struct cfg_parse *pc, const struct stats_set *set, const char *name)
{
	struct cfg_stats_group *g = arena_zalloc(pc->arena, sizeof(*g));

	if (!g)
		return NULL;
	g->set = set;
	g->name = name;
	g->next = pc->cfg->stat_groups;
	pc->cfg->stat_groups = g;
	return g;
}

static int parse_node(struct cfg_parse *pc, const struct ynode *n)
{
	static const char *const keys[] = {
		"id", "cluster", "workload", "namespace", "version", "service", "mesh_id", "cluster_id", "labels", NULL
	};
	static const size_t fields[] = {	/* by keys[], the strings */
		offsetof(struct cfg, node_id), offsetof(struct cfg, node_cluster),
		offsetof(struct cfg, node_workload), offsetof(struct cfg, node_namespace),
		offsetof(struct cfg, node_version), offsetof(struct cfg, node_service),
		offsetof(struct cfg, node_mesh_id), offsetof(struct cfg, node_cluster_id),
	};
	const struct ynode *v;
	const char *s;
	int rc = 0;

	if (cfg_open_map(pc, n, "a map {id, cluster, workload, namespace, version, service, mesh_id, cluster_id, labels}",
			 keys, &rc))
		return -EINVAL;
	for (size_t i = 0; i < ARRAY_SIZE(fields); i++)
		if ((v = yaml_get(n, keys[i])) &&
		    cfg_get_str(pc, v, (const char **)((char *)pc->cfg + fields[i])))
			rc = -EINVAL;
	if ((v = yaml_get(n, "labels"))) {
		if (cfg_expect_map(pc, v, "a map of label: value"))
			return -EINVAL;
		for (unsigned i = 0; i < v->n; i++)
			if (cfg_get_str(pc, v->items[2 * i + 1], &s))
				rc = -EINVAL;
		pc->cfg->node_labels = v;
	}
	return rc;
}

/* The most requests the admin keeps for /tap without follow. */
#define CFG_TAP_RECENT_MAX 10000

static int parse_admin(struct cfg_parse *pc, const struct ynode *n)
{
	static const char *const keys[] = { "address", "tap_recent", NULL };
	const struct ynode *v;
	int rc = 0;

	if (cfg_open_map(pc, n, "a map {address, tap_recent}", keys, &rc))
		return -EINVAL;
	if (!(v = cfg_need(pc, n, "address", "admin")) ||
	    cfg_parse_addr(pc, v, true, &pc->cfg->admin_address, &pc->cfg->admin_addr))
		rc = -EINVAL;
	if ((v = yaml_get(n, "tap_recent")) &&
	    cfg_get_u32(pc, v, 0, CFG_TAP_RECENT_MAX, &pc->cfg->admin_tap_recent))
		rc = -EINVAL;
	return rc;
}

/* hot_restart: { socket: PATH }: the UNIX socket a new wingman takes this
 * one's sockets over (server.c, handoff.c). */
static int parse_hot_restart(struct cfg_parse *pc, const struct ynode *n)
{
	static const char *const keys[] = { "socket", NULL };
	const struct ynode *v;
	const char *path;
	int rc = 0;

	if (cfg_open_map(pc, n, "a map {socket}", keys, &rc))
		return -EINVAL;
	if (!(v = cfg_need(pc, n, "socket", "hot_restart")) ||
	    cfg_get_nonempty_str(pc, v, &path, "hot_restart socket must not be empty"))
		return -EINVAL;
	if (!(path = cfg_resolve_path(pc, path)))
		return -ENOMEM;
	if (strlen(path) >= CFG_SOCKET_PATH_MAX) {
		cfg_error(pc, v, "hot_restart socket path is %zu bytes long: a UNIX socket path has at most %d",
			  strlen(path), CFG_SOCKET_PATH_MAX - 1);
		return -EINVAL;
	}
	pc->cfg->hot_restart_socket = path;
	return rc;
}

static int parse_access_log(struct cfg_parse *pc, const struct ynode *n)
{
	static const char *const keys[] = { "path", "format", "json_format", "omit_empty_values", NULL };
	struct cfg *cfg = pc->cfg;
	const struct ynode *v, *fmt_node = NULL, *json = NULL;
	int rc = 0;

	if (n && cfg_is_null(n))
		n = NULL;
	if (n) {
		if (cfg_open_map(pc, n, "a map {path, format | json_format, omit_empty_values}", keys, &rc))
			return -EINVAL;
		if ((v = yaml_get(n, "path")) &&
		    cfg_get_nonempty_str(pc, v, &cfg->access_log_path, "access log path must not be empty (use off to disable)"))
			rc = -EINVAL;
		if ((fmt_node = yaml_get(n, "format")) && cfg_get_str(pc, fmt_node, &cfg->access_log_format)) {
			fmt_node = NULL;
			rc = -EINVAL;
		}
		if ((v = yaml_get(n, "omit_empty_values")) && cfg_get_bool(pc, v, &cfg->access_log_omit_empty))
			rc = -EINVAL;
		if ((json = yaml_get(n, "json_format")) && fmt_node) {
			cfg_error(pc, json, "access_log: give format or json_format, not both");
			json = fmt_node = NULL;
			rc = -EINVAL;
		}
	}
	if (cfg->access_log_path && !strcmp(cfg->access_log_path, "off"))
		cfg->access_log_path = NULL;
	/* A given format is checked even when logging is off, so turning it on later
	 * cannot surprise. */
	if (cfg->access_log_path || fmt_node || json) {
		bool omit = cfg->access_log_omit_empty;
		const struct ynode *at = fmt_node ? fmt_node : n;
		const char *err = NULL;
		size_t pos = 0;
		struct al_format *f;

		if (json) {
			cfg->access_log_json = json;
			cfg->access_log_format = NULL;
			f = cfg_hooks->access_log_parse_json(pc->arena, json, omit, &err, &pos, &at);
		} else {
			f = cfg_hooks->access_log_parse(pc->arena, cfg->access_log_format, omit, &err, &pos);
		}
		if (!f) {
			if (at && at->type == YN_SCALAR)
				cfg_error(pc, at, "invalid access log format at offset %zu: %s", pos,
					  err ? err : "parse error");
			else
				cfg_error(pc, at, "invalid access log format: %s", err ? err : "parse error");
			rc = -EINVAL;
		} else if (cfg->access_log_path) {
			cfg->access_log = f;
		}
	}
	return rc;
}

static unsigned default_workers(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);

	if (n < 1)
		return 1;
	return n > CFG_MAX_WORKERS ? CFG_MAX_WORKERS : (unsigned)n;
}

static const char *default_node_id(struct arena *a)
{
	char host[256];

	if (gethostname(host, sizeof(host)) || !host[0])
		return "wingman";
	host[sizeof(host) - 1] = '\0';
	return arena_strdup(a, host);
}

static int parse_top(struct cfg_parse *pc, const struct ynode *root)
{
	static const char *const keys[] = {
		"node", "workers", "drain_timeout", "admin", "access_log", "listeners", "clusters", "mesh",
		"hot_restart", NULL
	};
	struct cfg *cfg = pc->cfg;
	const struct ynode *v;
	int rc = 0, rc2;

	if (cfg_expect_map(pc, root, "a map at the top of the config"))
		return -EINVAL;
	if ((rc = cfg_mesh_derive(pc, root, &root)))
		return rc;
	cfg->tree = root;
	if (cfg_check_keys_scoped(pc, root, keys, CFG_SCOPE_TOP, "at the top level"))
		rc = -EINVAL;
	if ((v = yaml_get(root, "node")) && parse_node(pc, v))
		rc = -EINVAL;
	if ((v = yaml_get(root, "workers")) && cfg_get_u32(pc, v, 1, CFG_MAX_WORKERS, &cfg->workers))
		rc = -EINVAL;
	if ((v = yaml_get(root, "drain_timeout")) && cfg_get_duration(pc, v, &cfg->drain_timeout_ms))
		rc = -EINVAL;
	if ((v = yaml_get(root, "admin")) && !cfg_is_null(v) && parse_admin(pc, v))
		rc = -EINVAL;
	if ((v = yaml_get(root, "hot_restart")) && !cfg_is_null(v) && (rc2 = parse_hot_restart(pc, v)))
		rc = rc2;
	if (parse_access_log(pc, yaml_get(root, "access_log")))
		rc = -EINVAL;
	if ((v = yaml_get(root, "clusters")) && cfg_parse_clusters(pc, v))
		rc = -EINVAL;
	if (cfg_parse_filters(pc, root, keys, CFG_SCOPE_TOP, &cfg->filters, &cfg->nfilters))
		rc = -EINVAL;
	if (!(cfg->unrouted = cfg_build_chain(pc, NULL, 0, CFG_FILTER_FL_UNROUTED, &cfg->nunrouted)))
		rc = -ENOMEM;
	if ((v = yaml_get(root, "listeners")) && cfg_parse_listeners(pc, v))
		rc = -EINVAL;
	return rc;
}

struct cfg *cfg_load_text(const char *text, size_t len, const char *name, struct cfg_errs *errs)
{
	struct cfg_parse pc = { .errs = errs };
	unsigned first_err = errs->n;
	struct ynode *root;
	struct cfg *cfg;
	int rc;

	if (!name)
		name = "<default>";
	if (!errs->file)
		errs->file = name;
	if (!cfg_hooks) {
		cfg_errs_add(errs, 0, 0, "cannot load a config before cfg_hooks_set() (server_hooks_install())");
		return NULL;
	}
	if (!(pc.arena = arena_new(16384)) || !(cfg = arena_zalloc(pc.arena, sizeof(*cfg)))) {
		cfg_errs_add(errs, 0, 0, "out of memory");
		arena_free(pc.arena);
		return NULL;
	}
	pc.cfg = cfg;
	atomic_init(&cfg->refs, 1);
	cfg->arena = pc.arena;
	cfg->file = arena_strdup(pc.arena, name);
	cfg->generation = 1;
	cfg->loaded_us = util_wall_us();
	cfg->node_id = default_node_id(pc.arena);
	cfg->node_cluster = "wingman";
	cfg->workers = default_workers();
	cfg->drain_timeout_ms = 5000;
	cfg->access_log_path = "/dev/stdout";
	cfg->access_log_format = cfg_hooks->access_log_default_format;

	if (!cfg->file || !cfg->node_id)
		rc = -ENOMEM;
	else if (!(root = yaml_load(pc.arena, text, len, errs)))
		rc = -EINVAL;
	else
		rc = parse_top(&pc, root);
	if (rc == -ENOMEM)
		cfg_errs_add(errs, 0, 0, "out of memory");
	if (rc || errs->n != first_err) {
		if (errs->n == first_err)
			cfg_errs_add(errs, 0, 0, "invalid configuration");
		cfg_errs_sort(errs, first_err);
		arena_free(pc.arena);
		return NULL;
	}
	return cfg;
}

int cfg_read_file(const char *path, char **out, size_t *outlen)
{
	char *buf = NULL;
	size_t len = 0, cap = 0;
	int fd, err = 0;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return -errno;
	for (;;) {
		ssize_t n;

		if (len == cap) {
			char *nb;

			if (cap >= CFG_MAX_FILE) {
				err = EFBIG;
				break;
			}
			cap = cap ? cap * 2 : 8192;
			if (!(nb = realloc(buf, cap))) {
				err = ENOMEM;
				break;
			}
			buf = nb;
		}
		n = read(fd, buf + len, cap - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			err = errno;
			break;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	close(fd);
	if (err) {
		free(buf);
		return -err;
	}
	*out = buf;
	*outlen = len;
	return 0;
}

struct cfg *cfg_load_file(const char *path, struct cfg_errs *errs)
{
	struct cfg *cfg;
	char *buf = NULL;
	size_t len = 0;
	int err;

	if (!errs->file)
		errs->file = path;
	if ((err = cfg_read_file(path, &buf, &len))) {
		cfg_errs_add(errs, 0, 0, "cannot read: %s", strerror(-err));
		return NULL;
	}
	cfg = cfg_load_text(buf ? buf : "", len, path, errs);
	free(buf);
	return cfg;
}

void cfg_unref(struct cfg *c)
{
	if (c && atomic_fetch_sub_explicit(&c->refs, 1, memory_order_acq_rel) == 1)
		arena_free(c->arena);
}
