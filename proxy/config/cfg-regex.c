/* Regex-valued config keys: RE2 compiled once at load, owned by the
 * config's arena (cfg.h). */
#include <errno.h>

#include "config/cfg-parse.h"
#include "core/arena.h"
#include "core/regex.h"

static void regex_free_cb(void *re)
{
	regex_free(re);
}

int cfg_get_regex(struct cfg_parse *pc, const struct ynode *n, const struct regex **out)
{
	struct regex *re;
	const char *src;
	char why[200];

	if (cfg_get_str(pc, n, &src))
		return -EINVAL;
	if (!(re = regex_new(src, why, sizeof(why)))) {
		cfg_error(pc, n, "invalid regex \"%s\": %s", src, why);
		return -EINVAL;
	}
	if (arena_cleanup_add(pc->arena, regex_free_cb, re)) {
		regex_free(re);
		return -ENOMEM;
	}
	*out = re;
	return 0;
}
