/* Config loading for the unit tests: a printf-formatted text loaded as
 * `wingman -t` loads a file, its errors printed as TAP comments or the first
 * one kept. */
#ifndef WM_T_CFG_TEXT_H
#define WM_T_CFG_TEXT_H

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/cfg.h"

/* The snapshot, or NULL; with err, its first error ("" if none) goes there
 * instead of being printed. */
static inline struct cfg *t_cfg_load(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static inline struct cfg *t_cfg_load(char *err, size_t errlen, const char *fmt, ...)
{
	struct cfg_errs errs;
	struct cfg *c;
	va_list ap;
	char *text;
	int n;

	va_start(ap, fmt);
	n = vasprintf(&text, fmt, ap);
	va_end(ap);
	if (n < 0)
		return NULL;
	cfg_errs_init(&errs, "t.yaml");
	c = cfg_load_text(text, strlen(text), "t.yaml", &errs);
	if (err)
		snprintf(err, errlen, "%s", errs.n ? errs.msgs[0] : "");
	else
		for (unsigned i = 0; i < errs.n; i++)
			printf("# %s\n", errs.msgs[i]);
	cfg_errs_free(&errs);
	free(text);
	return c;
}

#endif
