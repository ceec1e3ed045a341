/* The mesh: resource loader: a bundle of Istio and Kubernetes resources
 * (multi-document YAML, kind: List) read by a fixed sidecar config and
 * derived into listeners, routes, clusters and RBAC, then validated like any
 * config. The bundle lives in a memfd that the config names as
 * /proc/self/fd/N, so nothing touches the disk. The first byte picks the
 * sidecar: intercepted, bound to one outbound address, or bound per port.
 * A bundle that loads is written back out (fuzz/cfg-load.h). */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "core/log.h"
#include "fuzz/cfg-load.h"
#include "server.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define WORKLOAD \
	"  namespace: shop\n" \
	"  workload: { labels: { app: cart, version: v1 }, ports: [8080] }\n"

static const char *const sidecars[] = {
	WORKLOAD,
	WORKLOAD "  intercept: false\n  outbound: 127.0.0.1:15001\n"
		 "  inbound: { \"8080\": 127.0.0.1:15006, \"9080\": 127.0.0.1:15007, \"7000\": 127.0.0.1:15008 }\n",
	WORKLOAD "  intercept: false\n  outbound: { \"80\": 127.0.0.1:15001, \"9080\": 127.0.0.1:15002, "
		 "\"5432\": 127.0.0.1:15003 }\n  inbound: { \"8080\": 127.0.0.1:15006, \"7000\": 127.0.0.1:15008 }\n",
};

static int fd = -1;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	log_level = LOG_LVL_ERROR;
	server_hooks_install();
	if ((fd = memfd_create("bundle.yaml", MFD_CLOEXEC)) < 0)
		abort();
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char conf[1024];
	unsigned pick = 0;
	int len;

	if (size) {
		pick = data[0] % (sizeof(sidecars) / sizeof(sidecars[0]));
		data++;
		size--;
	}
	if (ftruncate(fd, 0) || pwrite(fd, data, size, 0) != (ssize_t)size)
		abort();
	len = snprintf(conf, sizeof(conf), "mesh:\n  resources: [/proc/self/fd/%d]\n%s", fd, sidecars[pick]);
	if (len < 0 || (size_t)len >= sizeof(conf))
		abort();
	fuzz_cfg_load(conf, (size_t)len);
	return 0;
}
