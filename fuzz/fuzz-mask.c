/* A /config_dump?mask= FieldMask (core/json.h): parsed, then applied to a
 * nested document with objects in arrays, Any types and scalars of every
 * kind, and the output checked to be balanced JSON whatever the mask keeps,
 * so a mask can only drop members, never break the reply. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "core/json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void doc(struct json_w *w, int depth)
{
	json_kstr(w, "@type", "type.googleapis.com/x");
	json_kstr(w, "name", "n");
	json_kuint(w, "port_value", 8080);
	json_kbool(w, "b", true);
	json_kraw(w, "r", "null");
	if (depth > 3)
		return;
	json_kopen(w, "cluster", '{');
	doc(w, depth + 1);
	json_close(w, '}');
	json_kopen(w, "items", '[');
	for (int i = 0; i < 2; i++) {
		json_open(w, '{');
		doc(w, depth + 1);
		json_close(w, '}');
		json_str(w, "s");
	}
	json_close(w, ']');
	json_kopen(w, "empty", '{');
	json_close(w, '}');
}

/* Brackets outside strings balance and never go below zero. */
static int balanced(const char *s, size_t n)
{
	int depth = 0;
	int in_str = 0;

	for (size_t i = 0; i < n; i++) {
		if (in_str) {
			if (s[i] == '\\')
				i++;
			else if (s[i] == '"')
				in_str = 0;
		} else if (s[i] == '"') {
			in_str = 1;
		} else if (s[i] == '{' || s[i] == '[') {
			depth++;
		} else if (s[i] == '}' || s[i] == ']') {
			if (--depth < 0)
				return 0;
		}
	}
	return depth == 0 && !in_str;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct evbuffer *out;
	struct json_mask m;
	struct json_w w;
	char *s = malloc(size + 1);

	if (!s)
		abort();
	memcpy(s, data, size);
	s[size] = '\0';
	if (json_mask_parse(&m, s) == 0 && (out = evbuffer_new())) {
		json_init(&w, out, size & 1);
		json_open(&w, '[');
		json_open(&w, '{');
		json_mask_begin(&w, &m);
		doc(&w, 0);
		json_close(&w, '}');
		json_close(&w, ']');
		if (!json_done(&w) &&
		    !balanced((const char *)evbuffer_pullup(out, -1), evbuffer_get_length(out)))
			abort();
		evbuffer_free(out);
	}
	free(s);
	return 0;
}
