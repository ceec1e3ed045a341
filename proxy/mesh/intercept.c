/* `wingman intercept install|remove|status`: loads the programs of bpf/,
 * attaches them to a pod's cgroup and network namespace through BPF links and
 * pins links and maps under /sys/fs/bpf/wingman/cg<CGROUP-ID>/, so the
 * interception outlives the process that installed it (an init container).
 * Unpinning everything (remove) detaches everything. See doc/bpf.md. */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include "config.h"
#include "core/util.h"
#include "mesh/intercept.h"

#ifdef WM_HAVE_BPF
#include <linux/magic.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "bpf/wingman-bpf.h"
#include "bpf/connect.skel.h"
#include "bpf/getsockopt.skel.h"
#include "bpf/inbound.skel.h"
#include "bpf/sockops.skel.h"

#define BPFFS "/sys/fs/bpf"

struct icpt_opts {
	const char *cgroup;		/* NULL: the caller's own cgroup */
	const char *netns;		/* NULL: the caller's own network namespace */
	unsigned outbound_port, inbound_port;
	long exclude_uid;		/* -1: none */
	uint16_t ports[WM_BPF_MAX_PORTS];
	unsigned nports;
	struct wm_lpm4 cidr4[WM_BPF_MAX_CIDRS];
	unsigned ncidr4;
	struct wm_lpm6 cidr6[WM_BPF_MAX_CIDRS];
	unsigned ncidr6;
};

/* Pinned links, by file name, and what they attach. */
static const char *const link_names[] = { "link_connect4", "link_connect6", "link_sockops", "link_getsockopt",
					  "link_sk_lookup", NULL };

/* Copies src into dst[len], truncating. */
static void copy_str(char *dst, size_t len, const char *src)
{
	size_t n = strnlen(src, len - 1);

	memcpy(dst, src, n);
	dst[n] = '\0';
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: wingman intercept install|remove|status [--cgroup PATH] [--netns PATH]\n"
		"         [--outbound-port 15001] [--inbound-port 15006] [--exclude-uid 1337]\n"
		"         [--exclude-ports P,P,...] [--exclude-cidrs CIDR,CIDR,...]\n"
		"  --cgroup PATH      cgroup v2 directory of the pod (default: this process's cgroup)\n"
		"  --netns PATH       network namespace of the pod (default: this process's, /proc/self/ns/net)\n"
		"  --exclude-uid UID  connections of this uid (the sidecar's) are not redirected; 'none' to redirect all\n"
		"  --exclude-ports    ports never intercepted, outbound destination or inbound local port\n"
		"  --exclude-cidrs    outbound destinations never intercepted\n"
		"Pins live in " WM_BPF_PIN_ROOT "/cg<CGROUP-ID>/; status without --cgroup lists every installation.\n");
}

static int parse_uint(const char *s, unsigned long max, unsigned long *out)
{
	char *end;
	unsigned long v;

	if (!*s || *s == '-' || *s == '+')
		return -EINVAL;
	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || *end || v > max)
		return -EINVAL;
	*out = v;
	return 0;
}

/* Calls one(tok, o) for each item of a comma-separated list, up to the first
 * failure, which it returns (one has said why on stderr). */
static int parse_list(const char *arg, struct icpt_opts *o, int (*one)(const char *tok, struct icpt_opts *o))
{
	char *copy = strdup(arg), *save = NULL, *tok;
	int rc = 0;

	if (!copy)
		return -ENOMEM;
	for (tok = strtok_r(copy, ",", &save); tok && !rc; tok = strtok_r(NULL, ",", &save))
		rc = one(tok, o);
	free(copy);
	return rc;
}

static int parse_port(const char *tok, struct icpt_opts *o)
{
	unsigned long p;

	if (parse_uint(tok, 65535, &p) || p == 0) {
		fprintf(stderr, "wingman: intercept: --exclude-ports: \"%s\" is not a port (1-65535)\n", tok);
		return -EINVAL;
	}
	if (o->nports == WM_BPF_MAX_PORTS) {
		fprintf(stderr, "wingman: intercept: --exclude-ports: at most %d ports\n", WM_BPF_MAX_PORTS);
		return -E2BIG;
	}
	o->ports[o->nports++] = (uint16_t)p;
	return 0;
}

/* Adds one CIDR to o: 0, -EINVAL, or -E2BIG when the table is full. */
static int cidr_add(const char *s, struct icpt_opts *o)
{
	char addr[INET6_ADDRSTRLEN + 1];
	const char *slash = strchr(s, '/');
	size_t alen = slash ? (size_t)(slash - s) : strlen(s);
	unsigned long plen;
	bool v6 = memchr(s, ':', alen) != NULL;

	if (alen == 0 || alen >= sizeof(addr))
		return -EINVAL;
	memcpy(addr, s, alen);
	addr[alen] = '\0';
	if (slash ? parse_uint(slash + 1, v6 ? 128 : 32, &plen) : (plen = v6 ? 128 : 32, 0))
		return -EINVAL;
	if (v6) {
		struct wm_lpm6 *k = &o->cidr6[o->ncidr6];

		if (o->ncidr6 == WM_BPF_MAX_CIDRS)
			return -E2BIG;
		if (inet_pton(AF_INET6, addr, k->addr) != 1)
			return -EINVAL;
		k->prefixlen = (uint32_t)plen;
		o->ncidr6++;
	} else {
		struct wm_lpm4 *k = &o->cidr4[o->ncidr4];

		if (o->ncidr4 == WM_BPF_MAX_CIDRS)
			return -E2BIG;
		if (inet_pton(AF_INET, addr, &k->addr) != 1)
			return -EINVAL;
		k->prefixlen = (uint32_t)plen;
		o->ncidr4++;
	}
	return 0;
}

static int parse_cidr(const char *tok, struct icpt_opts *o)
{
	int rc = cidr_add(tok, o);

	if (rc)
		fprintf(stderr, "wingman: intercept: --exclude-cidrs: \"%s\" is not a CIDR like 10.0.0.0/8 "
			"or fd00::/8%s\n", tok, rc == -E2BIG ? " (too many)" : "");
	return rc;
}

/* First cgroup v2 mount point, from /proc/self/mounts. */
static int cgroup2_root(char *buf, size_t len)
{
	FILE *f = fopen("/proc/self/mounts", "r");
	char dev[256], dir[PATH_MAX], type[64];
	int rc = -ENOENT;

	if (!f)
		return -errno;
	while (fscanf(f, "%255s %4095s %63s %*[^\n]", dev, dir, type) == 3) {
		if (strcmp(type, "cgroup2") == 0) {
			snprintf(buf, len, "%s", dir);
			rc = 0;
			break;
		}
	}
	fclose(f);
	return rc;
}

/* The caller's cgroup v2 directory. */
static int own_cgroup(char *buf, size_t len)
{
	char root[PATH_MAX], line[PATH_MAX];
	FILE *f;
	int rc = -ENOENT;

	if ((rc = cgroup2_root(root, sizeof(root))))
		return rc;
	if (!(f = fopen("/proc/self/cgroup", "r")))
		return -errno;
	rc = -ENOENT;
	while (fgets(line, sizeof(line), f)) {
		line[strcspn(line, "\n")] = '\0';
		if (strncmp(line, "0::", 3) == 0) {
			rc = snprintf(buf, len, "%s%s", root, strcmp(line + 3, "/") ? line + 3 : "") < (int)len ?
			     0 : -ENAMETOOLONG;
			break;
		}
	}
	fclose(f);
	return rc;
}

/* Opens the pod's cgroup; *id is its cgroup id (the directory's inode on cgroup v2). */
static int open_cgroup(const char *arg, char *path, size_t len, uint64_t *id)
{
	struct statfs sfs;
	struct stat st;
	int fd, rc;

	if (arg) {
		copy_str(path, len, arg);
	} else if ((rc = own_cgroup(path, len))) {
		fprintf(stderr, "wingman: intercept: cannot find this process's cgroup v2: %s (pass --cgroup)\n",
			strerror(-rc));
		return rc;
	}
	if ((fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
		rc = -errno;
		fprintf(stderr, "wingman: intercept: cgroup %s: %s\n", path, strerror(errno));
		return rc;
	}
	if (fstatfs(fd, &sfs) || sfs.f_type != CGROUP2_SUPER_MAGIC || fstat(fd, &st)) {
		fprintf(stderr, "wingman: intercept: %s is not a cgroup v2 directory\n", path);
		close(fd);
		return -EINVAL;
	}
	*id = (uint64_t)st.st_ino;
	return fd;
}

static int open_netns(const char *arg, char *path, size_t len, uint64_t *ino)
{
	struct stat st;
	int fd, rc;

	copy_str(path, len, arg ? arg : "/proc/self/ns/net");
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0 || fstat(fd, &st)) {
		rc = -errno;
		fprintf(stderr, "wingman: intercept: network namespace %s: %s\n", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return rc;
	}
	*ino = (uint64_t)st.st_ino;
	return fd;
}

/* Mounts the BPF filesystem on /sys/fs/bpf when it is not there (as Cilium does). */
static int ensure_bpffs(void)
{
	struct statfs sfs;

	if (statfs(BPFFS, &sfs) == 0 && sfs.f_type == BPF_FS_MAGIC)
		return 0;
	if (mount("bpf", BPFFS, "bpf", 0, "mode=0700")) {
		int err = -errno;

		fprintf(stderr, "wingman: intercept: %s is not a BPF filesystem and mounting one failed: %s\n", BPFFS,
			strerror(errno));
		return err;
	}
	return 0;
}

static void pin_dir(char *buf, size_t len, uint64_t cgid)
{
	snprintf(buf, len, WM_BPF_PIN_ROOT "/cg%" PRIu64, cgid);
}

/* Unpins everything in dir, then dir itself. Returns 0, or -ENOENT when there was nothing. */
static int unpin_all(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	char p[PATH_MAX];
	int rc = 0;

	if (!d)
		return -errno;
	/* Links first: once they are gone nothing runs the programs. */
	for (const char *const *n = link_names; *n; n++) {
		snprintf(p, sizeof(p), "%s/%s", dir, *n);
		if (unlink(p) && errno != ENOENT)
			rc = -errno;
	}
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		snprintf(p, sizeof(p), "%s/%s", dir, de->d_name);
		if (unlink(p) && errno != ENOENT)
			rc = -errno;
	}
	closedir(d);
	if (rmdir(dir))
		rc = -errno;
	rmdir(WM_BPF_PIN_ROOT);		/* fails while other installations remain */
	return rc;
}

static int pin_link(struct bpf_link *link, const char *dir, const char *name)
{
	char p[PATH_MAX];
	int err;

	if (!link)
		return -errno;
	if (snprintf(p, sizeof(p), "%s/%s", dir, name) >= (int)sizeof(p))
		err = -ENAMETOOLONG;
	else
		err = bpf_link__pin(link, p);
	/* The pin holds the attachment; dropping our fd must not detach it. */
	bpf_link__disconnect(link);
	bpf_link__destroy(link);
	return err;
}

static int fill_maps(struct connect_bpf *cs, const struct icpt_opts *o, const struct wm_conf *conf)
{
	uint32_t zero = 0;
	uint8_t one = 1;
	int err;

	if ((err = bpf_map__update_elem(cs->maps.wm_conf, &zero, sizeof(zero), conf, sizeof(*conf), BPF_ANY)))
		return err;
	for (unsigned i = 0; i < o->nports; i++)
		if ((err = bpf_map__update_elem(cs->maps.wm_ports, &o->ports[i], sizeof(o->ports[i]), &one, 1,
						BPF_ANY)))
			return err;
	for (unsigned i = 0; i < o->ncidr4; i++)
		if ((err = bpf_map__update_elem(cs->maps.wm_cidr4, &o->cidr4[i], sizeof(o->cidr4[i]), &one, 1,
						BPF_ANY)))
			return err;
	for (unsigned i = 0; i < o->ncidr6; i++)
		if ((err = bpf_map__update_elem(cs->maps.wm_cidr6, &o->cidr6[i], sizeof(o->cidr6[i]), &one, 1,
						BPF_ANY)))
			return err;
	return 0;
}

#define OPEN_SKEL(type, var, opts, step)				\
	do {								\
		step = "open " #type;					\
		if (!((var) = type##__open_opts(opts)))			\
			goto fail;					\
		step = "load " #type;					\
		if ((err = type##__load(var)))				\
			goto fail;					\
	} while (0)

static int install(const struct icpt_opts *o)
{
	LIBBPF_OPTS(bpf_object_open_opts, oo);
	struct connect_bpf *cs = NULL;
	struct sockops_bpf *ss = NULL;
	struct getsockopt_bpf *gs = NULL;
	struct inbound_bpf *is = NULL;
	struct wm_conf conf = { 0 };
	char cgpath[PATH_MAX], nspath[PATH_MAX], dir[PATH_MAX];
	const char *step = "prepare";
	int cgfd, nsfd = -1, err = 0;
	uint64_t cgid = 0, nsino = 0;
	bool installed = false;

	if ((cgfd = open_cgroup(o->cgroup, cgpath, sizeof(cgpath), &cgid)) < 0)
		return 1;
	if ((nsfd = open_netns(o->netns, nspath, sizeof(nspath), &nsino)) < 0) {
		close(cgfd);
		return 1;
	}
	conf.cgroup_id = cgid;
	conf.netns_ino = nsino;
	if (ensure_bpffs()) {
		close(cgfd);
		close(nsfd);
		return 1;
	}
	pin_dir(dir, sizeof(dir), conf.cgroup_id);
	/* Installing again replaces: an init container may run twice. */
	unpin_all(dir);
	if ((mkdir(WM_BPF_PIN_ROOT, 0700) && errno != EEXIST) || mkdir(dir, 0700)) {
		err = -errno;
		step = "create the pin directory";
		goto fail;
	}
	conf.outbound_port = (uint16_t)o->outbound_port;
	conf.inbound_port = (uint16_t)o->inbound_port;
	if (o->exclude_uid >= 0) {
		conf.flags |= WM_CONF_FL_EXCLUDE_UID;
		conf.exclude_uid = (uint32_t)o->exclude_uid;
	}
	copy_str(conf.cgroup, sizeof(conf.cgroup), cgpath);
	copy_str(conf.netns, sizeof(conf.netns), nspath);

	oo.pin_root_path = dir;
	OPEN_SKEL(connect_bpf, cs, &oo, step);
	step = "fill the maps";
	if ((err = fill_maps(cs, o, &conf)))
		goto fail;
	OPEN_SKEL(sockops_bpf, ss, &oo, step);
	OPEN_SKEL(getsockopt_bpf, gs, &oo, step);
	OPEN_SKEL(inbound_bpf, is, &oo, step);

	/* Recovery first, redirection last: no connection is redirected before
	 * its original destination can be answered. */
	const struct {
		const char *step, *pin;
		struct bpf_program *prog;
		bool netns;	/* attached to the netns, not the cgroup */
	} links[] = {
		{ "attach sockops", "link_sockops", ss->progs.wm_sockops, false },
		{ "attach cgroup/getsockopt", "link_getsockopt", gs->progs.wm_getsockopt, false },
		{ "attach sk_lookup", "link_sk_lookup", is->progs.wm_sk_lookup, true },
		{ "attach cgroup/connect4", "link_connect4", cs->progs.wm_connect4, false },
		{ "attach cgroup/connect6", "link_connect6", cs->progs.wm_connect6, false },
	};
	for (size_t i = 0; i < sizeof(links) / sizeof(links[0]); i++) {
		step = links[i].step;
		if ((err = pin_link(links[i].netns ? bpf_program__attach_netns(links[i].prog, nsfd) :
				    bpf_program__attach_cgroup(links[i].prog, cgfd), dir, links[i].pin)))
			goto fail;
	}
	printf("intercept installed in %s: cgroup %s, netns %s, outbound 127.0.0.1:%u, inbound :%u\n", dir, cgpath,
	       nspath, o->outbound_port, o->inbound_port);
	installed = true;
fail:
	if (!installed) {
		if (!err)
			err = -errno;
		fprintf(stderr, "wingman: intercept: install: %s failed: %s\n", step, strerror(err < 0 ? -err : err));
	}
	connect_bpf__destroy(cs);
	sockops_bpf__destroy(ss);
	getsockopt_bpf__destroy(gs);
	inbound_bpf__destroy(is);
	if (!installed)
		unpin_all(dir);
	close(cgfd);
	close(nsfd);
	return installed ? 0 : 1;
}

static int remove_cmd(const struct icpt_opts *o)
{
	char cgpath[PATH_MAX], dir[PATH_MAX];
	uint64_t cgid;
	int fd, rc;

	if ((fd = open_cgroup(o->cgroup, cgpath, sizeof(cgpath), &cgid)) < 0)
		return 1;
	close(fd);
	pin_dir(dir, sizeof(dir), cgid);
	rc = unpin_all(dir);
	if (rc == -ENOENT) {
		printf("intercept: nothing installed for cgroup %s\n", cgpath);
		return 0;
	}
	if (rc) {
		fprintf(stderr, "wingman: intercept: remove %s: %s\n", dir, strerror(-rc));
		return 1;
	}
	printf("intercept removed from cgroup %s\n", cgpath);
	return 0;
}

static const char *attach_name(uint32_t t)
{
	switch (t) {
	case BPF_CGROUP_INET4_CONNECT:
		return "cgroup/connect4";
	case BPF_CGROUP_INET6_CONNECT:
		return "cgroup/connect6";
	case BPF_CGROUP_SOCK_OPS:
		return "sockops";
	case BPF_CGROUP_GETSOCKOPT:
		return "cgroup/getsockopt";
	case BPF_SK_LOOKUP:
		return "sk_lookup";
	default:
		return "?";
	}
}

static unsigned count_entries(int fd, size_t key_size)
{
	unsigned char key[64], next[64];
	unsigned n = 0;
	void *prev = NULL;

	if (key_size > sizeof(key))
		return 0;
	while (bpf_map_get_next_key(fd, prev, next) == 0) {
		memcpy(key, next, key_size);
		prev = key;
		n++;
	}
	return n;
}

static int pinned_fd(const char *dir, const char *name)
{
	char p[PATH_MAX];

	snprintf(p, sizeof(p), "%s/%s", dir, name);
	return bpf_obj_get(p);
}

/* Prints one installation; returns the number of attached links. */
static int status_one(const char *dir)
{
	struct wm_conf conf;
	uint32_t zero = 0;
	int fd, attached = 0;

	printf("%s\n", dir);
	if ((fd = pinned_fd(dir, "wm_conf")) < 0 || bpf_map_lookup_elem(fd, &zero, &conf)) {
		printf("  config: unreadable (%s)\n", strerror(errno));
	} else {
		printf("  cgroup %s (id %llu), netns %s (inode %llu)\n", conf.cgroup,
		       (unsigned long long)conf.cgroup_id, conf.netns, (unsigned long long)conf.netns_ino);
		printf("  outbound -> 127.0.0.1:%u, inbound -> :%u, exclude uid ", conf.outbound_port,
		       conf.inbound_port);
		if (conf.flags & WM_CONF_FL_EXCLUDE_UID)
			printf("%u\n", conf.exclude_uid);
		else
			printf("none\n");
	}
	if (fd >= 0)
		close(fd);
	if ((fd = pinned_fd(dir, "wm_ports")) >= 0) {
		uint16_t k, *prev = NULL;
		const char *sep = "";

		printf("  exclude ports: ");
		while (bpf_map_get_next_key(fd, prev, &k) == 0) {
			printf("%s%u", sep, k);
			sep = ",";
			prev = &k;
		}
		printf("%s\n", *sep ? "" : "none");
		close(fd);
	}
	printf("  exclude cidrs: ");
	{
		const char *sep = "";
		char buf[INET6_ADDRSTRLEN];

		if ((fd = pinned_fd(dir, "wm_cidr4")) >= 0) {
			struct wm_lpm4 k, *prev = NULL;

			while (bpf_map_get_next_key(fd, prev, &k) == 0) {
				printf("%s%s/%u", sep, inet_ntop(AF_INET, &k.addr, buf, sizeof(buf)), k.prefixlen);
				sep = ",";
				prev = &k;
			}
			close(fd);
		}
		if ((fd = pinned_fd(dir, "wm_cidr6")) >= 0) {
			struct wm_lpm6 k, *prev = NULL;

			while (bpf_map_get_next_key(fd, prev, &k) == 0) {
				printf("%s%s/%u", sep, inet_ntop(AF_INET6, k.addr, buf, sizeof(buf)), k.prefixlen);
				sep = ",";
				prev = &k;
			}
			close(fd);
		}
		printf("%s\n", *sep ? "" : "none");
	}
	for (const char *const *n = link_names; *n; n++) {
		struct bpf_link_info li;
		struct bpf_prog_info pi;
		uint32_t len = sizeof(li), plen = sizeof(pi);
		int pfd;

		memset(&li, 0, sizeof(li));
		memset(&pi, 0, sizeof(pi));
		if ((fd = pinned_fd(dir, *n)) < 0) {
			printf("  %-18s missing\n", *n + 5);
			continue;
		}
		if (bpf_obj_get_info_by_fd(fd, &li, &len)) {
			printf("  %-18s unreadable: %s\n", *n + 5, strerror(errno));
			close(fd);
			continue;
		}
		close(fd);
		if ((pfd = bpf_prog_get_fd_by_id(li.prog_id)) >= 0) {
			bpf_obj_get_info_by_fd(pfd, &pi, &plen);
			close(pfd);
		}
		if (li.type == BPF_LINK_TYPE_NETNS) {
			printf("  %-18s attached: prog %u %s, netns inode %u\n", attach_name(li.netns.attach_type),
			       li.prog_id, pi.name, li.netns.netns_ino);
			attached += li.netns.netns_ino != 0;
		} else {
			printf("  %-18s %s: prog %u %s, cgroup id %llu\n", attach_name(li.cgroup.attach_type),
			       li.cgroup.cgroup_id ? "attached" : "DETACHED (cgroup gone)", li.prog_id, pi.name,
			       (unsigned long long)li.cgroup.cgroup_id);
			attached += li.cgroup.cgroup_id != 0;
		}
	}
	if ((fd = pinned_fd(dir, "wm_pair")) >= 0) {
		printf("  redirected connections remembered: %u\n", count_entries(fd, sizeof(struct wm_tuple)));
		close(fd);
	}
	if ((fd = pinned_fd(dir, "wm_listen")) >= 0) {
		unsigned n = 0;
		uint64_t cookie;

		for (uint32_t slot = 0; slot < 2 * WM_BPF_LISTEN_SLOTS; slot++)
			n += bpf_map_lookup_elem(fd, &slot, &cookie) == 0;
		printf("  inbound listening sockets: %u\n", n);
		close(fd);
	}
	return attached;
}

static int status_cmd(const struct icpt_opts *o)
{
	char dir[PATH_MAX], cgpath[PATH_MAX];
	struct dirent *de;
	unsigned found = 0;
	DIR *d;

	if (o->cgroup) {
		uint64_t cgid;
		int fd = open_cgroup(o->cgroup, cgpath, sizeof(cgpath), &cgid);
		struct stat st;

		if (fd < 0)
			return 1;
		close(fd);
		pin_dir(dir, sizeof(dir), cgid);
		if (stat(dir, &st)) {
			printf("intercept: not installed for cgroup %s\n", cgpath);
			return 1;
		}
		return status_one(dir) == (int)(sizeof(link_names) / sizeof(link_names[0]) - 1) ? 0 : 1;
	}
	if (!(d = opendir(WM_BPF_PIN_ROOT))) {
		printf("intercept: not installed (no %s)\n", WM_BPF_PIN_ROOT);
		return 1;
	}
	while ((de = readdir(d))) {
		if (strncmp(de->d_name, "cg", 2) != 0)
			continue;
		snprintf(dir, sizeof(dir), "%s/%s", WM_BPF_PIN_ROOT, de->d_name);
		status_one(dir);
		found++;
	}
	closedir(d);
	if (!found)
		printf("intercept: not installed\n");
	return found ? 0 : 1;
}

static int libbpf_print(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	if (level == LIBBPF_DEBUG)
		return 0;
	fprintf(stderr, "libbpf: ");
	return vfprintf(stderr, fmt, ap);
}

/* After a command-line error's line; 2, its exit status. */
static int try_help(void)
{
	fputs("Try 'wingman intercept --help' or 'man wingman'.\n", stderr);
	return 2;
}

int intercept_main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "cgroup", required_argument, NULL, 'g' },
		{ "netns", required_argument, NULL, 'n' },
		{ "outbound-port", required_argument, NULL, 'o' },
		{ "inbound-port", required_argument, NULL, 'i' },
		{ "exclude-uid", required_argument, NULL, 'u' },
		{ "exclude-ports", required_argument, NULL, 'p' },
		{ "exclude-cidrs", required_argument, NULL, 'c' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct icpt_opts o = { .outbound_port = 15001, .inbound_port = 15006, .exclude_uid = 1337 };
	const char *cmd;
	unsigned long v;
	int opt;

	if (argc > 1 && (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help"))) {
		usage(stdout);
		return 0;
	}
	cmd = argc > 1 ? argv[1] : "";
	if (!*cmd || cmd[0] == '-') {
		fprintf(stderr, "wingman: intercept: missing command (install, remove, status)\n");
		return try_help();
	}
	if (strcmp(cmd, "install") && strcmp(cmd, "remove") && strcmp(cmd, "status")) {
		fprintf(stderr, "wingman: intercept: unknown command \"%s\" (install, remove, status)\n", cmd);
		return try_help();
	}
	optind = 2;
	opterr = 0;
	while ((opt = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
		switch (opt) {
		case 'g':
			o.cgroup = optarg;
			break;
		case 'n':
			o.netns = optarg;
			break;
		case 'o':
		case 'i':
			if (parse_uint(optarg, 65535, &v) || v == 0) {
				fprintf(stderr, "wingman: intercept: --%s: \"%s\" is not a port (1-65535)\n",
					opt == 'o' ? "outbound-port" : "inbound-port", optarg);
				return try_help();
			}
			*(opt == 'o' ? &o.outbound_port : &o.inbound_port) = (unsigned)v;
			break;
		case 'u':
			if (!strcmp(optarg, "none")) {
				o.exclude_uid = -1;
			} else if (parse_uint(optarg, UINT32_MAX - 1, &v)) {
				fprintf(stderr, "wingman: intercept: --exclude-uid: \"%s\" is not a uid (or 'none')\n",
					optarg);
				return try_help();
			} else {
				o.exclude_uid = (long)v;
			}
			break;
		case 'p':
			if (parse_list(optarg, &o, parse_port))
				return try_help();
			break;
		case 'c':
			if (parse_list(optarg, &o, parse_cidr))
				return try_help();
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			util_opt_error("wingman: intercept", opt, argv);
			return try_help();
		}
	}
	if (optind != argc) {
		fprintf(stderr, "wingman: intercept: unexpected argument \"%s\"\n", argv[optind]);
		return try_help();
	}
	if (o.outbound_port == o.inbound_port) {
		fprintf(stderr, "wingman: intercept: --outbound-port and --inbound-port must differ\n");
		return try_help();
	}
	libbpf_set_print(libbpf_print);
	if (!strcmp(cmd, "install"))
		return install(&o);
	if (!strcmp(cmd, "remove"))
		return remove_cmd(&o);
	return status_cmd(&o);
}

#else /* !WM_HAVE_BPF */

int intercept_main(int argc, char **argv)
{
	fprintf(stderr, "wingman: intercept: this wingman was built with --disable-bpf; eBPF interception is "
			"not available (rebuild with clang and bpftool installed, or use iptables REDIRECT)\n");
	return 3;
}

#endif
