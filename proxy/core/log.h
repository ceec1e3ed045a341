/* Logging to stderr. Lines carry the level and, through the conn/stream helpers,
 * the connection and stream ids. Debug lines compile out unless WM_DEBUG. */
#ifndef WM_LOG_H
#define WM_LOG_H

#include <stdint.h>

enum log_level { LOG_LVL_ERROR, LOG_LVL_WARN, LOG_LVL_INFO, LOG_LVL_DEBUG };

extern enum log_level log_level;

/* Parses "error|warn|warning|info|debug"; returns 0 or -EINVAL. */
int log_level_parse(const char *s, enum log_level *out);

void log_msg(enum log_level lvl, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_err(...)  log_msg(LOG_LVL_ERROR, __VA_ARGS__)
#define log_warn(...) do { if (log_level >= LOG_LVL_WARN) log_msg(LOG_LVL_WARN, __VA_ARGS__); } while (0)
#define log_info(...) do { if (log_level >= LOG_LVL_INFO) log_msg(LOG_LVL_INFO, __VA_ARGS__); } while (0)
#ifdef WM_DEBUG
#define log_debug(...) do { if (log_level >= LOG_LVL_DEBUG) log_msg(LOG_LVL_DEBUG, __VA_ARGS__); } while (0)
#else
#define log_debug(...) do { if (0) log_msg(LOG_LVL_DEBUG, __VA_ARGS__); } while (0)
#endif

#endif
