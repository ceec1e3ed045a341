/* Small pure helpers: durations, addresses, clocks. */
#ifndef WM_UTIL_H
#define WM_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <time.h>

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* "250ms", "2s", "1.5s", "1m", "1h", "0" → milliseconds. Returns 0 or -EINVAL. */
int util_parse_duration(const char *s, uint64_t *ms);

/* "65535", "64KiB", "1MiB", "1GiB" → bytes. Returns 0 or -EINVAL (also on overflow). */
int util_parse_size(const char *s, uint64_t *bytes);

/* A configured address: "1.2.3.4:80", "[::1]:80", "name.svc:8080", "*:80" is not accepted. */
struct addr_spec {
	char host[256];			/* as written, without brackets */
	uint16_t port;
	bool is_ip;			/* host is a literal IP: ss is filled */
	struct sockaddr_storage ss;
	socklen_t sslen;
};

/* Parses host:port or [v6]:port. Returns 0 or -EINVAL with *why set to a static reason. */
int util_parse_addr(const char *s, struct addr_spec *out, const char **why);

/* Formats "ip:port" / "[ip6]:port" into buf (at least 64 bytes). Returns buf. */
char *util_sockaddr_str(const struct sockaddr *sa, char *buf, size_t len);
/* The same for fd's local address (getsockname); "" when it has none. */
char *util_sock_local_str(int fd, char *buf, size_t len);

/* Says what getopt_long() (opterr 0, optstring starting with ':') found
 * wrong, naming the argument as typed: "PREFIX: unknown option '--frob'",
 * "PREFIX: option '-c' needs a value". ret is what getopt_long() returned
 * ('?' or ':'). Returns 2, the exit status of a command-line error. */
int util_opt_error(const char *prefix, int ret, char *const argv[]);

/* Monotonic clock in microseconds; wall clock in microseconds since the epoch. */
uint64_t util_mono_us(void);
uint64_t util_wall_us(void);

/* Formats v in base 10 or 16 right-aligned ending at buf + 24 (not
 * NUL-terminated); returns the first digit. For hot paths that avoid printf. */
char *util_fmt_u64(char buf[24], uint64_t v, unsigned base);

/* Case-insensitive compare of a counted string with a C string. */
bool util_strieq(const char *a, size_t alen, const char *b);

/* Random 64-bit value from a per-thread xorshift seeded from getrandom(). */
uint64_t util_rand64(void);

/* True with probability pct/100 (pct from 0 to 100). */
bool util_roll_pct(double pct);

/* SipHash-2-4 of len bytes under a 128-bit key: a hash an outsider who does
 * not know the key cannot aim collisions at (table keys chosen by clients). */
uint64_t util_siphash(const uint64_t key[2], const void *data, size_t len);

/* Grows an array of *cap elements of size bytes, full, by doubling it (to
 * first when empty): returns the new array and updates *cap, or NULL on
 * out-of-memory with the old array and *cap untouched. */
void *util_grow(void *v, unsigned *cap, size_t size, unsigned first);

/* What stat() says of a file (through symlinks, so a swapped Kubernetes
 * ..data link shows), or the errno it failed with: two differ when the file
 * was replaced, written or removed. */
struct file_sig {
	dev_t dev;
	ino_t ino;
	off_t size;
	struct timespec mtime, ctime;
	int err;
};
void file_sig_of(const char *path, struct file_sig *s);
bool file_sig_eq(const struct file_sig *a, const struct file_sig *b);

/* Bytes of the well-formed UTF-8 sequence of n bytes (2..4, from its lead
 * byte) at p, or 0 with *bad set to the length of its maximal ill-formed
 * subpart (the lead and the continuation bytes that could still have been
 * part of a character, per Unicode 3.9: no overlong form, surrogate or code
 * point past U+10FFFF). */
size_t util_utf8_seq(const unsigned char *p, const unsigned char *end, size_t n, size_t *bad);

/* What util_utf8_fix() writes for s (len bytes): len when s is valid UTF-8,
 * more when ill-formed subparts become U+FFFD (3 bytes each). */
size_t util_utf8_fixed_len(const char *s, size_t len);

/* Copies s (len bytes, NULs included) to d as valid UTF-8: well-formed
 * characters as they are, each maximal ill-formed subpart as U+FFFD, as a
 * strict decoder reads it (never byte by byte as Latin-1). d has room for
 * util_utf8_fixed_len(s, len); returns the end. */
char *util_utf8_fix(char *d, const char *s, size_t len);

/* Whether s[0, len) is well-formed UTF-8 (RFC 3629: no overlong forms, no
 * surrogates, nothing past U+10FFFF). */
bool util_utf8_valid(const char *s, size_t len);

/* Base64 (RFC 4648): the standard alphabet, or with url the URL-safe one.
 * Encoding pads with '=' and writes a NUL after the text; it returns the
 * text's length, or 0 when it does not fit in cap bytes (NUL included).
 * Decoding ignores trailing '=' (present or not) and returns the byte count,
 * -EINVAL when in is not base64 of that alphabet (stray low bits included),
 * or -E2BIG past cap bytes. */
size_t util_base64_encode(const uint8_t *in, size_t len, char *out, size_t cap);
int util_base64_decode(const char *in, size_t len, bool url, uint8_t *out, size_t cap);

/* Writes a UUIDv4 ("xxxxxxxx-xxxx-4xxx-yxxx-xxxxxxxxxxxx", 36 chars + NUL) to out. */
void util_uuid4(char out[37]);

#endif
