/* Log lines go to stderr with one write(2) each, so lines from different
 * threads never interleave (a pipe keeps writes up to PIPE_BUF atomic; longer
 * lines are truncated to stay below it). */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "core/log.h"

#define LOG_LINE_MAX 4096

enum log_level log_level = LOG_LVL_INFO;

static const char *const level_names[] = {
	[LOG_LVL_ERROR] = "error",
	[LOG_LVL_WARN] = "warn",
	[LOG_LVL_INFO] = "info",
	[LOG_LVL_DEBUG] = "debug",
};

int log_level_parse(const char *s, enum log_level *out)
{
	if (!strcasecmp(s, "error"))
		*out = LOG_LVL_ERROR;
	else if (!strcasecmp(s, "warn") || !strcasecmp(s, "warning"))
		*out = LOG_LVL_WARN;
	else if (!strcasecmp(s, "info"))
		*out = LOG_LVL_INFO;
	else if (!strcasecmp(s, "debug"))
		*out = LOG_LVL_DEBUG;
	else
		return -EINVAL;
	return 0;
}

int log_level_parse_envoy(const char *s, enum log_level *out)
{
	if (!strcmp(s, "trace") || !strcmp(s, "debug"))
		*out = LOG_LVL_DEBUG;
	else if (!strcmp(s, "info"))
		*out = LOG_LVL_INFO;
	else if (!strcmp(s, "warning"))
		*out = LOG_LVL_WARN;
	else if (!strcmp(s, "error") || !strcmp(s, "critical"))
		*out = LOG_LVL_ERROR;
	else if (!strcmp(s, "off"))
		*out = LOG_LVL_OFF;
	else
		return -EINVAL;
	return 0;
}

const char *log_level_name(enum log_level lvl)
{
	static const char *const envoy_names[] = {
		[LOG_LVL_ERROR] = "error", [LOG_LVL_WARN] = "warning", [LOG_LVL_INFO] = "info",
		[LOG_LVL_DEBUG] = "debug",
	};

	return lvl < LOG_LVL_ERROR || lvl > LOG_LVL_DEBUG ? "off" : envoy_names[lvl];
}

void log_msg(enum log_level lvl, const char *fmt, ...)
{
	char line[LOG_LINE_MAX];
	struct timespec ts;
	struct tm tm;
	va_list ap;
	size_t len;
	int n;

	if (lvl > log_level_get())
		return;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	n = snprintf(line, sizeof(line), "[%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ] [%s] ",
		     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
		     ts.tv_nsec / 1000000, level_names[lvl]);
	len = (size_t)n;
	va_start(ap, fmt);
	n = vsnprintf(line + len, sizeof(line) - len, fmt, ap);
	va_end(ap);
	if (n > 0)
		len += (size_t)n < sizeof(line) - len ? (size_t)n : sizeof(line) - len - 1;
	while (len > 0 && line[len - 1] == '\n')
		len--;
	line[len++] = '\n';
	while (write(STDERR_FILENO, line, len) < 0 && errno == EINTR)
		;
}
