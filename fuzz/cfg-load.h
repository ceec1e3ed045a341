/* What the config harnesses share (fuzz-config.c, fuzz-mesh.c): text loaded
 * as a config the way `wingman -t` and every reload load it and, when it
 * loads, written back out as /config_dump and `wingman config show` do. */
#ifndef WM_FUZZ_CFG_LOAD_H
#define WM_FUZZ_CFG_LOAD_H

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>

#include <event2/buffer.h>

#include "config/cfg.h"
#include "config/ytree.h"

static inline void fuzz_cfg_load(const char *text, size_t len)
{
	static FILE *devnull;
	struct cfg_errs errs;
	struct cfg *c;

	if (!devnull && !(devnull = fopen("/dev/null", "w")))
		abort();
	cfg_errs_init(&errs, "fuzz.yaml");
	c = cfg_load_text(text, len, "fuzz.yaml", &errs);
	if (c) {
		struct evbuffer *out = evbuffer_new();

		ytree_write(devnull, c->tree);
		if (out) {
			const char *err;

			cfg_dump_json(c, NULL, out, &err);
			evbuffer_free(out);
		}
		cfg_unref(c);
	}
	cfg_errs_free(&errs);
}

#endif
