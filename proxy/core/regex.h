/* Regular expressions in RE2's dialect, the one Envoy's safe_regex and
 * Istio's `regex:` fields use (\d, (?i), [[:alpha:]], no backreferences or
 * lookaround), matched in time linear in the input whatever the pattern.
 * A small C shim over Debian's libre2 (regex.cc). A compiled regex is
 * immutable: worker threads match it concurrently without locks. */
#ifndef WM_REGEX_H
#define WM_REGEX_H

#include <stdbool.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

struct regex;

/* Programs larger than this are refused, as Istio sets Envoy's
 * re2.max_program_size.error_level: a bound on the memory and time one
 * pattern may cost. */
#define REGEX_MAX_PROGRAM_SIZE 32768

/* Compiles pattern. NULL on error, with a message in err (RE2's, or why the
 * pattern is too large) when errlen > 0. */
struct regex *regex_new(const char *pattern, char *err, size_t errlen);

void regex_free(struct regex *re);

/* The pattern re was compiled from (for /config_dump). */
const char *regex_source(const struct regex *re);

/* True when re matches all of s[0, len) (Envoy's route, header and RBAC
 * matchers are full matches). */
bool regex_full_match(const struct regex *re, const char *s, size_t len);

/* True when re matches somewhere in s[0, len) (Envoy's stats filter). */
bool regex_search(const struct regex *re, const char *s, size_t len);

/* Where a capture group matched: s[start, end); start is -1 when the group
 * took no part in the match. */
struct regex_span {
	long start, end;
};

#define REGEX_MAX_GROUPS 8

/* regex_search that also says where capture groups 1..n (n at most
 * REGEX_MAX_GROUPS) matched, in sub[0..n); groups the pattern lacks read -1. */
bool regex_search_groups(const struct regex *re, const char *s, size_t len, struct regex_span *sub, unsigned n);

#ifdef __cplusplus
}
#endif

#endif
