/* google.protobuf.Struct (struct.proto) on the protobuf wire: what Istio's
 * sidecars exchange as peer metadata (x-envoy-peer-metadata is its base64).
 *
 * Decoding reads untrusted bytes into a tree on an arena and is bounded: at
 * most PBS_MAX_DEPTH Structs and lists nested in each other, at most
 * PBS_MAX_VALUES values in all. As protobuf's parsers do, it skips unknown
 * fields (a known field number with another wire type is one too), takes
 * the last of a repeated key (map) and the last kind set in a Value (oneof),
 * and refuses strings that are not UTF-8 (proto3 string). Groups, field
 * number 0 and truncated input are errors. Where protobuf would merge a
 * message field given twice (a Value's struct_value twice in one Value), the
 * last one wins here: no serializer writes a field twice.
 *
 * Encoding writes fields in the order given, each map entry with its key and
 * value, which is protobuf's deterministic serialization when a Struct's
 * fields are sorted by key (Istio serializes its node metadata that way). */
#ifndef WM_PBSTRUCT_H
#define WM_PBSTRUCT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct arena;

#define PBS_MAX_DEPTH	8	/* Structs and lists nested in each other, the top one included */
#define PBS_MAX_VALUES	1024	/* values (map entries' and lists' items) in one message */

/* Which member of Value's oneof kind is set. */
enum pbs_kind {
	PBS_UNSET,		/* none: an empty Value */
	PBS_NULL,		/* null_value */
	PBS_NUMBER,		/* number_value */
	PBS_STRING,		/* string_value */
	PBS_BOOL,		/* bool_value */
	PBS_STRUCT,		/* struct_value */
	PBS_LIST,		/* list_value */
};

struct pbs_field;

struct pbs_value {
	enum pbs_kind kind;
	union {
		double num;
		bool b;
		struct {
			const char *s;	/* not NUL-terminated; decoded: points into the input */
			size_t len;
		} str;
		struct {
			struct pbs_field *v;
			size_t n;
		} fields;		/* PBS_STRUCT, in wire order */
		struct {
			struct pbs_value *v;
			size_t n;
		} items;		/* PBS_LIST */
	};
};

/* One entry of a Struct's fields map. */
struct pbs_field {
	const char *key;		/* not NUL-terminated; decoded: points into the input */
	size_t klen;
	struct pbs_value val;
};

/* Decodes the Struct in buf[0, len) into *out (kind PBS_STRUCT), allocating
 * on a; strings point into buf, which must outlive the tree. 0, -EINVAL
 * (malformed, too deep, too many values, not UTF-8) or -ENOMEM. */
int pbs_decode(struct arena *a, const uint8_t *buf, size_t len, struct pbs_value *out);

/* The value of key in Struct st (the last entry with that key, as a map
 * keeps it), or NULL when st is not a Struct or has no such key. */
const struct pbs_value *pbs_get(const struct pbs_value *st, const char *key);

/* The string value of key in Struct st, or NULL (and *len 0) when there is
 * none or it is not a string. */
const char *pbs_get_str(const struct pbs_value *st, const char *key, size_t *len);

/* Encodes Struct st into out: the byte count, or -E2BIG when it needs more
 * than cap bytes, -EINVAL when st is not a Struct. */
ssize_t pbs_encode(const struct pbs_value *st, uint8_t *out, size_t cap);

#endif
