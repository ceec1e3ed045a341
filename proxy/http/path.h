/* Request path normalisation: the one path a request is routed by, authorized
 * by and forwarded with (Envoy's HttpConnectionManager normalize_path,
 * merge_slashes and path_with_escaped_slashes_action; Istio's
 * meshConfig.pathNormalization). */
#ifndef WINGMAN_PATH_H
#define WINGMAN_PATH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config/cfg-t.h"

/* True when path_normalize would hand back in unchanged under any options:
 * no '%', '\\', "//" or segment starting with '.' before the query, no '#'.
 * One pass, no copy: what most requests take. */
bool path_is_plain(const char *in);

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
