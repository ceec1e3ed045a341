/* Which tap records a watcher wants (tap.h): the /tap query's path, status,
 * flags and from, parsed once per watcher and matched on the main thread,
 * so a record nobody asked for is never written to a socket. */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "observe/tap.h"
#include "observe/accesslog.h"
#include "core/regex.h"

#define SPIFFE "spiffe://"

static int fail(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static int fail(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	if (errlen)
		vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return -EINVAL;
}

/* Calls fn for each item of the comma-separated list (spaces around items
 * ignored; an empty item is an error); stops at the first error. */
static int each_item(const char *what, const char *list, int (*fn)(struct tap_filter *f, const char *s, size_t n,
								  char *err, size_t errlen),
		     struct tap_filter *f, char *err, size_t errlen)
{
	const char *p = list;

	for (;;) {
		size_t n = strcspn(p, ",");
		const char *s = p, *e = p + n;
		int rc;

		while (s < e && isspace((unsigned char)*s))
			s++;
		while (e > s && isspace((unsigned char)e[-1]))
			e--;
		if (s == e)
			return fail(err, errlen, "%s: an empty item in \"%s\"", what, list);
		if ((rc = fn(f, s, (size_t)(e - s), err, errlen)))
			return rc;
		if (!p[n])
			return 0;
		p += n + 1;
	}
}

/* "503" or "5xx". */
static int status_item(struct tap_filter *f, const char *s, size_t n, char *err, size_t errlen)
{
	int lo, hi;

	if (n == 3 && s[0] >= '1' && s[0] <= '5' && tolower((unsigned char)s[1]) == 'x' &&
	    tolower((unsigned char)s[2]) == 'x') {
		lo = (s[0] - '0') * 100;
		hi = lo + 99;
	} else if (n <= 3 && strspn(s, "0123456789") >= n) {
		lo = hi = (int)strtol(s, NULL, 10);
		if (lo && (lo < 100 || lo > 599))
			return fail(err, errlen, "status: \"%.*s\" is not a status code (100-599, or 0: no response)",
				    (int)n, s);
	} else {
		return fail(err, errlen, "status: \"%.*s\" is not a status code (503) or class (5xx)", (int)n, s);
	}
	if (f->nstatus == TAP_FILTER_MAX)
		return fail(err, errlen, "status: more than %d items", TAP_FILTER_MAX);
	f->status[f->nstatus].lo = lo;
	f->status[f->nstatus++].hi = hi;
	return 0;
}

static int flag_item(struct tap_filter *f, const char *s, size_t n, char *err, size_t errlen)
{
	uint32_t flag;

	if (al_response_flag(s, n, &flag))
		return fail(err, errlen, "flags: \"%.*s\" is not one of Envoy's response flags (UF, UO, NR, URX, ...)",
			    (int)n, s);
	f->flags |= flag;
	return 0;
}

/* An address as 16 bytes (IPv4 mapped into ::ffff:0:0/96); the prefix
 * length of an IPv4 one counts from there. */
static bool ip_bytes(const char *s, size_t n, uint8_t out[16], bool *v4)
{
	char buf[INET6_ADDRSTRLEN];
	struct in_addr a4;

	if (n >= sizeof(buf))
		return false;
	memcpy(buf, s, n);
	buf[n] = '\0';
	if (inet_pton(AF_INET, buf, &a4) == 1) {
		memset(out, 0, 10);
		out[10] = out[11] = 0xff;
		memcpy(out + 12, &a4, 4);
		*v4 = true;
		return true;
	}
	*v4 = false;
	return inet_pton(AF_INET6, buf, out) == 1;
}

/* An address, a CIDR or a principal. */
static int from_item(struct tap_filter *f, const char *s, size_t n, char *err, size_t errlen)
{
	struct tap_from *t = &f->from[f->nfrom];
	const char *slash = memchr(s, '/', n);
	size_t alen = slash ? (size_t)(slash - s) : n;
	bool v4;

	if (f->nfrom == TAP_FILTER_MAX)
		return fail(err, errlen, "from: more than %d items", TAP_FILTER_MAX);
	memset(t, 0, sizeof(*t));
	if (ip_bytes(s, alen, t->addr, &v4)) {
		unsigned max = v4 ? 32 : 128;
		const char *b = slash ? slash + 1 : NULL;
		size_t blen = slash ? n - alen - 1 : 0;

		t->ip = true;
		t->bits = 128;
		if (b) {
			unsigned long bits = blen && blen <= 3 && strspn(b, "0123456789") >= blen ? strtoul(b, NULL, 10) : ~0ul;

			if (bits > max)
				return fail(err, errlen, "from: \"%.*s\": the prefix length must be 0-%u", (int)n, s, max);
			t->bits = (unsigned)bits + (v4 ? 96 : 0);
		}
		f->nfrom++;
		return 0;
	}
	if (n > strlen(SPIFFE) && !strncmp(s, SPIFFE, strlen(SPIFFE))) {
		s += strlen(SPIFFE);
		n -= strlen(SPIFFE);
	}
	if ((!slash && !(n == 1 && *s == '*')) || n >= sizeof(t->principal))
		return fail(err, errlen, "from: \"%.*s\" is not an address, a CIDR or a principal "
			    "(cluster.local/ns/NS/sa/SA)", (int)n, s);
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] <= ' ' || s[i] == 0x7f || (s[i] == '*' && i && i != n - 1))
			return fail(err, errlen, "from: \"%.*s\": a principal has no spaces, and '*' only at an end",
				    (int)n, s);
	memcpy(t->principal, s, n);
	t->principal[n] = '\0';
	f->nfrom++;
	return 0;
}

int tap_filter_parse(struct tap_filter *f, const char *path, const char *status, const char *flags,
		     const char *from, char *err, size_t errlen)
{
	char rerr[256];
	int rc;

	memset(f, 0, sizeof(*f));
	if (path && *path && !(f->path = regex_new(path, rerr, sizeof(rerr))))
		return fail(err, errlen, "path: \"%s\" is not an RE2 regex: %s", path, rerr);
	if (status && *status && (rc = each_item("status", status, status_item, f, err, errlen)))
		return rc;
	if (flags && *flags && (rc = each_item("flags", flags, flag_item, f, err, errlen)))
		return rc;
	if (from && *from && (rc = each_item("from", from, from_item, f, err, errlen)))
		return rc;
	return 0;
}

void tap_filter_free(struct tap_filter *f)
{
	if (f->path)
		regex_free(f->path);
	f->path = NULL;
}

/* The address of "ip:port" / "[v6]:port" as 16 bytes. */
static bool src_bytes(const char *src, uint8_t out[16])
{
	const char *colon = strrchr(src, ':');
	size_t n = colon ? (size_t)(colon - src) : strlen(src);
	bool v4;

	if (n >= 2 && src[0] == '[' && src[n - 1] == ']')
		return ip_bytes(src + 1, n - 2, out, &v4);
	return ip_bytes(src, n, out, &v4);
}

static bool prefix_match(const uint8_t *a, const uint8_t *b, unsigned bits)
{
	unsigned whole = bits / 8, rest = bits % 8;

	if (memcmp(a, b, whole))
		return false;
	return !rest || ((a[whole] ^ b[whole]) & (0xff << (8 - rest))) == 0;
}

static bool principal_match(const char *want, const char *have)
{
	size_t wl = strlen(want), hl;

	if (!strncmp(have, SPIFFE, strlen(SPIFFE)))
		have += strlen(SPIFFE);
	hl = strlen(have);
	if (!*have)
		return false;
	if (!strcmp(want, "*"))
		return true;
	if (want[wl - 1] == '*')
		return hl >= wl - 1 && !memcmp(have, want, wl - 1);
	if (want[0] == '*')
		return hl >= wl - 1 && !memcmp(have + hl - (wl - 1), want + 1, wl - 1);
	return !strcmp(want, have);
}

bool tap_filter_match(const struct tap_filter *f, const struct tap_rec *r)
{
	bool ok;

	if (f->path && !regex_search(f->path, r->path, strlen(r->path)))
		return false;
	if (f->flags && !(f->flags & r->flags))
		return false;
	if (f->nstatus) {
		ok = false;
		for (unsigned i = 0; i < f->nstatus && !ok; i++)
			ok = r->status >= f->status[i].lo && r->status <= f->status[i].hi;
		if (!ok)
			return false;
	}
	if (f->nfrom) {
		uint8_t a[16];
		bool have_ip = src_bytes(r->src, a);

		ok = false;
		for (unsigned i = 0; i < f->nfrom && !ok; i++)
			ok = f->from[i].ip ? have_ip && prefix_match(a, f->from[i].addr, f->from[i].bits)
					   : principal_match(f->from[i].principal, r->principal);
		if (!ok)
			return false;
	}
	return true;
}
