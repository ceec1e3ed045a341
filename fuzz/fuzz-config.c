/* The YAML config loader, the path `wingman -t` and every reload take: text
 * to ynode tree to validated snapshot, and a valid snapshot back out as the
 * /config_dump JSON. Deep nesting, aliases and large documents included. */
#include <stddef.h>
#include <stdint.h>

#include <event2/buffer.h>

#include "config/cfg.h"
#include "core/log.h"
#include "server.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	log_level = LOG_LVL_ERROR;
	server_hooks_install();
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct cfg_errs errs;
	struct cfg *c;

	cfg_errs_init(&errs, "fuzz.yaml");
	c = cfg_load_text((const char *)data, size, "fuzz.yaml", &errs);
	if (c) {
		struct evbuffer *out = evbuffer_new();

		if (out) {
			cfg_dump_json(c, out);
			evbuffer_free(out);
		}
		cfg_unref(c);
	}
	cfg_errs_free(&errs);
	return 0;
}
