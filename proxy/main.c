/* wingman's command line: parse, validate (-t), then hand over to the main
 * thread's loop in server.c. A mistake on the command line is one line
 * "wingman: …" naming the argument, and exit status 2; doc/wingman.8 lists
 * the exit statuses. */
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "config.h"
#include "core/arena.h"
#include "config/cfg.h"
#include "config/ytree.h"
#include "mesh/intercept.h"
#include "observe-cmd.h"
#include "core/log.h"
#include "core/util.h"
#include "server.h"

static void usage(FILE *f)
{
	fprintf(f, "usage: wingman [-c FILE] [-x SOCKET] [-t|--check-config] [-l LEVEL] [--version]\n"
		   "       wingman config show [-c FILE]   print the config as parsed, mesh-derived objects included\n"
		   "       wingman intercept install|remove|status [OPTIONS]   (eBPF interception, --help)\n"
		   "       wingman observe [--follow] [--status 5xx] [--flags UF] ...   requests as they finish (--help)\n"
		   "  -c, --config FILE     config file (default: the embedded conf/wingman.yaml)\n"
		   "  -x, --upgrade-from SOCKET\n"
		   "                        take the sockets over from the wingman whose hot_restart\n"
		   "                        socket is SOCKET; it drains and exits (binary upgrade)\n"
		   "  -t, --check-config    validate the config and exit 0 (ok) or 1 (errors)\n"
		   "  -l, --log-level LEVEL error|warn|info|debug (default info)\n"
		   "      --version         print the version and exit\n"
		   "Exit status: 0 ok, 1 configuration errors or a failed start, 2 a command-line error.\n"
		   "See wingman(8).\n");
}

/* After the line that said what was wrong; 2, a command-line error's status. */
static int try_help(void)
{
	fputs("Try 'wingman --help' or 'man wingman'.\n", stderr);
	return 2;
}

/* A command-line mistake: "wingman: " and what, naming the argument. */
static int __attribute__((format(printf, 1, 2))) usage_error(const char *fmt, ...)
{
	va_list ap;

	fputs("wingman: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return try_help();
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "check-config", no_argument, NULL, 't' },
		{ "upgrade-from", required_argument, NULL, 'x' },
		{ "log-level", required_argument, NULL, 'l' },
		{ "version", no_argument, NULL, 'V' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *conf_path = NULL, *take_from = NULL;
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
	if (argc > 1 && !strcmp(argv[1], "config")) {
		if (argc < 3 || argv[2][0] == '-')
			return usage_error("config: missing subcommand (expected: config show)");
		if (strcmp(argv[2], "show"))
			return usage_error("config: unknown subcommand '%s' (expected: config show)", argv[2]);
		show = check = true;
		argv[2] = argv[0];
		argc -= 2;
		argv += 2;
	} else if (argc > 1 && argv[1][0] != '-') {
		return usage_error("unknown command '%s' (expected: config show, intercept, observe, or options)", argv[1]);
	}
	opterr = 0;
	while ((opt = getopt_long(argc, argv, ":c:x:tl:h", opts, NULL)) != -1) {
		switch (opt) {
		case 'c':
			conf_path = optarg;
			break;
		case 'x':
			take_from = optarg;
			break;
		case 't':
			check = true;
			break;
		case 'l':
			if (log_level_parse(optarg, &log_level))
				return usage_error("-l: unknown log level '%s' (expected: error, warn, info, debug)",
						   optarg);
			break;
		case 'V':
			printf("wingman %s\n", WINGMAN_VERSION);
			return 0;
		case 'h':
			usage(stdout);
			return 0;
		default:
			util_opt_error("wingman", opt, argv);
			return try_help();
		}
	}
	if (optind < argc)
		return usage_error("unexpected argument '%s'", argv[optind]);

	cfg_errs_init(&errs, conf_path ? conf_path : "<default>");
	c = server_load(conf_path, &errs);
	if (!c) {
		for (unsigned i = 0; i < errs.n; i++)
			fprintf(stderr, "%s\n", errs.msgs[i]);
		fprintf(stderr, check ? "wingman: configuration %s test failed (%u error%s)\n"
				      : "wingman: configuration %s has %u error%s; not starting\n",
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
	return server_run(conf_path, c, take_from);
}
