/* bandwidth_limit: a listener's or a cluster's bytes per second each way.
 *
 *   bandwidth_limit: { download: 1MiB, upload: 512KiB, fill_interval: 50ms, stat_prefix: web }
 *   bandwidth_limit: { limit_kbps: 1024, enable_mode: REQUEST_AND_RESPONSE }   # Envoy's form
 *
 * Each way it configures becomes one token bucket (core/sock.h's struct
 * sock_limit) that the sockets of all the listener's (cluster's) connections
 * draw from, whatever worker they are on. The snapshot holds a reference to
 * each bucket, dropped when it is freed; a socket holds its own. */
#include <errno.h>

#include "core/arena.h"
#include "core/sock.h"
#include "config/cfg.h"
#include "config/cfg-parse.h"
#include "config/ytree.h"

/* Envoy's EnableMode, a bit mask: REQUEST 1, RESPONSE 2. */
static const char *const enable_modes[] = { "DISABLED", "REQUEST", "RESPONSE", "REQUEST_AND_RESPONSE" };

static int get_rate(struct cfg_parse *pc, const struct ynode *v, uint64_t *out)
{
	if (v->type != YN_SCALAR || util_parse_size(v->str, out) || !*out || *out > (1ull << 40)) {
		cfg_error(pc, v, "expected a rate in bytes per second: a number or KiB/MiB/GiB (1MiB), 1 to 1TiB");
		return -EINVAL;
	}
	return 0;
}

static void limit_unref(void *arg)
{
	sock_limit_unref(arg);
}

/* The bucket of one way, owned by the snapshot. */
static int make_limit(struct cfg_parse *pc, uint64_t rate, uint64_t fill_ms, bool response, struct sock_limit **out)
{
	if (!rate)
		return 0;
	/* Twice fill_interval's worth: a paused socket wakes once half of
	 * fill_interval has accrued, and a timer late by up to 1.5 times
	 * fill_interval loses no tokens. */
	if (!(*out = sock_limit_new(rate, 2 * fill_ms, response)))
		return -ENOMEM;
	if (arena_cleanup_add(pc->arena, limit_unref, *out)) {
		sock_limit_unref(*out);
		*out = NULL;
		return -ENOMEM;
	}
	return 0;
}

int cfg_parse_bandwidth(struct cfg_parse *pc, const struct ynode *n, const char *owner_name,
			struct cfg_bandwidth **out)
{
	static const char *const keys[] = {
		"download", "upload", "limit_kbps", "enable_mode", "fill_interval", "stat_prefix", NULL
	};
	const struct ynode *v, *kbps = yaml_get(n, "limit_kbps"), *mode = yaml_get(n, "enable_mode");
	struct cfg_bandwidth *b;
	uint64_t u;
	unsigned m = 0;
	int rc = 0;

	if (cfg_open_map(pc, n, "bandwidth_limit (a map: download, upload, fill_interval, stat_prefix)", keys, &rc))
		return -EINVAL;
	if (!(b = arena_zalloc(pc->arena, sizeof(*b))))
		return -ENOMEM;
	b->stat_prefix = owner_name ? owner_name : "";
	if ((v = yaml_get(n, "stat_prefix")) &&
	    cfg_get_nonempty_str(pc, v, &b->stat_prefix, "stat_prefix must not be empty"))
		rc = -EINVAL;
	/* Envoy's fill_interval bounds; the bucket holds this long's worth. */
	b->fill_interval_ms = 50;
	if ((v = yaml_get(n, "fill_interval"))) {
		if (cfg_get_duration(pc, v, &b->fill_interval_ms)) {
			rc = -EINVAL;
		} else if (b->fill_interval_ms < 20 || b->fill_interval_ms > 1000) {
			cfg_error(pc, v, "fill_interval must be from 20ms to 1s");
			rc = -EINVAL;
		}
	}
	if ((v = yaml_get(n, "download")) && get_rate(pc, v, &b->download))
		rc = -EINVAL;
	if ((v = yaml_get(n, "upload")) && get_rate(pc, v, &b->upload))
		rc = -EINVAL;
	if (kbps || mode) {
		if (yaml_get(n, "download") || yaml_get(n, "upload")) {
			cfg_error(pc, kbps ? kbps : mode, "bandwidth_limit takes download/upload or Envoy's "
				  "limit_kbps with enable_mode, not both");
			return -EINVAL;
		}
		if (!kbps || !mode) {
			cfg_error(pc, n, "bandwidth_limit: limit_kbps and enable_mode go together (Envoy's default "
				  "mode, DISABLED, limits nothing)");
			return -EINVAL;
		}
		if (cfg_get_uint(pc, kbps, 1, 1ull << 30, &u) ||
		    cfg_get_keyword(pc, mode, enable_modes, 4,
				    "expected DISABLED, REQUEST, RESPONSE or REQUEST_AND_RESPONSE", &m))
			return -EINVAL;
		/* Envoy's kilobytes are KiB. */
		b->upload = (m & 1) ? u * 1024 : 0;
		b->download = (m & 2) ? u * 1024 : 0;
	} else if (!yaml_get(n, "download") && !yaml_get(n, "upload")) {
		cfg_error(pc, n, "bandwidth_limit needs download, upload (bytes per second) or limit_kbps");
		return -EINVAL;
	}
	if (rc)
		return rc;
	if (make_limit(pc, b->upload, b->fill_interval_ms, false, &b->up) ||
	    make_limit(pc, b->download, b->fill_interval_ms, true, &b->down))
		return -ENOMEM;
	*out = b;
	return 0;
}
