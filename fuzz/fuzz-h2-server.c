/* The HTTP/2 server codec fed frames: each input is what a prior-knowledge
 * h2c client sends after its connection preface, which the harness adds so
 * every input reaches frame parsing. One connection per input (harness.h). */
#include <stddef.h>
#include <stdint.h>

#include "fuzz/harness.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char preface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
static const char *listener;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	harness_init();
	listener = harness_listener("h2");
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	harness_conn(listener, preface, sizeof(preface) - 1, data, size);
	return 0;
}
