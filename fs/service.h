/* service.h - what a service manager and an operator see of the daemon: its OOM
 * score, its readiness (sd_notify), and where its log goes.
 *
 * Order in main(): service_protect before the mount (a refusal leaves nothing
 * mounted), service_log_background right after daemonizing, service_ready once the
 * mount is up and the control socket accepts, service_stopping when a signal
 * arrives. Without $NOTIFY_SOCKET the notifications do nothing.
 */
#ifndef VDS_SERVICE_H
#define VDS_SERVICE_H

#include <stdbool.h>
#include <stddef.h>

#define VDS_OOM_ROOT_DEFAULT	(-1000)

/* oom_score_adj: the value asked for (set), else VDS_OOM_ROOT_DEFAULT when root,
 * else nothing. 0, or -errno with one line in err when an asked value cannot be
 * written; a root default that cannot be written (a container that forbids it) is
 * logged and not fatal. */
int service_protect(bool set, int value, char *err, size_t len);

/* From now on log lines go to the journal (fields VDSFS_MOUNT, VDSFS_MIGRATION,
 * VDSFS_DATASTORE, VDSFS_TO, VDSFS_PATH besides the text), or to syslog where no
 * journal listens; libfuse's own lines too. mnt must outlive the daemon's log. */
void service_log_background(const char *mnt);

/* READY=1 (with MAINPID when we forked away from the process systemd started) and
 * a STATUS= line. */
void service_ready(const char *mnt, int nds, bool forked);
void service_stopping(void);

#endif
