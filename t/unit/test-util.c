/* Durations, addresses, UUIDs, the arena, log levels, base64 and UTF-8. */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <string.h>

#include "core/arena.h"
#include "core/log.h"
#include "core/util.h"
#include "t/unit/tap.h"

static void test_durations(void)
{
	static const struct {
		const char *s;
		uint64_t ms;
	} good[] = {
		{ "0", 0 }, { "0ms", 0 }, { "250ms", 250 }, { "2s", 2000 }, { "1.5s", 1500 },
		{ "1m", 60000 }, { "1h", 3600000 }, { "0.25s", 250 }, { "1.5m", 90000 },
		{ "0.001s", 1 }, { "10.0ms", 10 }, { "18446744073709551615ms", UINT64_MAX },
	};
	static const char *const bad[] = {
		"", "-1s", "5", "1.5", "s", "1x", "1 s", "1S", "1.s", ".5s", "2sec", "1ms ", " 1ms",
		"18446744073709551616ms", "18446744073709551615s", "99999999999999999999h",
	};
	uint64_t ms;

	for (size_t i = 0; i < ARRAY_SIZE(good); i++) {
		ms = 12345;
		is_int(util_parse_duration(good[i].s, &ms), 0, "duration \"%s\" accepted", good[i].s);
		is_int(ms, good[i].ms, "duration \"%s\" = %llu ms", good[i].s, (unsigned long long)good[i].ms);
	}
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++)
		is_int(util_parse_duration(bad[i], &ms), -EINVAL, "duration \"%s\" refused", bad[i]);
}

static void test_sizes(void)
{
	static const struct {
		const char *s;
		uint64_t b;
	} good[] = {
		{ "0", 0 }, { "65535", 65535 }, { "64KiB", 65536 }, { "1MiB", 1048576 }, { "2GiB", 2147483648ULL },
		{ "18446744073709551615", UINT64_MAX }, { "17179869183GiB", 17179869183ULL << 30 },
	};
	static const char *const bad[] = {
		"", "KiB", "-1", "64kib", "64KB", "64 KiB", "1.5MiB", "64KiB ", "18446744073709551616",
		"17179869184GiB", "1TiB",
	};
	uint64_t b;

	for (size_t i = 0; i < ARRAY_SIZE(good); i++) {
		b = 12345;
		is_int(util_parse_size(good[i].s, &b), 0, "size \"%s\" accepted", good[i].s);
		ok(b == good[i].b, "size \"%s\" = %llu", good[i].s, (unsigned long long)good[i].b);
	}
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++)
		is_int(util_parse_size(bad[i], &b), -EINVAL, "size \"%s\" refused", bad[i]);
}

static void test_addrs(void)
{
	struct addr_spec a;
	const char *why;
	char buf[64];

	is_int(util_parse_addr("1.2.3.4:80", &a, &why), 0, "v4 literal");
	is_str(a.host, "1.2.3.4", "v4 host");
	is_int(a.port, 80, "v4 port");
	ok(a.is_ip && a.ss.ss_family == AF_INET && a.sslen == sizeof(struct sockaddr_in), "v4 sockaddr filled");
	is_str(util_sockaddr_str((struct sockaddr *)&a.ss, buf, sizeof(buf)), "1.2.3.4:80", "v4 formats back");

	is_int(util_parse_addr("0.0.0.0:15006", &a, &why), 0, "any address");
	is_int(a.port, 15006, "any port");

	is_int(util_parse_addr("[::1]:8080", &a, &why), 0, "v6 literal");
	is_str(a.host, "::1", "v6 host without brackets");
	ok(a.is_ip && a.ss.ss_family == AF_INET6 && a.sslen == sizeof(struct sockaddr_in6), "v6 sockaddr filled");
	is_str(util_sockaddr_str((struct sockaddr *)&a.ss, buf, sizeof(buf)), "[::1]:8080", "v6 formats back");

	is_int(util_parse_addr("was-service.blog-system.svc.cluster.local:8080", &a, &why), 0, "dns name");
	ok(!a.is_ip, "dns name is not an ip");
	is_str(a.host, "was-service.blog-system.svc.cluster.local", "dns host");
	is_int(util_parse_addr("localhost:1", &a, &why), 0, "single label name, port 1");
	is_int(util_parse_addr("h:65535", &a, &why), 0, "port 65535");

	static const char *const bad[] = {
		"", "1.2.3.4", "1.2.3.4:", "1.2.3.4:0", "1.2.3.4:65536", "1.2.3.4:80x", "*:80", ":80",
		"::1:80", "[::1]80", "[::1]", "[1.2.3.4]:80", "[zz]:80", "1.2.3:80", "300.1.1.1:80",
		"-a.b:80", "a-.b:80", "a..b:80", "a_b:80", "a b:80", "1.2.3.4:-1",
	};
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		why = NULL;
		is_int(util_parse_addr(bad[i], &a, &why), -EINVAL, "address \"%s\" refused", bad[i]);
		ok(why != NULL, "  with a reason (%s)", why ? why : "none");
	}
}

static void test_uuid(void)
{
	char u[37], v[37];
	int good = 1;

	util_uuid4(u);
	util_uuid4(v);
	is_int(strlen(u), 36, "uuid length");
	for (int i = 0; i < 36; i++) {
		if (i == 8 || i == 13 || i == 18 || i == 23)
			good &= u[i] == '-';
		else
			good &= isxdigit((unsigned char)u[i]) && !isupper((unsigned char)u[i]);
	}
	ok(good, "uuid shape %s", u);
	ok(u[14] == '4', "uuid version 4");
	ok(strchr("89ab", u[19]) != NULL, "uuid variant");
	ok(strcmp(u, v) != 0, "two uuids differ");
}

static int cleanup_order[4], ncleanup;

static void note_cleanup(void *arg)
{
	cleanup_order[ncleanup++] = (int)(intptr_t)arg;
}

static void test_arena(void)
{
	struct arena *a = arena_new(256);
	int aligned = 1;
	char *big, *s;

	ok(a != NULL, "arena_new");
	for (int i = 1; i < 200; i++) {
		char *p = arena_alloc(a, (size_t)i);

		aligned &= ((uintptr_t)p % 16) == 0;
		memset(p, 0xab, (size_t)i);
	}
	ok(aligned, "allocations are 16-byte aligned across blocks");
	big = arena_zalloc(a, 1 << 20);
	ok(big && big[0] == 0 && big[(1 << 20) - 1] == 0, "large allocation zeroed");
	s = arena_printf(a, "%s-%d", "x", 42);
	is_str(s, "x-42", "arena_printf");
	is_str(arena_strndup(a, "hello", 3), "hel", "arena_strndup");
	ok(arena_used(a) > (1 << 20), "arena_used counts");
	arena_cleanup_add(a, note_cleanup, (void *)1);
	arena_cleanup_add(a, note_cleanup, (void *)2);
	arena_cleanup_add(a, note_cleanup, (void *)3);
	arena_free(a);
	ok(ncleanup == 3 && cleanup_order[0] == 3 && cleanup_order[1] == 2 && cleanup_order[2] == 1,
	   "cleanups run newest first");
}

static void test_log_level(void)
{
	enum log_level l;

	ok(log_level_parse("warning", &l) == 0 && l == LOG_LVL_WARN, "warning");
	ok(log_level_parse("debug", &l) == 0 && l == LOG_LVL_DEBUG, "debug");
	ok(log_level_parse("loud", &l) == -EINVAL, "unknown level refused");
	ok(log_level == LOG_LVL_INFO, "default level info");
}

static void test_base64(void)
{
	uint8_t out[16];
	char txt[16];

	is_int(util_base64_encode((const uint8_t *)"ab", 2, txt, sizeof(txt)), 4, "base64: two bytes, padded");
	is_str(txt, "YWI=", "base64: text");
	is_int(util_base64_encode((const uint8_t *)"abc", 3, txt, 4), 0, "base64: no room for the NUL");
	is_int(util_base64_encode((const uint8_t *)"", 0, txt, 1), 0, "base64: empty");
	is_int(util_base64_decode("YWI=", 4, false, out, sizeof(out)), 2, "base64: padded decodes");
	is_int(util_base64_decode("YWI", 3, false, out, sizeof(out)), 2, "base64: unpadded too");
	ok(memcmp(out, "ab", 2) == 0, "base64: bytes");
	is_int(util_base64_decode("+/8=", 4, false, out, sizeof(out)), 2, "base64: standard alphabet");
	is_int(util_base64_decode("-_8=", 4, false, out, sizeof(out)), -EINVAL, "base64: no URL alphabet");
	is_int(util_base64_decode("-_8", 3, true, out, sizeof(out)), 2, "base64url");
	is_int(util_base64_decode("YWJ", 3, false, out, sizeof(out)), -EINVAL, "base64: stray low bits");
	is_int(util_base64_decode("Y", 1, false, out, sizeof(out)), -EINVAL, "base64: a lone group");
	is_int(util_base64_decode("YWJj", 4, false, out, 2), -E2BIG, "base64: past cap");
}

static void test_utf8(void)
{
	ok(util_utf8_valid("plain é € 𝄞", strlen("plain é € 𝄞")), "utf8: 1 to 4 byte forms");
	ok(!util_utf8_valid("\xc0\xaf", 2), "utf8: overlong");
	ok(!util_utf8_valid("\xe0\x80\xaf", 3), "utf8: overlong, 3 bytes");
	ok(!util_utf8_valid("\xed\xa0\x80", 3), "utf8: surrogate");
	ok(!util_utf8_valid("\xf4\x90\x80\x80", 4), "utf8: past U+10FFFF");
	ok(!util_utf8_valid("\xe2\x82", 2), "utf8: truncated");
	ok(!util_utf8_valid("\x80", 1), "utf8: lone continuation");
	ok(util_utf8_valid("a\0b", 3), "utf8: NUL is a character");
}

int main(void)
{
	test_durations();
	test_sizes();
	test_addrs();
	test_uuid();
	test_arena();
	test_log_level();
	test_base64();
	test_utf8();
	return done_testing();
}
