/* The YAML config loader, the path `wingman -t` and every reload take: text
 * to ynode tree to validated snapshot, and a valid snapshot back out as the
 * /config_dump JSON. Deep nesting, aliases and large documents included. */
#include <stddef.h>
#include <stdint.h>

#include "core/log.h"
#include "fuzz/cfg-load.h"
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
	fuzz_cfg_load((const char *)data, size);
	return 0;
}
