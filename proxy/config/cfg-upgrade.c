/* upgrade_configs (Envoy's HttpConnectionManager.UpgradeConfig and the
 * route's RouteAction.UpgradeConfig): which Upgrade tokens, and CONNECT, a
 * listener or route turns into a tunnel (http/tunnel.h). */
#include <errno.h>
#include <string.h>
#include <strings.h>

#include "core/arena.h"
#include "config/cfg.h"
#include "config/ytree.h"

int cfg_upgrades_parse(struct cfg_parse *pc, const struct ynode *n, bool route, struct cfg_upgrade **out,
		       unsigned *nout)
{
	static const char *const lkeys[] = { "upgrade_type", "enabled", NULL };
	static const char *const rkeys[] = { "upgrade_type", "enabled", "connect_config", NULL };
	struct cfg_upgrade *v;
	int rc = 0;

	if (cfg_expect_seq(pc, n, "a list of { upgrade_type, enabled }"))
		return -EINVAL;
	if (!(v = arena_zalloc(pc->arena, (n->n ? n->n : 1) * sizeof(*v))))
		return -ENOMEM;
	for (unsigned i = 0; i < n->n; i++) {
		const struct ynode *e = n->items[i], *t;

		v[i].type = "";	/* never NULL, even in a config being refused */
		if (cfg_expect_map(pc, e, "an upgrade config (a map)") ||
		    cfg_check_keys(pc, e, route ? rkeys : lkeys)) {
			rc = -EINVAL;
			continue;
		}
		v[i].enabled = true;
		if (!(t = yaml_get(e, "upgrade_type"))) {
			cfg_error(pc, e, "an upgrade config needs upgrade_type");
			rc = -EINVAL;
		} else if (cfg_get_nonempty_str(pc, t, &v[i].type, "upgrade_type must not be empty")) {
			rc = -EINVAL;
		}
		if ((t = yaml_get(e, "enabled")) && cfg_get_bool(pc, t, &v[i].enabled))
			rc = -EINVAL;
		/* CONNECT is always terminated here (a TCP connection to the
		 * endpoint); connect_config says so and takes no options yet. */
		if ((t = yaml_get(e, "connect_config"))) {
			if (strcasecmp(v[i].type, "CONNECT")) {
				cfg_error(pc, t, "connect_config goes with upgrade_type: CONNECT");
				rc = -EINVAL;
			} else if (cfg_expect_map(pc, t, "a connect_config map") || cfg_check_keys(pc, t, lkeys + 2)) {
				rc = -EINVAL;
			}
		}
	}
	*out = v;
	*nout = n->n;
	return rc;
}

int cfg_upgrades_default(struct cfg_parse *pc, struct cfg_upgrade **out, unsigned *nout)
{
	struct cfg_upgrade *v = arena_zalloc(pc->arena, sizeof(*v));

	if (!v)
		return -ENOMEM;
	v->type = "websocket";
	v->enabled = true;
	*out = v;
	*nout = 1;
	return 0;
}

static const struct cfg_upgrade *find(const struct cfg_upgrade *v, unsigned n, const char *token)
{
	for (unsigned i = 0; i < n; i++)
		if (!strcasecmp(v[i].type, token))
			return &v[i];
	return NULL;
}

bool cfg_upgrade_allowed(const struct cfg_listener *l, const struct cfg_route *rt, const char *token)
{
	const struct cfg_upgrade *u = rt ? find(rt->upgrades, rt->nupgrades, token) : NULL;

	if (!u && l)
		u = find(l->upgrades, l->nupgrades, token);
	return u && u->enabled;
}
