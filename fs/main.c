/* main.c - vdsfs: mount several datastores as one namespace.
 *
 * Order matters: everything that can be refused (options, datastore and mountpoint
 * layout, the per-datastore ownership lock, libfuse's own options) is checked before
 * the mount, so bad input leaves nothing mounted and exits 1 with one line on stderr.
 * Worker threads start only after daemonizing, since fork() keeps only the caller.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "control.h"
#include "control_path.h"
#include "log.h"
#include "loop.h"
#include "metrics.h"
#include "mig.h"
#include "mountinfo.h"
#include "ns.h"
#include "opts.h"
#include "service.h"
#include "store.h"
#include "vfs.h"

/* The daemon: every layer, built bottom up (store, ns, migs, control, vfs) and
 * torn down top down. */
struct vds {
	struct vds_opts opts;
	struct store store;
	struct migs *migs;
	struct control ctl;
	struct metrics_file metrics;	/* -o metrics=, path NULL if none */
	struct vfs vfs;
	struct fuse_session *se;
	const char *mnt;		/* the canonical mountpoint */
	struct ns ns;			/* last: it is large */
};

static int stop_pipe[2] = { -1, -1 };

static void on_signal(int sig)
{
	char c = (char)sig;

	if (write(stop_pipe[1], &c, 1) < 0)
		return;
}

static int die(const char *msg)
{
	fprintf(stderr, "vdsfs: %s\n", msg);
	return 1;
}

static int open_datastores(struct vds *v, const char *mnt, char *err, size_t len)
{
	struct store *s = &v->store;
	char *canon[VDS_MAX_DS] = { 0 };
	const char *names[VDS_MAX_DS];
	int ret = 0, n = v->opts.nds;

	for (int i = 0; i < n && !ret; i++) {
		names[i] = v->opts.ds[i].name;
		ret = ds_canonicalize(names[i], v->opts.ds[i].path, &canon[i], err, len);
	}
	if (!ret)
		ret = ds_check_layout(canon, names, n, mnt, err, len);
	for (int i = 0; i < n && !ret; i++) {
		ret = ds_open(&s->ds[i], names[i], canon[i], err, len);
		s->nds = i + 1;
		if (v->opts.create == VDS_CREATE_NAMED && !strcmp(names[i], v->opts.create_name))
			s->create_named = i;
	}
	for (int i = 0; i < n; i++)
		free(canon[i]);
	return ret;
}

static int check_mountpoint(const char *mp, char **canon, char *err, size_t len)
{
	char type[64];
	struct stat st;

	*canon = realpath(mp, NULL);
	if (!*canon) {
		snprintf(err, len, "mountpoint %s: %s", mp, strerror(errno));
		return -errno;
	}
	if (stat(*canon, &st) < 0 || !S_ISDIR(st.st_mode)) {
		snprintf(err, len, "mountpoint %s is not a directory", mp);
		return -ENOTDIR;
	}
	/* A second vdsfs stacked on the first would hide every file it serves, open
	 * VM disks included; one vdsfs per mountpoint, as per datastore. */
	mount_type_of(*canon, true, type, sizeof(type));
	if (!strcmp(type, "fuse.vdsfs")) {
		snprintf(err, len, "mountpoint %s is already a vdsfs mount; unmount it first", mp);
		return -EBUSY;
	}
	return 0;
}

static struct fuse_session *new_session(struct vds *v, const char *argv0)
{
	struct fuse_lowlevel_ops ops;
	size_t len = strlen(v->opts.fuse_opts) + 64;
	char *o = malloc(len);
	char *args[] = { (char *)argv0, "-o", o, v->opts.debug ? "-d" : NULL, NULL };
	struct fuse_args fa = FUSE_ARGS_INIT(v->opts.debug ? 4 : 3, args);
	struct fuse_session *se;

	if (!o)
		return NULL;
	/* default_permissions: the kernel checks access as the caller; without it a
	 * root daemon would let any user of an allow_other mount read every file. */
	snprintf(o, len, "fsname=vdsfs,subtype=vdsfs,default_permissions%s%s",
		 v->opts.fuse_opts[0] ? "," : "", v->opts.fuse_opts);
	vfs_ops(&ops);
	se = fuse_session_new(&fa, &ops, sizeof(ops), &v->vfs);
	fuse_opt_free_args(&fa);
	free(o);
	return se;
}

static void raise_nofile(void)
{
	struct rlimit rl;

	/* One O_PATH fd per inode the kernel caches, plus open handles. */
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

static void install_signals(void)
{
	struct sigaction sa = { .sa_handler = on_signal };

	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
}

/* libfuse's log, so that -d and a foreground daemon print where they always did. */
static void log_to_fuse(int prio, const char *fmt, va_list ap)
{
	char line[2560];

	vds_log_format(line, sizeof(line), fmt, ap);
	fuse_log(prio <= LOG_ERR ? FUSE_LOG_ERR : prio == LOG_WARNING ? FUSE_LOG_WARNING :
		 prio == LOG_NOTICE ? FUSE_LOG_NOTICE : FUSE_LOG_INFO, "vdsfs: %s\n", line);
}

/* Threads start here, after daemonizing. Shutdown order: no new requests (unmount,
 * workers joined), no new control requests, then migrations stop where they are and
 * leave their journals for the next mount. */
static enum loop_uring loop_uring_of(enum vds_io_uring u)
{
	return u == VDS_IO_URING_ON ? LOOP_URING_ON : u == VDS_IO_URING_OFF ? LOOP_URING_OFF :
	       LOOP_URING_AUTO;
}

static int serve(struct vds *v)
{
	struct vds_loop *lp = NULL;
	char c;
	int ret = migs_start(v->migs);

	if (!ret)
		ret = control_start(&v->ctl);
	if (!ret && v->metrics.path)
		ret = metrics_file_start(&v->metrics);
	if (!ret)
		ret = loop_start(v->se, &(struct loop_conf){ .threads = v->opts.threads,
			.uring = loop_uring_of(v->opts.io_uring),
			.sync_io = v->opts.sync_io }, stop_pipe[1], &lp);
	if (ret) {
		vds_log(LOG_ERR, "vdsfs: cannot start: %s\n", strerror(-ret));
		fuse_session_unmount(v->se);
		if (lp)
			loop_free(lp);
		return 1;
	}
	/* Ready: the mount is up, the workers read it, the control socket accepts. */
	service_ready(v->mnt, v->store.nds, !v->opts.foreground);
	while (read(stop_pipe[0], &c, 1) < 0 && errno == EINTR)
		;
	service_stopping();
	/* Workers first: fuse_session_unmount closes the fd they read from. Until
	 * the unmount, requests wait in the kernel; then they fail with ENOTCONN. */
	fuse_session_exit(v->se);
	loop_stop(lp);
	fuse_session_unmount(v->se);
	loop_free(lp);
	control_stop(&v->ctl);
	metrics_file_stop(&v->metrics);	/* it reads the records migs_shutdown frees */
	migs_shutdown(v->migs);
	metrics_file_write(&v->metrics);	/* the last file: every migration stopped */
	return 0;
}

static int setup_control(struct vds *v, const char *mnt, char *err, size_t len)
{
	char path[256];
	int ret = 0;

	if (!v->opts.control)
		ret = control_default_path(mnt, path, sizeof(path));
	if (ret == -ENAMETOOLONG)
		snprintf(err, len, "mountpoint path too long for a default control socket; use -o control=");
	else if (ret)
		snprintf(err, len, "no default control socket for %s: %s", mnt, strerror(-ret));
	if (ret)
		return ret;
	if (v->opts.control_group) {
		ret = control_group_resolve(v->opts.control_group, &v->ctl.gid, err, len);
		if (ret)
			return ret;
		v->ctl.group = true;
	}
	return control_open(&v->ctl, v->opts.control ? v->opts.control : path, !v->opts.control,
			    err, len);
}

/* Top down: what a layer uses is freed after it. */
static void vds_free(struct vds *v)
{
	control_stop(&v->ctl);
	metrics_file_stop(&v->metrics);
	if (v->migs)
		migs_shutdown(v->migs);
	metrics_file_free(&v->metrics);
	if (v->se)
		fuse_session_destroy(v->se);
	migs_free(v->migs);
	ns_destroy(&v->ns);
	store_close(&v->store);
	opts_free(&v->opts);
	free(v);
}

static int vds_init(struct vds *v)
{
	v->store.create_named = -1;
	v->store.root = geteuid() == 0;
	ns_init(&v->ns, &v->store);
	control_init(&v->ctl, &v->store, NULL);
	return migs_new(&v->store, &v->ns, &v->migs);
}

int main(int argc, char **argv)
{
	struct vds *v = calloc(1, sizeof(*v));
	char err[VDS_ERR_LEN] = "";
	char *mnt = NULL;
	int ret;

	if (!v || vds_init(v))
		return die("out of memory");
	vds_log_to(log_to_fuse);
	v->ctl.migs = v->migs;
	ret = opts_parse(&v->opts, argc, argv, err, sizeof(err));
	if (!ret && v->opts.help)
		opts_usage(argv[0]);
	if (!ret && v->opts.version)
		printf("vdsfs %s (libfuse %d)\n", VDS_VERSION, fuse_version());
	if (!ret && (v->opts.help || v->opts.version))
		goto out;
	v->store.create = v->opts.create;
	v->vfs = (struct vfs){ .store = &v->store, .ns = &v->ns, .migs = v->migs,
			       .timeout = v->opts.timeout };
	if (!ret)
		ret = check_mountpoint(v->opts.mountpoint, &mnt, err, sizeof(err));
	v->store.mountpoint = mnt;
	if (!ret)
		ret = open_datastores(v, mnt, err, sizeof(err));
	migs_set_resume(v->migs, !v->opts.no_resume);
	if (!ret)
		ret = migs_recover(v->migs);	/* before anyone can see the files */
	if (!ret)
		ret = setup_control(v, mnt, err, sizeof(err));
	if (!ret && v->opts.metrics)
		ret = metrics_file_open(&v->metrics, &v->store, v->migs, v->opts.metrics,
					v->opts.metrics_interval, err, sizeof(err));
	if (ret) {
		if (!err[0])
			snprintf(err, sizeof(err), "recovery failed: %s", strerror(-ret));
		ret = die(err);
		goto out;
	}
	umask(0);	/* the kernel already applied the caller's umask */
	raise_nofile();
	if (pipe2(stop_pipe, O_CLOEXEC) < 0) {
		ret = die("cannot create a pipe");
		goto out;
	}
	v->se = new_session(v, argv[0]);
	if (!v->se) {
		ret = 1;	/* libfuse printed why */
		goto out;
	}
	/* Last before the mount: every refusal of bad input came first, alone. */
	if (service_protect(v->opts.oom_set, v->opts.oom_score_adj, err, sizeof(err))) {
		ret = die(err);
		goto out;
	}
	install_signals();
	if (v->opts.io_uring == VDS_IO_URING_ON && !loop_uring_offered()) {
		ret = die("io_uring=on, but the kernel does not offer FUSE over io_uring "
			  "(/sys/module/fuse/parameters/enable_uring is not Y)");
		goto out;
	}
	if (fuse_session_mount(v->se, mnt)) {
		ret = die("mount failed");
		goto out;
	}
	if (fuse_daemonize(v->opts.foreground)) {
		fuse_session_unmount(v->se);
		ret = 1;
		goto out;
	}
	v->mnt = mnt;
	if (!v->opts.foreground)
		service_log_background(mnt);
	for (int i = 0; i < v->store.nds; i++)
		ds_write_pid(&v->store.ds[i]);
	ret = serve(v);
out:
	free(mnt);
	vds_free(v);
	return ret;
}
