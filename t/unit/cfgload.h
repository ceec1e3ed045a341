/* What the unit tests of config sections share: loading YAML text as the
 * file "t.yaml", and checking that a text is refused with a given first
 * message (file:line:col included). Include after tap.h. */
#ifndef WM_T_CFGLOAD_H
#define WM_T_CFGLOAD_H

#include <string.h>

#include "config/cfg.h"

static inline struct cfg *load(const char *text, struct cfg_errs *e)
{
	cfg_errs_init(e, "t.yaml");
	return cfg_load_text(text, strlen(text), "t.yaml", e);
}

static inline void fails(const char *text, const char *want, const char *what)
{
	struct cfg_errs e;
	struct cfg *c = load(text, &e);

	ok(c == NULL, "%s: refused", what);
	if (c)
		cfg_unref(c);
	if (ok(e.n >= 1, "%s: an error", what))
		is_str(e.msgs[0], want, "%s: message", what);
	cfg_errs_free(&e);
}

#endif
