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

/* True when re matches all of s[0, len) (Envoy's route, header and RBAC
 * matchers are full matches). */
bool regex_full_match(const struct regex *re, const char *s, size_t len);

/* True when re matches somewhere in s[0, len) (Envoy's stats filter). */
bool regex_search(const struct regex *re, const char *s, size_t len);

#ifdef __cplusplus
}
#endif

#endif
