/* service.c - see service.h.
 *
 * The OOM score: when vdsfs dies every VM on the mount gets EIO, while the kernel
 * would rather kill the daemon (small, steady) than the guest that ate the memory.
 * So as root it opts out (-1000), as fuse-migratefs's unit does with
 * OOMScoreAdjust=; -o oom_score_adj= says otherwise, and a unit's OOMScoreAdjust=
 * is overridden only when root: a unit that wants another value says it with
 * the option.
 *
 * The log: journald's native protocol keeps the names a line is about as fields
 * (journalctl VDSFS_MIGRATION=3), and the text names them too (log.h's scope), so
 * plain syslog loses nothing but the fields.
 */
#include <errno.h>
#include <fcntl.h>
#include <fuse_log.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/uio.h>
#include <systemd/sd-daemon.h>
#include <systemd/sd-journal.h>
#include <unistd.h>

#include "errmsg.h"
#include "log.h"
#include "service.h"

static int write_oom(int value)
{
	char buf[16];
	int fd = open("/proc/self/oom_score_adj", O_WRONLY | O_CLOEXEC), n, ret = 0;

	if (fd < 0)
		return -errno;
	n = snprintf(buf, sizeof(buf), "%d\n", value);
	if (write(fd, buf, (size_t)n) != n)
		ret = -errno;
	close(fd);
	return ret;
}

int service_protect(bool set, int value, char *err, size_t len)
{
	int ret;

	if (!set && geteuid() != 0)
		return 0;
	ret = write_oom(set ? value : VDS_OOM_ROOT_DEFAULT);
	if (ret && set)
		return vds_err(err, len, ret, "oom_score_adj=%d: cannot write /proc/self/oom_score_adj: %s",
			       value, strerror(-ret));
	if (ret)
		vds_log(LOG_WARNING, "vdsfs: cannot set oom_score_adj to %d (%s): the OOM killer may "
			"pick the daemon\n", VDS_OOM_ROOT_DEFAULT, strerror(-ret));
	return 0;
}

static const char *log_mnt = "";

/* A field for the journal, "KEY=value", in buf. */
static void field(struct iovec *iov, int *n, char *buf, size_t len, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, len, fmt, ap);
	va_end(ap);
	iov[*n].iov_base = buf;
	iov[*n].iov_len = strlen(buf);
	(*n)++;
}

static void journal_line(int prio, const char *line)
{
	const struct vds_log_scope *s = vds_log_scope();
	char msg[4200], f[8][600];
	struct iovec iov[9];
	int n = 0;

	field(iov, &n, msg, sizeof(msg), "MESSAGE=%s", line);
	field(iov, &n, f[n], sizeof(f[n]), "PRIORITY=%d", prio);
	field(iov, &n, f[n], sizeof(f[n]), "SYSLOG_IDENTIFIER=vdsfs");
	field(iov, &n, f[n], sizeof(f[n]), "VDSFS_MOUNT=%s", log_mnt);
	if (s && s->migration)
		field(iov, &n, f[n], sizeof(f[n]), "VDSFS_MIGRATION=%" PRIu64, s->migration);
	if (s && s->datastore)
		field(iov, &n, f[n], sizeof(f[n]), "VDSFS_DATASTORE=%s", s->datastore);
	if (s && s->to)
		field(iov, &n, f[n], sizeof(f[n]), "VDSFS_TO=%s", s->to);
	if (s && s->path)
		field(iov, &n, f[n], sizeof(f[n]), "VDSFS_PATH=%s", s->path);
	/* No journal listening (no systemd, a container): syslog, same text. */
	if (sd_journal_sendv(iov, n) < 0)
		syslog(prio, "%s", line);
}

static void log_background(int prio, const char *fmt, va_list ap)
{
	char line[4096];

	vds_log_format(line, sizeof(line), fmt, ap);
	journal_line(prio, line);
}

static void fuse_background(enum fuse_log_level level, const char *fmt, va_list ap)
{
	char line[4096];
	size_t n;

	vsnprintf(line, sizeof(line), fmt, ap);
	n = strlen(line);
	while (n && line[n - 1] == '\n')
		line[--n] = 0;
	journal_line((int)level, line);	/* libfuse's levels are syslog's */
}

void service_log_background(const char *mnt)
{
	log_mnt = mnt;
	openlog("vdsfs", LOG_PID, LOG_DAEMON);
	vds_log_to(log_background);
	fuse_set_log_func(fuse_background);
}

void service_ready(const char *mnt, int nds, bool forked)
{
	if (forked)
		sd_notifyf(0, "READY=1\nMAINPID=%lu\nSTATUS=serving %d datastores at %s",
			   (unsigned long)getpid(), nds, mnt);
	else
		sd_notifyf(0, "READY=1\nSTATUS=serving %d datastores at %s", nds, mnt);
}

void service_stopping(void)
{
	sd_notify(0, "STOPPING=1\nSTATUS=unmounting");
}
