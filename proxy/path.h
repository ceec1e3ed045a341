/* Request path normalisation: the one path a request is routed by, authorized
 * by and forwarded with (Envoy's HttpConnectionManager normalize_path,
 * merge_slashes and path_with_escaped_slashes_action; Istio's
 * meshConfig.pathNormalization). */
#ifndef WINGMAN_PATH_H
#define WINGMAN_PATH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Envoy's path_with_escaped_slashes_action: what %2F, %2f, %5C and %5c become. */
enum path_escaped_slashes {
	PATH_SLASHES_KEEP,		/* KEEP_UNCHANGED (Envoy's default) */
	PATH_SLASHES_REJECT,		/* REJECT_REQUEST: 400 */
	PATH_SLASHES_REDIRECT,		/* UNESCAPE_AND_REDIRECT: 307 to the unescaped path */
	PATH_SLASHES_FORWARD,		/* UNESCAPE_AND_FORWARD */
};

struct path_opts {
	bool normalize;			/* RFC 3986 6.2.2 + 5.2.4, backslash as slash; Istio BASE */
	bool merge_slashes;		/* "//" → "/" after normalising; Istio MERGE_SLASHES */
	uint8_t escaped_slashes;	/* enum path_escaped_slashes */
};

/* wingman's default: normalised, slashes merged, escaped slashes refused
 * (Istio's MERGE_SLASHES with Envoy's REJECT_REQUEST): the strictest setting
 * that never changes what a request means, so no DENY policy can be walked
 * around by a backend that reads "//" or "%2F" differently. */
void path_opts_default(struct path_opts *o);

/* Istio's path normalisation levels, as meshConfig names them. Returns 0 and
 * fills o, or -EINVAL for an unknown name. */
int path_opts_istio(const char *name, struct path_opts *o);

#define PATH_RES_REDIRECT	0x1	/* escaped slashes were unescaped: answer 307 (REDIRECT only) */

/* Normalises the origin-form target in[0..len) (path, then an optional
 * "?query" kept as it is) into out, which needs len + 1 bytes (the result
 * never grows; out is NUL-terminated, *outlen its length). Whatever the
 * options, a NUL (raw or %00) and a fragment are refused, so are malformed
 * %-escapes and dot-segments carrying ";parameters" ("..;"), which servers
 * read differently, when normalising. Returns PATH_RES_* bits, or -EINVAL
 * when the target cannot be made unambiguous (answer 400). */
int path_normalize(const char *in, size_t len, const struct path_opts *o, char *out, size_t *outlen);

#endif
