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

bool regex_full_match(const struct regex *re, const char *s, size_t len)
{
	return re2::RE2::FullMatch(re2::StringPiece(s, len), re->re);
}

bool regex_search(const struct regex *re, const char *s, size_t len)
{
	return re2::RE2::PartialMatch(re2::StringPiece(s, len), re->re);
}
