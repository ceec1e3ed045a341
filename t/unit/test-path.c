/* Request path normalisation (path.h): Envoy's normalize_path, merge_slashes
 * and path_with_escaped_slashes_action, Istio's levels, and the bypass
 * attempts that made RBAC and routing disagree. */
#include <errno.h>
#include <string.h>

#include "config/cfg.h"
#include "http/path.h"
#include "t/unit/tap.h"

static struct path_opts opts;

/* want NULL: refused (400); want starting with "307 ": redirect to the rest. */
static void norm(const char *in, const char *want)
{
	char out[512];
	size_t n = 0;
	int rc = path_normalize(in, strlen(in), &opts, out, &n);

	if (!want) {
		ok(rc < 0, "%s is refused", in);
		return;
	}
	if (!strncmp(want, "307 ", 4)) {
		ok(rc >= 0 && (rc & PATH_RES_REDIRECT), "%s redirects", in);
		want += 4;
	} else if (rc > 0) {
		ok(0, "%s does not redirect", in);
	}
	is_str(rc >= 0 ? out : NULL, want, "%s", in);
	/* The fast path skips only what would come back unchanged. */
	if (path_is_plain(in))
		ok(rc == 0 && !strcmp(out, in), "%s: plain, and unchanged", in);
	if (rc >= 0)
		is_int(n, strlen(want), "%s: length", in);
}

static void test_default(void)
{
	cfg_path_opts_default(&opts);
	norm("/", "/");
	norm("/api/posts", "/api/posts");
	norm("/api/posts?x=1&y=/../admin", "/api/posts?x=1&y=/../admin");
	norm("/api/posts?%zz", "/api/posts?%zz");
	norm("/api//posts", "/api/posts");
	norm("//api///posts/", "/api/posts/");
	norm("/api/./posts", "/api/posts");
	norm("/api/../admin", "/admin");
	norm("/api/../../../admin", "/admin");
	norm("/api/posts/..", "/api/");
	norm("/api/.", "/api/");
	norm("/..", "/");
	norm("/.", "/");
	norm("/a/b/c/./../../g", "/a/g");
	norm("/a//..", "/a/");
	norm("/api/%2e%2e/admin", "/admin");
	norm("/api/%2E%2e/admin", "/admin");
	norm("/api/.%2e/admin", "/admin");
	norm("/api\\..\\admin", "/admin");
	norm("/admin\\..\\api\\x", "/api/x");
	norm("/admin/./../api/x", "/api/x");
	norm("/admin/../api/x", "/api/x");
	norm("/admin/%2e%2e/api/x", "/api/x");
	norm("/%61pi/posts", "/api/posts");
	norm("/api/a%20b", "/api/a%20b");
	norm("/api/%7euser", "/api/~user");
	norm("/api/%3b", "/api/%3B");
	norm("/api/%c3%a9", "/api/%C3%A9");
	norm("/admin;jsessionid=1", "/admin;jsessionid=1");
	norm("/api/posts;x=1/42", "/api/posts;x=1/42");
	norm("/...", "/...");
	norm("/..a/b", "/..a/b");
	/* refused: cannot be made unambiguous */
	norm("/admin%2f..%2fapi/x", NULL);
	norm("/admin%2F..%2Fapi/x", NULL);
	norm("/admin%5c..%5capi/x", NULL);
	norm("/api/a%2fb", NULL);
	norm("/admin/..;/api/x", NULL);
	norm("/admin/.;x/api", NULL);
	norm("/admin/%2e%2e;/api/x", NULL);
	norm("/api/%zz", NULL);
	norm("/api/%2", NULL);
	norm("/api/%", NULL);
	norm("/api/%00", NULL);
	norm("/api/#frag", NULL);
	norm("/api?q=#frag", NULL);
	{
		static const char nul[] = "/a\0b";
		char out[8];
		size_t n;

		ok(path_normalize(nul, 4, &opts, out, &n) < 0, "a raw NUL is refused");
	}
	/* idempotent */
	{
		static const char *const in[] = { "/a/./b/../c//d/", "/x/%2e%2E/y/%41", "\\a\\..\\b", "/a/b/..", NULL };

		for (unsigned i = 0; in[i]; i++) {
			char a[64], b[64];
			size_t na, nb;

			ok(path_normalize(in[i], strlen(in[i]), &opts, a, &na) >= 0 &&
			   path_normalize(a, na, &opts, b, &nb) >= 0 && !strcmp(a, b), "idempotent: %s", in[i]);
		}
	}
}

static void test_istio_levels(void)
{
	ok(cfg_path_opts_istio("NONE", &opts) == 0, "NONE");
	norm("/a/../b//c%2f", "/a/../b//c%2f");
	norm("/a/..;/b", "/a/..;/b");
	norm("/a/%zz", "/a/%zz");
	norm("/a/%00", NULL);

	ok(cfg_path_opts_istio("BASE", &opts) == 0 && opts.normalize && !opts.merge_slashes, "BASE");
	norm("/a/../b", "/b");
	norm("\\da", "/da");
	norm("/a//b", "/a//b");
	norm("/admin%2f..%2fapi/x", "/admin%2F..%2Fapi/x");
	norm("/a/..;/b", NULL);

	ok(cfg_path_opts_istio("DEFAULT", &opts) == 0 && opts.normalize, "DEFAULT is BASE");

	ok(cfg_path_opts_istio("MERGE_SLASHES", &opts) == 0 && opts.merge_slashes, "MERGE_SLASHES");
	norm("/a//b", "/a/b");
	norm("/a%2f%2fb", "/a%2F%2Fb");

	ok(cfg_path_opts_istio("DECODE_AND_MERGE_SLASHES", &opts) == 0, "DECODE_AND_MERGE_SLASHES");
	norm("/a%2fb", "/a/b");
	norm("/a%2F%2Fb", "/a/b");
	norm("/admin%2f..%2fapi/x", "/api/x");
	norm("/admin%5c..%5capi/x", "/api/x");
	norm("/a%2fb?c%2fd", "/a/b?c%2fd");

	ok(cfg_path_opts_istio("STRICT", &opts) == -EINVAL, "unknown level refused");
}

static void test_envoy_actions(void)
{
	opts = (struct path_opts){ .normalize = false, .escaped_slashes = PATH_SLASHES_FORWARD };
	norm("/a%2fb%5Cc", "/a/b\\c");
	opts = (struct path_opts){ .normalize = true, .escaped_slashes = PATH_SLASHES_REDIRECT };
	norm("/a%2fb", "307 /a/b");
	norm("/a%2f..%2fb?x", "307 /b?x");
	norm("/a/b", "/a/b");
	opts = (struct path_opts){ .normalize = true, .escaped_slashes = PATH_SLASHES_REJECT };
	norm("/a%2fb", NULL);
	norm("/a%5Cb", NULL);
	norm("/a/b", "/a/b");
	opts = (struct path_opts){ .normalize = false, .merge_slashes = true };
	norm("//a//b/../c", "/a/b/../c");
}

static void test_plain(void)
{
	ok(path_is_plain("/api/posts?x=/../a//b%zz"), "plain: the query is not looked at");
	ok(path_is_plain("/a/b/"), "plain: trailing slash");
	ok(path_is_plain("/a.b/c..d"), "plain: dots inside segments");
	ok(!path_is_plain("/a/./b"), "not plain: dot segment");
	ok(!path_is_plain("/.well-known/x"), "not plain: a segment starting with a dot (checked the slow way)");
	ok(!path_is_plain("/a//b"), "not plain: //");
	ok(!path_is_plain("/a%41"), "not plain: an escape");
	ok(!path_is_plain("/a\\b"), "not plain: a backslash");
	ok(!path_is_plain("/a?b#c"), "not plain: a fragment, even after the query");
}

int main(void)
{
	test_plain();
	test_default();
	test_istio_levels();
	test_envoy_actions();
	return done_testing();
}
