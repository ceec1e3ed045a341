// The RE2 shim behind regex.h. No exception leaves it: RE2 reports errors by
// status, and allocation goes through nothrow new.
#include <new>
#include <stdio.h>

#include <re2/re2.h>

#include "core/regex.h"

struct regex {
	re2::RE2 re;
	explicit regex(const char *pattern, const re2::RE2::Options &o) : re(pattern, o) {}
};

static re2::RE2::Options options()
{
	re2::RE2::Options o;

	o.set_log_errors(false);	// errors go to the caller, who names the file and line
	return o;
}

struct regex *regex_new(const char *pattern, char *err, size_t errlen)
{
	struct regex *r = new (std::nothrow) regex(pattern, options());

	if (!r) {
		if (errlen)
			snprintf(err, errlen, "out of memory");
		return nullptr;
	}
	if (!r->re.ok()) {
		if (errlen)
			snprintf(err, errlen, "%s", r->re.error().c_str());
		delete r;
		return nullptr;
	}
	if (r->re.ProgramSize() > REGEX_MAX_PROGRAM_SIZE) {
		if (errlen)
			snprintf(err, errlen, "pattern too large (program size %d, at most %d)", r->re.ProgramSize(),
				 REGEX_MAX_PROGRAM_SIZE);
		delete r;
		return nullptr;
	}
	return r;
}

void regex_free(struct regex *re)
{
	delete re;
}

const char *regex_source(const struct regex *re)
{
	return re->re.pattern().c_str();
}

bool regex_full_match(const struct regex *re, const char *s, size_t len)
{
	return re2::RE2::FullMatch(re2::StringPiece(s, len), re->re);
}

bool regex_search(const struct regex *re, const char *s, size_t len)
{
	return re2::RE2::PartialMatch(re2::StringPiece(s, len), re->re);
}

bool regex_search_groups(const struct regex *re, const char *s, size_t len, struct regex_span *sub, unsigned n)
{
	re2::StringPiece text(s, len), m[REGEX_MAX_GROUPS + 1];
	unsigned have = static_cast<unsigned>(re->re.NumberOfCapturingGroups());

	if (have > n)
		have = n;
	if (have > REGEX_MAX_GROUPS || !re->re.Match(text, 0, len, re2::RE2::UNANCHORED, m, static_cast<int>(have + 1)))
		return false;
	for (unsigned i = 0; i < n; i++) {
		sub[i].start = sub[i].end = -1;
		if (i < have && m[i + 1].data()) {
			sub[i].start = m[i + 1].data() - s;
			sub[i].end = sub[i].start + static_cast<long>(m[i + 1].size());
		}
	}
	return true;
}
