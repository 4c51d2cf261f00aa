/* log.h - one line to the operator, wherever the program sends its log.
 *
 * Libraries and daemon layers log through vds_log() and never choose where it goes:
 * the program does, once, with vds_log_to() (the daemon hands it to libfuse's log,
 * or to syslog when it runs in the background). Until then lines go to stderr.
 * Priorities are syslog's (LOG_ERR, LOG_WARNING, LOG_NOTICE, LOG_INFO, LOG_DEBUG).
 */
#ifndef VDS_LOG_H
#define VDS_LOG_H

#include <stdarg.h>
#include <syslog.h>

typedef void (*vds_log_fn)(int prio, const char *fmt, va_list ap);

/* Write one line (fmt ends with its own "\n") at priority prio. */
void vds_log(int prio, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Send every later line to fn (NULL: back to stderr). Call before any thread logs. */
void vds_log_to(vds_log_fn fn);

#endif
