/* Logging to stderr. Lines carry the level and, through the conn/stream helpers,
 * the connection and stream ids. Debug lines compile out unless WM_DEBUG. */
#ifndef WM_LOG_H
#define WM_LOG_H

#include <stdint.h>

/* LOG_LVL_OFF silences even errors (Envoy's "off"). */
enum log_level { LOG_LVL_OFF = -1, LOG_LVL_ERROR, LOG_LVL_WARN, LOG_LVL_INFO, LOG_LVL_DEBUG };

/* Set at start-up (--log-level) and live by the admin's POST /logging, read
 * by every thread: go through log_level_get()/log_level_set(). */
extern enum log_level log_level;

static inline enum log_level log_level_get(void)
{
	return __atomic_load_n(&log_level, __ATOMIC_RELAXED);
}

static inline void log_level_set(enum log_level lvl)
{
	__atomic_store_n(&log_level, lvl, __ATOMIC_RELAXED);
}

/* Parses "error|warn|warning|info|debug"; returns 0 or -EINVAL. */
int log_level_parse(const char *s, enum log_level *out);
/* Parses Envoy's (spdlog's) level names, "trace|debug|info|warning|error|
 * critical|off", onto wingman's: trace → debug, critical → error. */
int log_level_parse_envoy(const char *s, enum log_level *out);
/* The level as Envoy names it: "debug", "info", "warning", "error", "off". */
const char *log_level_name(enum log_level lvl);

void log_msg(enum log_level lvl, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_err(...)  log_msg(LOG_LVL_ERROR, __VA_ARGS__)
#define log_warn(...) do { if (log_level_get() >= LOG_LVL_WARN) log_msg(LOG_LVL_WARN, __VA_ARGS__); } while (0)
#define log_info(...) do { if (log_level_get() >= LOG_LVL_INFO) log_msg(LOG_LVL_INFO, __VA_ARGS__); } while (0)
#ifdef WM_DEBUG
#define LOG_DEBUG_COMPILED 1
#define log_debug(...) do { if (log_level_get() >= LOG_LVL_DEBUG) log_msg(LOG_LVL_DEBUG, __VA_ARGS__); } while (0)
#else
#define LOG_DEBUG_COMPILED 0
#define log_debug(...) do { if (0) log_msg(LOG_LVL_DEBUG, __VA_ARGS__); } while (0)
#endif

#endif
