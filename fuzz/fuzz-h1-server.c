/* The HTTP/1.1 server codec fed byte streams: requests, pipelines, chunked
 * and content-length bodies, Expect: 100-continue, h2c upgrades, garbage, each
 * input one client connection on a socketpair (harness.h). */
#include <stddef.h>
#include <stdint.h>

#include "fuzz/harness.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *listener;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	harness_init();
	listener = harness_listener("h1");
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	harness_conn(listener, NULL, 0, data, size);
	return 0;
}
