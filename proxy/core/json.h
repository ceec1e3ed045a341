/* JSON writing: one string escaper, which emits valid UTF-8, and a small
 * writer of objects and arrays into an evbuffer. */
#ifndef WM_JSON_H
#define WM_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct evbuffer;

/* The most json_put_str writes for len input bytes: the quotes, and six bytes
 * per byte (a control byte as \u00XX, an invalid one as \ufffd). */
static inline size_t json_str_max(size_t len)
{
	return 2 + 6 * len;
}

/* Writes s (len bytes, NULs included) at d as a quoted JSON string and
 * returns the end; d must have room for json_str_max(len). Well-formed UTF-8
 * is copied as it is; '"', '\\' and control bytes (and DEL) are escaped,
 * \b \f \n \r \t in short form; each maximal ill-formed subpart (a bad lead or
 * lone continuation byte, a truncated sequence, an overlong form, a
 * surrogate, a code point past U+10FFFF) becomes \ufffd, as a strict decoder
 * would read it. */
char *json_put_str(char *d, const char *s, size_t len);
/* json_put_str() without the quotes (room: json_str_max(len) - 2), for a
 * string written in pieces. */
char *json_put_body(char *d, const char *s, size_t len);

#define JSON_NUM_MAX 40

/* A decimal number (as YAML writes one: "2", "-1.50", "1e3") as JSON
 * writes it, shortest first ("1.5", "1000"), into out; false when s is not
 * one (hex, inf, nan, trailing text). */
bool json_number_text(const char *s, char out[JSON_NUM_MAX]);

/* A FieldMask, as Envoy's /config_dump?mask= takes one: paths separated by
 * commas, each a list of field names separated by dots. */
#define JSON_MASK_PATHS	16
#define JSON_MASK_PARTS	8
struct json_mask {
	unsigned n;
	struct json_mask_path {
		const char *part[JSON_MASK_PARTS];
		unsigned nparts;
	} path[JSON_MASK_PATHS];
};

/* Splits s in place into m (its names point into s); empty paths are
 * skipped, as protobuf's FieldMaskUtil reads them. 0, or -EINVAL for an
 * empty field name ("a..b"), more than JSON_MASK_PATHS paths or a path of
 * more than JSON_MASK_PARTS names. */
int json_mask_parse(struct json_mask *m, char *s);
/* Whether the first name of every path is one of fields (NULL-terminated):
 * whether the mask can apply to a message with those fields. */
bool json_mask_fits(const struct json_mask *m, const char *const *fields);

/* How deep below a masked object the writer tracks the paths; deeper
 * members are kept whole. */
#define JSON_MASK_DEPTH	24

/* A writer into an evbuffer. indent 0 writes compact JSON ("k":v,...);
 * otherwise each member goes on its own line, indented that many spaces per
 * level, with "k": v. Write failures are kept in err, not returned by each call. */
struct json_w {
	struct evbuffer *out;
	unsigned indent;
	unsigned depth;
	bool first;			/* no member written yet at this depth */
	bool after_key;			/* a key was just written; the value follows inline */
	int err;			/* 0, or -ENOMEM once a write failed */
	/* json_mask_begin(): the mask and the depth of the object it applies
	 * to; per open container from there down, the paths (bits of
	 * mask->path) still leading somewhere and how many of their names
	 * were matched (JSON_MASK_KEEP: a path ended above, all is kept). */
	const struct json_mask *mask;
	unsigned mask_depth;
	unsigned skip_depth;		/* > 0: the member being written at this depth is dropped */
	struct json_mask_lv {
		uint32_t paths;
		unsigned used;
	} mask_lv[JSON_MASK_DEPTH], mask_next;	/* mask_next: for the value of the key just written */
};
#define JSON_MASK_KEEP	0x80000000u

void json_init(struct json_w *w, struct evbuffer *out, unsigned indent);
/* 0 when everything was written, or -ENOMEM. */
int json_done(const struct json_w *w);

/* Applies m (NULL: none) below the object json_open() just opened, until it
 * closes: a member is written when a path names it, all of it when the path
 * ends there, else only what the rest of the path names in it; an array
 * hands the rest of the paths to each of its elements (protobuf's masks stop
 * at repeated fields: a superset). "@type", an Any's type, is always kept. */
void json_mask_begin(struct json_w *w, const struct json_mask *m);

/* '{' or '[' opens, '}' or ']' closes; an empty one is written on one line. */
void json_open(struct json_w *w, char c);
void json_close(struct json_w *w, char c);
/* A member's key; its value follows with any of the value calls below. */
void json_key(struct json_w *w, const char *k);
/* A key and an object or array opened as its value. */
void json_kopen(struct json_w *w, const char *k, char c);

/* Values. json_str(NULL) writes null. json_raw writes text as it is (a
 * number, or null/true/false, formatted by the caller). */
void json_str(struct json_w *w, const char *s);
void json_strn(struct json_w *w, const char *s, size_t len);
void json_uint(struct json_w *w, uint64_t v);
void json_int(struct json_w *w, int64_t v);
void json_bool(struct json_w *w, bool v);
void json_raw(struct json_w *w, const char *text);

/* A key and its value. */
void json_kstr(struct json_w *w, const char *k, const char *v);
/* json_kstr() when v is not NULL; nothing otherwise (an optional field). */
void json_kstr_opt(struct json_w *w, const char *k, const char *v);
void json_kuint(struct json_w *w, const char *k, uint64_t v);
/* A 64-bit integer as proto3 JSON writes it (Envoy's admin.v3 output): a decimal string. */
void json_kuint_str(struct json_w *w, const char *k, uint64_t v);
void json_kint(struct json_w *w, const char *k, int64_t v);
void json_kbool(struct json_w *w, const char *k, bool v);
void json_kraw(struct json_w *w, const char *k, const char *text);
/* A google.protobuf.Duration in proto3 JSON: "5s", "0.250s". */
void json_kduration_ms(struct json_w *w, const char *k, uint64_t ms);
/* A google.protobuf.Timestamp in proto3 JSON (RFC 3339, UTC), from
 * microseconds since the epoch: "2024-05-01T10:00:00.250Z". */
void json_ktime(struct json_w *w, const char *k, uint64_t wall_us);

#endif
