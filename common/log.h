/* log.h - one line to the operator, wherever the program sends its log.
 *
 * Libraries and daemon layers log through vds_log() and never choose where it goes:
 * the program does, once, with vds_log_to() (the daemon hands it to libfuse's log
 * in the foreground, to the journal or syslog in the background). Until then lines
 * go to stderr. Priorities are syslog's (LOG_ERR, LOG_WARNING, LOG_NOTICE,
 * LOG_INFO, LOG_DEBUG).
 *
 * The scope. A thread that works for one migration or one datastore says so once
 * (vds_log_scope_set); every line it writes then names them: a sink asks
 * vds_log_scope() and puts them in the line (vds_log_format) and, for the journal,
 * in fields of their own. The scope is per thread (a migration has its thread), so
 * a line never names another thread's migration.
 */
#ifndef VDS_LOG_H
#define VDS_LOG_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <syslog.h>

typedef void (*vds_log_fn)(int prio, const char *fmt, va_list ap);

/* Write one line (fmt ends with its own "\n") at priority prio. */
void vds_log(int prio, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Send every later line to fn (NULL: back to stderr). Call before any thread logs. */
void vds_log_to(vds_log_fn fn);

/* What this thread's lines are about. The strings must outlive the scope. */
struct vds_log_scope {
	uint64_t migration;	/* its id, 0 if none */
	const char *path;	/* the migration's file (as it started), or NULL */
	const char *datastore;	/* the datastore concerned (a migration's source), or NULL */
	const char *to;		/* a migration's destination datastore, or NULL */
};
/* Set (s is copied; NULL clears) this thread's scope. */
void vds_log_scope_set(const struct vds_log_scope *s);
/* This thread's scope, or NULL. */
const struct vds_log_scope *vds_log_scope(void);
/* One line as a sink writes it: the scope ("migration 3 (vm/disk, ds0 -> ds1): "
 * or "datastore ds0: ", nothing without one), then the message less the program's
 * own leading "vdsfs: " (the sink says who speaks) and less its newline. */
void vds_log_format(char *buf, size_t len, const char *fmt, va_list ap);

#endif
