/* Log lines go to stderr: "berth[pid]: level: message". The daemon runs under
 * init, which adds its own timestamps, so none are written here. A message
 * is always one line: control characters in it are written as '?'. */
#ifndef BERTH_LOG_H
#define BERTH_LOG_H

enum log_level { LOG_LVL_ERROR, LOG_LVL_WARN, LOG_LVL_INFO, LOG_LVL_DEBUG };

void log_set_level(enum log_level level);
enum log_level log_get_level(void);
/* Sets the component shown in each line ("berth", "hub", "shim web"). */
void log_set_name(const char *name);
void log_msg(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_error(...) log_msg(LOG_LVL_ERROR, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_LVL_WARN, __VA_ARGS__)
#define log_info(...) log_msg(LOG_LVL_INFO, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_LVL_DEBUG, __VA_ARGS__)

#endif
