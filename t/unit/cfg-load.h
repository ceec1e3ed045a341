/* What the config unit tests share: loading a YAML text as "t.yaml", and
 * FAILS(text, what, messages...), which expects the load to be refused with
 * exactly those FILE:LINE:COL messages. Include after tap.h and config/cfg.h. */
#ifndef WM_T_CFG_LOAD_H
#define WM_T_CFG_LOAD_H

#include <stdio.h>
#include <string.h>

static inline struct cfg *load(const char *text, struct cfg_errs *e)
{
	cfg_errs_init(e, "t.yaml");
	return cfg_load_text(text, strlen(text), "t.yaml", e);
}

/* Expects text to fail with exactly the messages in want (NULL-terminated). */
static inline void fails(const char *text, const char *const *want, const char *what)
{
	struct cfg_errs e;
	struct cfg *c = load(text, &e);
	unsigned n = 0;

	while (want[n])
		n++;
	ok(c == NULL, "%s: refused", what);
	if (c)
		cfg_unref(c);
	if (!ok(e.n == n, "%s: %u error(s)", what, n))
		for (unsigned i = 0; i < e.n; i++)
			printf("#   %s\n", e.msgs[i]);
	for (unsigned i = 0; i < n && i < e.n; i++)
		is_str(e.msgs[i], want[i], "%s: message %u", what, i + 1);
	cfg_errs_free(&e);
}

#define FAILS(text, what, ...) fails(text, (const char *const[]){ __VA_ARGS__, NULL }, what)

#endif
