/* wingman's command line: parse, validate (-t), then hand over to the main
 * thread's loop in server.c. */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "config.h"
#include "core/arena.h"
#include "config/cfg.h"
#include "config/ytree.h"
#include "mesh/intercept.h"
#include "observe-cmd.h"
#include "core/log.h"
#include "server.h"

static void usage(FILE *f)
{
	fprintf(f, "usage: wingman [-c FILE] [-t|--check-config] [-l LEVEL] [--version]\n"
		   "       wingman config show [-c FILE]   print the config as parsed, mesh-derived objects included\n"
		   "       wingman intercept install|remove|status [OPTIONS]   (eBPF interception, --help)\n"
		   "       wingman observe [--follow] [--status 5xx] [--flags UF] ...   requests as they finish (--help)\n"
		   "  -c, --config FILE     config file (default: the embedded conf/wingman.yaml)\n"
		   "  -t, --check-config    validate the config and exit 0 (ok) or 1 (errors)\n"
		   "  -l, --log-level LEVEL error|warn|info|debug (default info)\n"
		   "      --version         print the version and exit\n");
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "check-config", no_argument, NULL, 't' },
		{ "log-level", required_argument, NULL, 'l' },
		{ "version", no_argument, NULL, 'V' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *conf_path = NULL;
	struct cfg_errs errs;
	bool check = false, show = false;
	struct cfg *c;
	int opt;

	/* A subcommand, not a proxy run: the init container's job (intercept.c). */
	if (argc > 1 && !strcmp(argv[1], "intercept"))
		return intercept_main(argc - 1, argv + 1);
	/* A client of a running wingman's admin (observe-cmd.c). */
	if (argc > 1 && !strcmp(argv[1], "observe"))
		return observe_main(argc - 1, argv + 1);
	/* `wingman config show -c FILE`: -t that prints what it validated. */
	if (argc > 2 && !strcmp(argv[1], "config") && !strcmp(argv[2], "show")) {
		show = check = true;
		argv[2] = argv[0];
		argc -= 2;
		argv += 2;
	}
	while ((opt = getopt_long(argc, argv, "c:tl:h", opts, NULL)) != -1) {
		switch (opt) {
		case 'c':
			conf_path = optarg;
			break;
		case 't':
			check = true;
			break;
		case 'l':
			if (log_level_parse(optarg, &log_level)) {
				fprintf(stderr, "wingman: unknown log level \"%s\"\n", optarg);
				return 2;
			}
			break;
		case 'V':
			printf("wingman %s\n", WINGMAN_VERSION);
			return 0;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind < argc) {
		usage(stderr);
		return 2;
	}

	cfg_errs_init(&errs, conf_path ? conf_path : "<default>");
	c = server_load(conf_path, &errs);
	if (!c) {
		for (unsigned i = 0; i < errs.n; i++)
			fprintf(stderr, "%s\n", errs.msgs[i]);
		if (check)
			fprintf(stderr, "wingman: configuration %s test failed (%u error%s)\n",
				conf_path ? conf_path : "<default>", errs.n, errs.n == 1 ? "" : "s");
		cfg_errs_free(&errs);
		return 1;
	}
	cfg_errs_free(&errs);
	if (show) {
		printf("# wingman config show: %s as parsed%s\n", conf_path ? conf_path : "<default>",
		       c->tree && yaml_get(c->tree, "mesh") ? ", with what mesh: derives from its resources" : "");
		ytree_write(stdout, c->tree);
		arena_free(c->arena);
		return 0;
	}
	if (check) {
		printf("wingman: configuration %s test is successful\n", conf_path ? conf_path : "<default>");
		arena_free(c->arena);
		return 0;
	}
	return server_run(conf_path, c);
}
