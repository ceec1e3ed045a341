/* RE2 through the C shim: the dialect Istio users write (\d, (?i), POSIX
 * classes), full-match anchoring, what RE2 refuses, and a pattern that
 * backtracking engines take exponential time on, matched at once. */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/regex.h"
#include "t/unit/tap.h"

static bool full(const char *pat, const char *s)
{
	char err[256];
	struct regex *re = regex_new(pat, err, sizeof(err));
	bool m;

	if (!re) {
		printf("# %s: %s\n", pat, err);
		return false;
	}
	m = regex_full_match(re, s, strlen(s));
	regex_free(re);
	return m;
}

static bool refused(const char *pat)
{
	char err[256] = "";
	struct regex *re = regex_new(pat, err, sizeof(err));

	regex_free(re);
	return !re && err[0];
}

int main(void)
{
	char err[256];
	struct regex *re;

	ok(full("/api/\\d+", "/api/123"), "\\d is a digit");
	ok(!full("/api/\\d+", "/api/ddd"), "\\d is not the letter d (POSIX ERE read it so)");
	ok(full("(?i)/API/v1", "/api/V1"), "(?i) folds case");
	ok(full("[[:alpha:]]+-\\w+", "abc-x_1"), "POSIX classes and \\w inside RE2");
	ok(!full("/api", "/api/x"), "full match: a prefix is not a match");
	ok(!full("api/x", "/api/x"), "full match: anchored at the start too");
	ok(full("/a|/b", "/b"), "alternation spans the whole pattern under full match");
	ok(full("\\x{263a}", "\xe2\x98\xba"), "UTF-8 input, a code point by its number");

	ok(refused("(a)\\1"), "backreference refused (RE2, as Istio refuses it)");
	ok(refused("foo(?=bar)"), "lookahead refused");
	ok(refused("[z-a]"), "bad range refused");
	ok(refused("(unclosed"), "unbalanced parenthesis refused");
	ok(refused("a{1001}"), "repeat count over RE2's limit refused");
	ok(refused("((((a{100}){100}){100}){100})"), "oversized program refused");

	re = regex_new("(a+)+$", err, sizeof(err));
	ok(re != NULL, "(a+)+$ compiles");
	if (re) {
		size_t n = 100000;
		char *s = malloc(n + 2);
		clock_t t0 = clock();

		memset(s, 'a', n);
		s[n] = 'b';
		s[n + 1] = '\0';
		ok(!regex_full_match(re, s, n + 1), "catastrophic-backtracking pattern: no match on a*b");
		ok(regex_search(re, s, n), "... and a match on a* (search)");
		/* Linear time: 100 kB in well under a second (backtracking: never). */
		ok((double)(clock() - t0) / CLOCKS_PER_SEC < 2.0, "... both in linear time");
		free(s);
		regex_free(re);
	}

	re = regex_new("cluster\\.\\w+\\.upstream_rq", err, sizeof(err));
	ok(re && regex_search(re, "cluster.be.upstream_rq_total", 28), "search finds a match inside");
	ok(re && !regex_full_match(re, "cluster.be.upstream_rq_total", 28), "... where full match does not");
	regex_free(re);
	regex_free(NULL);
	ok(1, "regex_free(NULL) is a no-op");
	return done_testing();
}
