/* Small pure helpers: durations, addresses, clocks, random numbers. */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/util.h"

static const struct {
	const char *name;
	uint64_t ms;
} duration_units[] = {
	{ "ms", 1 },
	{ "s", 1000 },
	{ "m", 60 * 1000 },
	{ "h", 60 * 60 * 1000 },
};

/* One or more decimal digits at *p into *v, *p moved past them; -EINVAL
 * when there is none or the number does not fit. */
static int parse_digits(const char **p, uint64_t *v)
{
	const char *q = *p;

	if (!isdigit((unsigned char)*q))
		return -EINVAL;
	for (*v = 0; isdigit((unsigned char)*q); q++) {
		uint64_t d = (uint64_t)(*q - '0');

		if (*v > (UINT64_MAX - d) / 10)
			return -EINVAL;
		*v = *v * 10 + d;
	}
	*p = q;
	return 0;
}

int util_parse_size(const char *s, uint64_t *bytes)
{
	static const struct { const char *name; unsigned shift; } units[] = {
		{ "", 0 }, { "KiB", 10 }, { "MiB", 20 }, { "GiB", 30 },
	};
	uint64_t v = 0;
	const char *p = s;

	if (!s || parse_digits(&p, &v))
		return -EINVAL;
	for (size_t i = 0; i < ARRAY_SIZE(units); i++) {
		if (strcmp(p, units[i].name))
			continue;
		if (v > (UINT64_MAX >> units[i].shift))
			return -EINVAL;
		*bytes = v << units[i].shift;
		return 0;
	}
	return -EINVAL;
}

int util_parse_duration(const char *s, uint64_t *ms)
{
	uint64_t whole = 0, frac = 0, scale = 1, mult = 0;
	const char *p = s;

	if (!s || parse_digits(&p, &whole))
		return -EINVAL;
	if (*p == '.') {
		p++;
		if (!isdigit((unsigned char)*p))
			return -EINVAL;
		for (; isdigit((unsigned char)*p); p++) {
			/* Digits beyond a nanosecond of an hour cannot change the result. */
			if (scale < 1000000000000ULL) {
				frac = frac * 10 + (uint64_t)(*p - '0');
				scale *= 10;
			}
		}
	}
	if (!*p) {
		/* A bare number is only unambiguous when it is zero. */
		if (whole || frac || p[-1] == '.')
			return -EINVAL;
		*ms = 0;
		return 0;
	}
	for (size_t i = 0; i < ARRAY_SIZE(duration_units); i++)
		if (!strcmp(p, duration_units[i].name))
			mult = duration_units[i].ms;
	if (!mult)
		return -EINVAL;
	if (whole > UINT64_MAX / mult)
		return -EINVAL;
	whole *= mult;
	/* frac < scale <= 1e12 and mult <= 3.6e6, so the product fits. */
	if (whole > UINT64_MAX - frac * mult / scale)
		return -EINVAL;
	*ms = whole + frac * mult / scale;
	return 0;
}

/* RFC 1123 host name: dot-separated labels of letters, digits and inner
 * hyphens, at most 63 bytes each and 253 in all; the last label is not all
 * digits (that would be a malformed IPv4 address). */
static bool valid_dns_name(const char *h, size_t len)
{
	size_t label = 0;
	bool alldigit = true;

	if (len == 0 || len > 253)
		return false;
	for (size_t i = 0; i <= len; i++) {
		char c = i < len ? h[i] : '.';

		if (c == '.') {
			if (label == 0 || label > 63 || h[i - 1] == '-')
				return false;
			if (i == len && alldigit)
				return false;
			label = 0;
			alldigit = true;
			continue;
		}
		if (!isalnum((unsigned char)c) && c != '-')
			return false;
		if (c == '-' && label == 0)
			return false;
		if (!isdigit((unsigned char)c))
			alldigit = false;
		label++;
	}
	return true;
}

static int parse_port(const char *p, uint16_t *port)
{
	unsigned long v = 0;

	if (!*p)
		return -EINVAL;
	for (; *p; p++) {
		if (!isdigit((unsigned char)*p))
			return -EINVAL;
		v = v * 10 + (unsigned long)(*p - '0');
		if (v > 65535)
			return -EINVAL;
	}
	if (v == 0)
		return -EINVAL;
	*port = (uint16_t)v;
	return 0;
}

int util_parse_addr(const char *s, struct addr_spec *out, const char **why)
{
	const char *host, *colon;
	size_t hlen;
	bool bracketed = false;

	memset(out, 0, sizeof(*out));
	*why = "expected host:port or [ipv6]:port";
	if (!s || !*s)
		return -EINVAL;
	if (*s == '[') {
		const char *end = strchr(s, ']');

		if (!end || end[1] != ':')
			return -EINVAL;
		host = s + 1;
		hlen = (size_t)(end - host);
		colon = end + 1;
		bracketed = true;
	} else {
		colon = strrchr(s, ':');
		if (!colon)
			return -EINVAL;
		if (memchr(s, ':', (size_t)(colon - s))) {
			*why = "IPv6 addresses need brackets, like [::1]:80";
			return -EINVAL;
		}
		host = s;
		hlen = (size_t)(colon - s);
	}
	if (hlen == 0) {
		*why = "missing host";
		return -EINVAL;
	}
	if (hlen >= sizeof(out->host)) {
		*why = "host name too long";
		return -EINVAL;
	}
	if (parse_port(colon + 1, &out->port)) {
		*why = "port must be a number from 1 to 65535";
		return -EINVAL;
	}
	memcpy(out->host, host, hlen);
	out->host[hlen] = '\0';

	if (bracketed) {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&out->ss;

		if (inet_pton(AF_INET6, out->host, &sin6->sin6_addr) != 1) {
			*why = "invalid IPv6 address";
			return -EINVAL;
		}
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons(out->port);
		out->sslen = sizeof(*sin6);
		out->is_ip = true;
	} else {
		struct sockaddr_in *sin = (struct sockaddr_in *)&out->ss;

		if (inet_pton(AF_INET, out->host, &sin->sin_addr) == 1) {
			sin->sin_family = AF_INET;
			sin->sin_port = htons(out->port);
			out->sslen = sizeof(*sin);
			out->is_ip = true;
		} else if (!valid_dns_name(out->host, hlen)) {
			*why = "host must be an IP address or a DNS name";
			return -EINVAL;
		}
	}
	*why = NULL;
	return 0;
}

char *util_sockaddr_str(const struct sockaddr *sa, char *buf, size_t len)
{
	char ip[INET6_ADDRSTRLEN];

	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *sin = (const struct sockaddr_in *)sa;

		inet_ntop(AF_INET, &sin->sin_addr, ip, sizeof(ip));
		snprintf(buf, len, "%s:%u", ip, ntohs(sin->sin_port));
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)sa;

		inet_ntop(AF_INET6, &sin6->sin6_addr, ip, sizeof(ip));
		snprintf(buf, len, "[%s]:%u", ip, ntohs(sin6->sin6_port));
	} else {
		snprintf(buf, len, "unknown");
	}
	return buf;
}

char *util_sock_local_str(int fd, char *buf, size_t len)
{
	struct sockaddr_storage ss;
	socklen_t sslen = sizeof(ss);

	if (fd < 0 || getsockname(fd, (struct sockaddr *)&ss, &sslen)) {
		if (len)
			buf[0] = '\0';
		return buf;
	}
	return util_sockaddr_str((struct sockaddr *)&ss, buf, len);
}

uint64_t util_mono_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

uint64_t util_wall_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

bool util_strieq(const char *a, size_t alen, const char *b)
{
	size_t blen = strlen(b);

	return alen == blen && strncasecmp(a, b, alen) == 0;
}

static __thread uint64_t rand_state[2];

static void rand_seed(void)
{
	uint64_t seed[2] = { 0, 0 };

	if (getrandom(seed, sizeof(seed), 0) != (ssize_t)sizeof(seed)) {
		/* No entropy source: still give each thread a distinct stream. */
		seed[0] = util_wall_us() ^ ((uint64_t)getpid() << 32);
		seed[1] = util_mono_us() ^ (uint64_t)(uintptr_t)&rand_state;
	}
	/* xorshift128+ must not start from an all-zero state. */
	if (!seed[0] && !seed[1])
		seed[0] = 0x9e3779b97f4a7c15ULL;
	rand_state[0] = seed[0];
	rand_state[1] = seed[1];
}

uint64_t util_rand64(void)
{
	uint64_t s1, s0;

	if (!rand_state[0] && !rand_state[1])
		rand_seed();
	s1 = rand_state[0];
	s0 = rand_state[1];
	rand_state[0] = s0;
	s1 ^= s1 << 23;
	rand_state[1] = s1 ^ s0 ^ (s1 >> 17) ^ (s0 >> 26);
	return rand_state[1] + s0;
}

bool util_roll_pct(double pct)
{
	if (pct <= 0)
		return false;
	if (pct >= 100)
		return true;
	return (double)(util_rand64() >> 11) * (100.0 / 9007199254740992.0) < pct;
}

#define SIP_ROTL(x, b) (((x) << (b)) | ((x) >> (64 - (b))))
#define SIP_ROUND(v0, v1, v2, v3) do { \
	v0 += v1; v1 = SIP_ROTL(v1, 13); v1 ^= v0; v0 = SIP_ROTL(v0, 32); \
	v2 += v3; v3 = SIP_ROTL(v3, 16); v3 ^= v2; \
	v0 += v3; v3 = SIP_ROTL(v3, 21); v3 ^= v0; \
	v2 += v1; v1 = SIP_ROTL(v1, 17); v1 ^= v2; v2 = SIP_ROTL(v2, 32); \
} while (0)

uint64_t util_siphash(const uint64_t key[2], const void *data, size_t len)
{
	const unsigned char *p = data, *end = p + (len & ~(size_t)7);
	uint64_t v0 = 0x736f6d6570736575ULL ^ key[0], v1 = 0x646f72616e646f6dULL ^ key[1];
	uint64_t v2 = 0x6c7967656e657261ULL ^ key[0], v3 = 0x7465646279746573ULL ^ key[1];
	uint64_t m, b = (uint64_t)len << 56;

	for (; p < end; p += 8) {
		m = 0;
		for (int i = 7; i >= 0; i--)
			m = m << 8 | p[i];	/* little-endian whatever the host */
		v3 ^= m;
		SIP_ROUND(v0, v1, v2, v3);
		SIP_ROUND(v0, v1, v2, v3);
		v0 ^= m;
	}
	for (size_t i = 0; i < (len & 7); i++)
		b |= (uint64_t)p[i] << (8 * i);
	v3 ^= b;
	SIP_ROUND(v0, v1, v2, v3);
	SIP_ROUND(v0, v1, v2, v3);
	v0 ^= b;
	v2 ^= 0xff;
	for (int i = 0; i < 4; i++)
		SIP_ROUND(v0, v1, v2, v3);
	return v0 ^ v1 ^ v2 ^ v3;
}

void util_uuid4(char out[37])
{
	static const char hex[] = "0123456789abcdef";
	unsigned char b[16];
	uint64_t hi = util_rand64(), lo = util_rand64();
	int o = 0;

	for (int i = 0; i < 8; i++) {
		b[i] = (unsigned char)(hi >> (56 - 8 * i));
		b[8 + i] = (unsigned char)(lo >> (56 - 8 * i));
	}
	b[6] = (unsigned char)((b[6] & 0x0f) | 0x40);
	b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
	for (int i = 0; i < 16; i++) {
		if (i == 4 || i == 6 || i == 8 || i == 10)
			out[o++] = '-';
		out[o++] = hex[b[i] >> 4];
		out[o++] = hex[b[i] & 0xf];
	}
	out[o] = '\0';
}

char *util_fmt_u64(char buf[24], uint64_t v, unsigned base)
{
	char *p = buf + 24;

	if (base == 10) {	/* division by a constant: a multiply, not a divide */
		do {
			*--p = (char)('0' + v % 10);
			v /= 10;
		} while (v);
		return p;
	}
	do {
		*--p = "0123456789abcdef"[v % base];
		v /= base;
	} while (v);
	return p;
}

void *util_grow(void *v, unsigned *cap, size_t size, unsigned first)
{
	unsigned n = *cap ? *cap * 2 : first;

	if (n < *cap || !(v = realloc(v, size * n)))
		return NULL;
	*cap = n;
	return v;
}

void file_sig_of(const char *path, struct file_sig *s)
{
	struct stat st;

	memset(s, 0, sizeof(*s));
	if (stat(path, &st)) {	/* follows symlinks: a swapped ..data link changes ino */
		s->err = errno;
		return;
	}
	s->dev = st.st_dev;
	s->ino = st.st_ino;
	s->size = st.st_size;
	s->mtime = st.st_mtim;
	s->ctime = st.st_ctim;
}

bool file_sig_eq(const struct file_sig *a, const struct file_sig *b)
{
	return a->err == b->err && a->dev == b->dev && a->ino == b->ino && a->size == b->size &&
	       a->mtime.tv_sec == b->mtime.tv_sec && a->mtime.tv_nsec == b->mtime.tv_nsec &&
	       a->ctime.tv_sec == b->ctime.tv_sec && a->ctime.tv_nsec == b->ctime.tv_nsec;
}

int util_opt_error(const char *prefix, int ret, char *const argv[])
{
	const char *arg = optind > 0 ? argv[optind - 1] : "";
	bool is_long = !strncmp(arg, "--", 2);

	if (ret == ':')
		fprintf(stderr, "%s: option '%s' needs a value\n", prefix, arg);
	else if (is_long && optopt && strchr(arg, '='))
		fprintf(stderr, "%s: option '%.*s' takes no value\n", prefix, (int)strcspn(arg, "="), arg);
	else if (!is_long && optopt)
		fprintf(stderr, "%s: unknown option '-%c'\n", prefix, optopt);
	else
		fprintf(stderr, "%s: unknown option '%s'\n", prefix, arg);
	return 2;
}

size_t util_utf8_seq(const unsigned char *p, const unsigned char *end, size_t n, size_t *bad)
{
	unsigned char lo = 0x80, hi = 0xbf;

	/* Second-byte ranges that rule out overlong forms, surrogates and > U+10FFFF. */
	switch (p[0]) {
	case 0xe0: lo = 0xa0; break;
	case 0xed: hi = 0x9f; break;
	case 0xf0: lo = 0x90; break;
	case 0xf4: hi = 0x8f; break;
	}
	for (size_t i = 1; i < n; i++) {
		if ((size_t)(end - p) <= i || p[i] < lo || p[i] > hi) {
			*bad = i;
			return 0;
		}
		lo = 0x80;
		hi = 0xbf;
	}
	return n;
}

/* Past the ASCII bytes at p, eight at a time. */
static const unsigned char *skip_ascii(const unsigned char *p, const unsigned char *end)
{
	uint64_t w;

	for (; end - p >= 8; p += 8) {
		memcpy(&w, p, 8);
		if (w & 0x8080808080808080ULL)
			break;
	}
	while (p < end && *p < 0x80)
		p++;
	return p;
}

/* The length of the character at p < end (not ASCII): the well-formed
 * sequence's, or 0 with *bad its ill-formed subpart's. */
static size_t utf8_char(const unsigned char *p, const unsigned char *end, size_t *bad)
{
	*bad = 1;
	if (*p >= 0xc2 && *p <= 0xdf)
		return util_utf8_seq(p, end, 2, bad);
	if (*p >= 0xe0 && *p <= 0xef)
		return util_utf8_seq(p, end, 3, bad);
	if (*p >= 0xf0 && *p <= 0xf4)
		return util_utf8_seq(p, end, 4, bad);
	return 0;
}

size_t util_utf8_fixed_len(const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *)s, *end = p + len;
	size_t out = len, n, bad;

	while ((p = skip_ascii(p, end)) < end) {
		if ((n = utf8_char(p, end, &bad))) {
			p += n;
		} else {
			p += bad;
			out += 3 - bad;
		}
	}
	return out;
}

char *util_utf8_fix(char *d, const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *)s, *end = p + len, *run = p;
	size_t n, bad;

	while ((p = skip_ascii(p, end)) < end) {
		if ((n = utf8_char(p, end, &bad))) {
			p += n;
			continue;
		}
		memcpy(d, run, (size_t)(p - run));
		d += p - run;
		memcpy(d, "\xef\xbf\xbd", 3);
		d += 3;
		p += bad;
		run = p;
	}
	memcpy(d, run, (size_t)(p - run));
	return d + (p - run);
}

size_t util_base64_encode(const uint8_t *in, size_t len, char *out, size_t cap)
{
	static const char abc[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	size_t n = 0;

	if (!cap || len / 3 * 4 + (len % 3 ? 4 : 0) >= cap)
		return 0;
	for (size_t i = 0; i < len; i += 3) {
		uint32_t v = (uint32_t)in[i] << 16 | (i + 1 < len ? (uint32_t)in[i + 1] << 8 : 0) |
			     (i + 2 < len ? in[i + 2] : 0);

		out[n++] = abc[v >> 18];
		out[n++] = abc[(v >> 12) & 63];
		out[n++] = i + 1 < len ? abc[(v >> 6) & 63] : '=';
		out[n++] = i + 2 < len ? abc[v & 63] : '=';
	}
	out[n] = '\0';
	return n;
}

int util_base64_decode(const char *in, size_t len, bool url, uint8_t *out, size_t cap)
{
	uint32_t acc = 0;
	unsigned bits = 0;
	size_t n = 0;

	while (len && in[len - 1] == '=')
		len--;
	for (size_t i = 0; i < len; i++) {
		char ch = in[i];
		unsigned v;

		if (ch >= 'A' && ch <= 'Z')
			v = (unsigned)(ch - 'A');
		else if (ch >= 'a' && ch <= 'z')
			v = (unsigned)(ch - 'a') + 26;
		else if (ch >= '0' && ch <= '9')
			v = (unsigned)(ch - '0') + 52;
		else if (ch == (url ? '-' : '+'))
			v = 62;
		else if (ch == (url ? '_' : '/'))
			v = 63;
		else
			return -EINVAL;
		acc = (acc << 6) | v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			if (n == cap)
				return -E2BIG;
			out[n++] = (uint8_t)(acc >> bits);
		}
	}
	if (bits >= 6 || (acc & ((1u << bits) - 1)))
		return -EINVAL;	/* a lone 6-bit group, or stray low bits */
	return n > INT32_MAX ? -E2BIG : (int)n;
}

bool util_utf8_valid(const char *s, size_t len)
{
	return util_utf8_fixed_len(s, len) == len;
}
