/* Request path normalisation (path.h). Pure: no allocation, no state.
 *
 * The order is Istio's (security/normalization): escaped slashes first, then
 * RFC 3986 normalisation (unreserved %XX decoded once, other escapes upper-
 * cased, "\" read as "/", dot-segments removed), then merged slashes. */
#include <errno.h>
#include <string.h>

#include "http/path.h"

bool path_is_plain(const char *in)
{
	const char *p = in;

	for (; *p && *p != '?'; p++) {
		if (*p == '%' || *p == '\\' || *p == '#' || (*p == '/' && (p[1] == '/' || p[1] == '.')))
			return false;
	}
	return !strchr(p, '#');
}

static int hexval(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c |= 0x20;
	return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

static bool unreserved(int c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '-' || c == '.' || c == '_' || c == '~';
}

/* "." or ".." before any ";params": what a segment means to servers that
 * strip path parameters (Tomcat, Jetty) and not to others. */
static int dot_kind(const char *s, size_t n, bool *params)
{
	size_t eff = 0;

	while (eff < n && s[eff] != ';')
		eff++;
	*params = eff < n;
	if (eff == 1 && s[0] == '.')
		return 1;
	if (eff == 2 && s[0] == '.' && s[1] == '.')
		return 2;
	return 0;
}

/* RFC 3986 5.2.4 over in[0..len) (starts with '/') into out; empty segments
 * are kept. out may be in. Returns the new length, or -EINVAL for a
 * dot-segment with parameters. */
static int remove_dot_segments(const char *in, size_t len, char *out)
{
	size_t r = 0, w = 0;

	while (r < len) {
		size_t s = r + 1, e = s;
		bool params, last;
		int dots;

		while (e < len && in[e] != '/')
			e++;
		last = e == len;
		dots = dot_kind(in + s, e - s, &params);
		if (dots && params)
			return -EINVAL;
		if (dots == 2) {
			while (w > 0 && out[w - 1] != '/')
				w--;
			if (w > 0)
				w--;
		}
		if (dots) {
			if (last)
				out[w++] = '/';
		} else {
			out[w++] = '/';
			memmove(out + w, in + s, e - s);
			w += e - s;
		}
		r = e;
	}
	if (!w)
		out[w++] = '/';
	return (int)w;
}

int path_normalize(const char *in, size_t len, const struct path_opts *o, char *out, size_t *outlen)
{
	size_t plen = 0, w = 0;
	int res = 0;

	while (plen < len && in[plen] != '?')
		plen++;
	if (memchr(in, '#', len) || memchr(in, '\0', len))
		return -EINVAL;
	for (size_t r = 0; r < plen; r++) {
		unsigned char c = (unsigned char)in[r];
		int hi, lo, d;

		if (c == '\\' && o->normalize) {
			out[w++] = '/';
			continue;
		}
		if (c != '%') {
			out[w++] = (char)c;
			continue;
		}
		if (r + 2 >= plen || (hi = hexval((unsigned char)in[r + 1])) < 0 ||
		    (lo = hexval((unsigned char)in[r + 2])) < 0) {
			if (o->normalize)
				return -EINVAL;
			out[w++] = '%';
			continue;
		}
		d = hi << 4 | lo;
		if (d == 0)
			return -EINVAL;
		if (d == '/' || d == '\\') {
			switch (o->escaped_slashes) {
			case PATH_SLASHES_REJECT:
				return -EINVAL;
			case PATH_SLASHES_REDIRECT:
				res |= PATH_RES_REDIRECT;
				/* fall through */
			case PATH_SLASHES_FORWARD:
				out[w++] = d == '/' || o->normalize ? '/' : '\\';
				r += 2;
				continue;
			}
		}
		if (o->normalize && unreserved(d)) {
			out[w++] = (char)d;
		} else {
			out[w++] = '%';
			out[w++] = o->normalize ? "0123456789ABCDEF"[hi] : in[r + 1];
			out[w++] = o->normalize ? "0123456789ABCDEF"[lo] : in[r + 2];
		}
		r += 2;
	}
	if (o->normalize && w && out[0] == '/') {
		int n = remove_dot_segments(out, w, out);

		if (n < 0)
			return n;
		w = (size_t)n;
	}
	if (o->merge_slashes) {
		size_t m = 0;

		for (size_t r = 0; r < w; r++)
			if (out[r] != '/' || !m || out[m - 1] != '/')
				out[m++] = out[r];
		w = m;
	}
	memcpy(out + w, in + plen, len - plen);
	w += len - plen;
	out[w] = '\0';
	*outlen = w;
	return res;
}
