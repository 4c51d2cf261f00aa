/* recover.c - finish or undo, at mount time, what a crash interrupted.
 *
 * Runs before the filesystem is mounted, single-threaded, over every journal found
 * in every datastore's .vdsfs/ (journal.h has the decision table). Each recovered
 * migration gets a registry record so that `vdsctl status` says what happened.
 * A migration whose files cannot be trusted (corrupt differencing file, missing
 * base) is left exactly as found, with a clear log line and a failed record: its
 * file keeps serving from the base alone would be wrong, so the journal stays for
 * a human (vds-diff check explains the differencing file).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "beneath.h"
#include "copier.h"
#include "journal.h"
#include "mig.h"
#include "overlay.h"
#include "vdsfs.h"

static int ds_index(struct vds *v, const char *name)
{
	for (int i = 0; i < v->nds; i++)
		if (!strcmp(v->ds[i].name, name))
			return i;
	return -1;
}

static int read_small(int dfd, const char *name, char *buf, size_t len)
{
	int fd = openat(dfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	ssize_t n;

	if (fd < 0)
		return -errno;
	n = read(fd, buf, len - 1);
	close(fd);
	if (n < 0)
		return -errno;
	buf[n] = 0;
	return 0;
}

/* fsync of the folder that holds path on datastore ds (gone: nothing to sync). */
static int sync_folder(struct vds *v, int ds, const char *path)
{
	char parent[4096];
	int fd, ret;

	vds_parent_path(path, parent, sizeof(parent));
	fd = bn_open(v->ds[ds].fd, parent, O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0);
	if (fd < 0)
		return errno == ENOENT ? 0 : -errno;
	ret = fsync(fd) < 0 ? -errno : 0;
	close(fd);
	return ret;
}

/* Phase "switching": the copy was complete and durable; make it the file. Idempotent:
 * it finishes a switch at whatever step it stopped (mig_switch.c), and leaves alone
 * what is not the migration's: a name the copy would replace, or a source path that
 * no longer holds the migrated inode. */
static int roll_forward(struct vds *v, struct mig *m)
{
	struct datastore *S = &v->ds[m->src], *D = &v->ds[m->dst];
	char tmp[48], parent[4096];
	struct stat st;
	int ret;

	snprintf(tmp, sizeof(tmp), "%s.copy", m->name);
	if (fstatat(D->state_fd, tmp, &st, AT_SYMLINK_NOFOLLOW) == 0) {
		if (bn_fstatat(D->fd, m->path, &st, AT_SYMLINK_NOFOLLOW) == 0)
			return -EEXIST;	/* someone else's file took the name */
		vds_parent_path(m->path, parent, sizeof(parent));
		ret = vds_mkpath(v, m->dst, parent);
		if (ret)
			return ret;
		if (bn_renameat2(D->state_fd, tmp, D->fd, m->path, 0) < 0)
			return -errno;
	} else if (!m->src_ino && bn_fstatat(D->fd, m->path, &st, AT_SYMLINK_NOFOLLOW) < 0) {
		return -ENOENT;	/* an old record: neither copy nor flipped file to trust */
	}
	if (bn_fstatat(S->fd, m->path, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
	    (!m->src_ino || st.st_ino == m->src_ino) && bn_unlinkat(S->fd, m->path, 0) < 0 &&
	    errno != ENOENT)
		return -errno;
	ret = sync_folder(v, m->dst, m->path);
	return ret ? ret : sync_folder(v, m->src, m->path);
}

/* Earlier phases: the source is authoritative; merge the differencing file into it. */
static int roll_back(struct vds *v, struct mig *m, bool preparing, char *why, size_t len)
{
	struct datastore *S = &v->ds[m->src];
	struct overlay_open_opts oo = { .why = why, .why_len = len };
	char diff[48];
	struct overlay *ov;
	int base, dfd, ret;

	snprintf(diff, sizeof(diff), "%s.diff", m->name);
	dfd = openat(S->state_fd, diff, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
	if (dfd < 0)
		return errno == ENOENT ? 0 : -errno;
	if (preparing) {	/* no write ever went to it */
		close(dfd);
		return 0;
	}
	base = bn_open(S->fd, m->path, O_RDWR | O_CLOEXEC | O_NOFOLLOW | O_NOATIME, 0);
	if (base < 0 && errno == EPERM)	/* O_NOATIME is for the owner: see mig_prepare */
		base = bn_open(S->fd, m->path, O_RDWR | O_CLOEXEC | O_NOFOLLOW, 0);
	if (base < 0) {
		ret = -errno;
		snprintf(why, len, "the base %.160s is missing: %s", m->path, strerror(errno));
		close(dfd);
		return ret;
	}
	oo.flags = OVERLAY_OPEN_NO_IDENTITY;	/* a cancel may have written the base */
	ret = overlay_open(base, dfd, &oo, &ov);
	if (!ret) {
		ret = overlay_merge(ov, base);
		overlay_close(ov);
		if (!ret && fdatasync(base) < 0)
			ret = -errno;
		if (ret)
			snprintf(why, len, "merging back into the base failed: %s", strerror(-ret));
	}
	close(base);
	close(dfd);
	return ret;
}

static struct mig *record(struct vds *v, const struct journal_rec *r, int src, int dst)
{
	struct mig *m = mig_new(v, r->path, src, dst, 0);

	if (!m)
		return NULL;
	m->id = r->id;
	m->recovered = true;
	m->ended_ns = m->queued_ns;
	snprintf(m->name, sizeof(m->name), "mig-%llu", (unsigned long long)r->id);
	m->released = true;	/* never queued: no scheduler event names it */
	pthread_mutex_lock(&v->mig_lock);
	mig_register_locked(v, m);
	pthread_mutex_unlock(&v->mig_lock);
	if (r->id >= v->next_mig_id)
		v->next_mig_id = r->id + 1;
	return m;
}

static void recover_one(struct vds *v, int ds, const char *file)
{
	struct journal_rec r;
	char text[8192], why[256] = "";
	int src, dst, ret;
	struct mig *m;

	if (read_small(v->ds[ds].state_fd, file, text, sizeof(text)) || journal_parse(text, &r)) {
		fuse_log(FUSE_LOG_ERR, "vdsfs: %s/.vdsfs/%s: unreadable migration journal, left as is\n",
			 v->ds[ds].path, file);
		return;
	}
	src = ds_index(v, r.src);
	dst = ds_index(v, r.dst);
	if (src != ds || dst < 0) {
		fuse_log(FUSE_LOG_ERR, "vdsfs: %s/.vdsfs/%s: names datastore %s, which is not mounted; left as is\n",
			 v->ds[ds].path, file, src != ds ? r.src : r.dst);
		return;
	}
	m = record(v, &r, src, dst);
	if (!m)
		return;
	m->src_ino = r.src_ino;
	if (!strcmp(r.phase, "switching")) {
		ret = roll_forward(v, m);
		m->phase = ret ? MIG_FAILED : MIG_DONE;
		snprintf(m->msg, sizeof(m->msg), ret ? "recovery could not finish the switch: %s"
						    : "finished the switch after a crash%s",
			 ret ? strerror(-ret) : "");
	} else {
		ret = roll_back(v, m, !strcmp(r.phase, "preparing"), why, sizeof(why));
		m->phase = ret ? MIG_FAILED : MIG_CANCELLED;
		snprintf(m->msg, sizeof(m->msg), ret ? "recovery refused this file: %s"
						    : "rolled back after a crash (was %s)",
			 ret ? why : r.phase);
	}
	m->err = ret;
	pthread_mutex_lock(&v->mig_lock);
	mig_finished_locked(v, m);
	pthread_mutex_unlock(&v->mig_lock);
	fuse_log(ret ? FUSE_LOG_ERR : FUSE_LOG_NOTICE, "vdsfs: migration %llu of %s: %s\n",
		 (unsigned long long)r.id, r.path, m->msg);
	if (!ret && mig_drop_files(m, false))
		snprintf(m->msg + strlen(m->msg), sizeof(m->msg) - strlen(m->msg),
			 "; its leftovers could not all be removed (see the log)");
}

int mig_recover(struct vds *v)
{
	for (int i = 0; i < v->nds; i++) {
		int fd = dup(v->ds[i].state_fd);
		DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
		struct dirent *de;

		if (!d) {
			if (fd >= 0)
				close(fd);
			return -errno;
		}
		while ((de = readdir(d))) {
			size_t l = strlen(de->d_name);

			if (strncmp(de->d_name, "mig-", 4))
				continue;
			if (l > 5 && !strcmp(de->d_name + l - 5, ".json"))
				recover_one(v, i, de->d_name);
			else if (l > 10 && !strcmp(de->d_name + l - 10, ".json.next"))
				unlinkat(v->ds[i].state_fd, de->d_name, 0);	/* never committed */
		}
		closedir(d);
	}
	return 0;
}
