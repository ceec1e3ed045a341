/* The unit tests link proxy/libwingman.a without main.c. Filters that answer
 * locally pull in stream.c, and tls.c the worker barrier, which reach for the
 * main thread's server_* functions; these stand-ins satisfy the linker. The
 * pure code under test never calls them. */
#include <errno.h>
#include <stddef.h>

#include "cfg.h"
#include "server.h"

struct cfg *server_cfg_get(void)
{
	return NULL;
}

void server_cfg_release(struct cfg *c)
{
	cfg_unref(c);
}

int server_post(void (*fn)(void *arg), void *arg)
{
	return -ENOSYS;
}
