/* The YAML tree: node positions, scalars, anchors/aliases and the errors
 * yaml_load reports with FILE:LINE:COL. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/arena.h"
#include "config/cfg.h"
#include "config/ytree.h"
#include "t/unit/tap.h"

static struct arena *a;

static struct ynode *load(const char *text, struct cfg_errs *e)
{
	cfg_errs_init(e, "t.yaml");
	return yaml_load(a, text, strlen(text), e);
}

/* Loads text expecting failure with exactly one message, want. */
static void load_fails(const char *text, const char *want, const char *what)
{
	struct cfg_errs e;
	struct ynode *n = load(text, &e);

	ok(n == NULL, "%s: refused", what);
	is_int(e.n, 1, "%s: one error", what);
	is_str(e.n ? e.msgs[0] : NULL, want, "%s: message", what);
	cfg_errs_free(&e);
}

static void test_positions(void)
{
	struct cfg_errs e;
	struct ynode *root, *l, *v;

	root = load("# comment\n"
		    "node: { id: web-0, cluster: 'c' }\n"
		    "listeners:\n"
		    "  - name: inbound\n"
		    "    address: \"0.0.0.0:15006\"\n"
		    "    empty:\n"
		    "    tilde: ~\n"
		    "    quoted_empty: ''\n", &e);
	ok(root && root->type == YN_MAP, "root is a map");
	is_int(e.n, 0, "no errors");
	is_int(root->n, 2, "two top-level keys");
	is_int(root->items[0]->line, 2, "first key line");
	is_int(root->items[0]->col, 1, "first key col");
	v = yaml_get(root, "node");
	ok(v && v->type == YN_MAP && v->n == 2, "flow map");
	is_int(v->line, 2, "flow map line");
	is_int(v->col, 7, "flow map col (at the brace)");
	v = yaml_get(v, "cluster");
	is_str(v->str, "c", "single-quoted scalar text");
	ok(!v->plain, "quoted scalar is not plain");
	is_int(v->col, 29, "quoted scalar col (at the quote)");
	l = yaml_get(root, "listeners");
	ok(l && l->type == YN_SEQ && l->n == 1, "block sequence");
	is_int(l->line, 4, "sequence line");
	is_int(l->col, 3, "sequence col (at the dash)");
	is_int(l->items[0]->line, 4, "item map line");
	is_int(l->items[0]->col, 5, "item map col (at its first key)");
	v = yaml_get(l->items[0], "address");
	is_str(v->str, "0.0.0.0:15006", "double-quoted scalar");
	is_int(v->line, 5, "scalar line");
	is_int(v->col, 14, "scalar col");
	v = yaml_get(l->items[0], "name");
	ok(v->plain && v->len == 7, "plain scalar and its length");
	v = yaml_get(l->items[0], "empty");
	ok(v && v->type == YN_SCALAR && v->plain && v->len == 0, "empty value is a plain empty scalar");
	v = yaml_get(l->items[0], "tilde");
	ok(v && v->plain && !strcmp(v->str, "~"), "tilde kept as plain ~");
	v = yaml_get(l->items[0], "quoted_empty");
	ok(v && !v->plain && v->len == 0, "quoted empty string is not null");
	ok(yaml_get(root, "absent") == NULL, "yaml_get of an absent key");
	ok(yaml_get(l, "name") == NULL, "yaml_get on a sequence");
	cfg_errs_free(&e);
}

static void test_anchors(void)
{
	struct cfg_errs e;
	struct ynode *root, *x, *y;

	root = load("base: &b { k: 1 }\n"
		    "copy: *b\n"
		    "list: [&s one, *s]\n", &e);
	ok(root != NULL, "anchors and aliases load");
	x = yaml_get(root, "base");
	y = yaml_get(root, "copy");
	ok(x && x == y, "alias points at the anchored node");
	x = yaml_get(root, "list");
	ok(x && x->n == 2 && x->items[0] == x->items[1], "scalar alias");
	cfg_errs_free(&e);

	load_fails("a: *nope\n", "t.yaml:1:4: unknown anchor \"nope\" (an alias must follow its complete anchored node)",
		   "unknown alias");
	load_fails("a: &x [1, *x]\n",
		   "t.yaml:1:11: unknown anchor \"x\" (an alias must follow its complete anchored node)",
		   "recursive alias");
	load_fails("base: &b { k: 1 }\nother:\n  <<: *b\n", "t.yaml:3:3: merge keys (<<) are not supported",
		   "merge key");
}

/* 64 levels of collections load; the 65th is refused where it opens, before
 * libyaml scans on (its flow scanning is quadratic in the depth). */
static void test_depth(void)
{
	enum { DEEP = 100000 };
	char *text = malloc(3 + 2 * DEEP + 2), *p = text;
	struct cfg_errs e;
	struct ynode *root;
	char want[96];

	p += sprintf(p, "a: ");
	memset(p, '[', 63);
	memset(p + 63, ']', 63);
	strcpy(p + 126, "\n");
	root = load(text, &e);
	ok(root && root->n == 1 && root->items[1]->type == YN_SEQ, "63 flow sequences in a map: 64 levels load");
	cfg_errs_free(&e);

	memset(p, '[', DEEP);
	memset(p + DEEP, ']', DEEP);
	strcpy(p + 2 * DEEP, "\n");
	snprintf(want, sizeof(want), "t.yaml:1:%d: collections nested deeper than 64 levels", 3 + 64);
	load_fails(text, want, "100000 nested flow sequences");

	p = text;
	for (int i = 0; i < 65; i++)
		p += sprintf(p, "%*sk:\n", i, "");
	load_fails(text, "t.yaml:65:65: collections nested deeper than 64 levels", "65 nested block maps");
	free(text);
}

static void test_errors(void)
{
	struct cfg_errs e;
	struct ynode *root;

	load_fails("a: 1\nb:\n  c: 2\n  c: 3\n", "t.yaml:4:3: duplicate key \"c\" (first at line 3)", "duplicate key");
	load_fails("a: 1\n---\nb: 2\n", "t.yaml:2:1: only one YAML document is allowed", "two documents");
	load_fails("a: [1, 2\nb: 3\n",
		   "t.yaml:2:2: did not find expected ',' or ']' while parsing a flow sequence (started at line 1)",
		   "unterminated flow sequence");
	load_fails("a:\n  b: 1\n c: 2\n",
		   "t.yaml:3:2: did not find expected key while parsing a block mapping (started at line 1)",
		   "bad indentation");
	load_fails("a:\n\tb: 1\n",
		   "t.yaml:2:1: found character that cannot start any token while scanning for the next token (started at line 2)",
		   "tab indentation");
	load_fails("? [a, b]\n: 1\n", "t.yaml:1:3: map keys must be plain strings", "complex key");
	test_depth();

	root = load("", &e);
	ok(root && root->type == YN_MAP && root->n == 0, "empty text is an empty map");
	cfg_errs_free(&e);
	root = load("# only a comment\n", &e);
	ok(root && root->type == YN_MAP && root->n == 0, "comment-only text is an empty map");
	cfg_errs_free(&e);
	root = load("---\n", &e);
	ok(root && root->type == YN_MAP && root->n == 0, "empty document is an empty map");
	cfg_errs_free(&e);
	root = load("- 1\n", &e);
	ok(root && root->type == YN_SEQ, "a sequence root is returned as is");
	cfg_errs_free(&e);
}

int main(void)
{
	a = arena_new(4096);
	test_positions();
	test_anchors();
	test_errors();
	arena_free(a);
	return done_testing();
}
