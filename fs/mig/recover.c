/* recover.c - finish or undo, at mount time, what a crash interrupted.
 *
 * Runs before the filesystem is mounted, single-threaded, over every journal found
 * in every datastore's .vdsfs/ (journal.h has the decision table). Each recovered
 * migration gets a registry record so that `vdsctl status` says what happened.
 * A migration whose files cannot be trusted (corrupt differencing file) is left
 * exactly as found, with a clear log line and a failed record: its file serving from
 * the base alone would be wrong, so the journal stays for a human (vds-diff check
 * explains the differencing file).
 *
 * The journal names the file's path, but a rename may have moved the file after
 * its record was last written (the record follows a rename only once the rename is
 * done: registry.c, mig_sync_journals). Where the path no longer holds the migrated
 * inode, the source datastore is searched for that inode: found, the file was
 * renamed and recovery acts on it where it is now; not found, the file was removed
 * (or replaced) during the migration and there is nothing left to recover.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "beneath.h"
#include "copier.h"
#include "journal.h"
#include "log.h"
#include "mig_int.h"
#include "overlay.h"
#include "paths.h"

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
static int sync_folder(struct mig *m, int ds, const char *path)
{
	char parent[4096];
	int fd, ret;

	vds_parent_path(path, parent, sizeof(parent));
	fd = bn_open(m->g->store->ds[ds].fd, parent, O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0);
	if (fd < 0)
		return errno == ENOENT ? 0 : -errno;
	ret = fsync(fd) < 0 ? -errno : 0;
	close(fd);
	return ret;
}

/* Depth-first search of dir (rel its path, "" for the top) for the regular file
 * with inode ino: 1 and its path in out, 0 if none. */
static int find_inode_in(int dir, const char *rel, ino_t ino, char *out, size_t len, int depth)
{
	int fd = dup(dir);
	DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
	struct dirent *de;
	int found = 0;

	if (!d) {
		if (fd >= 0)
			close(fd);
		return 0;
	}
	while (!found && (de = readdir(d))) {
		char sub[4096];
		struct stat st;

		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..") ||
		    (!depth && !strcmp(de->d_name, VDS_STATE_DIR)))
			continue;
		if (snprintf(sub, sizeof(sub), "%s%s%s", rel, *rel ? "/" : "", de->d_name) >=
		    (int)sizeof(sub) || fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
			continue;
		if (S_ISREG(st.st_mode) && st.st_ino == ino) {
			snprintf(out, len, "%s", sub);
			found = 1;
		} else if (S_ISDIR(st.st_mode)) {
			int child = openat(dirfd(d), de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);

			if (child >= 0) {
				found = find_inode_in(child, sub, ino, out, len, depth + 1);
				close(child);
			}
		}
	}
	closedir(d);
	return found;
}

/* Does m->path on the source still name the migrated inode? If the record says
 * which inode that is and the path holds another (or nothing), look for the inode
 * elsewhere on the source: 1 with m->path updated if found there, 0 if the file is
 * gone. Without a recorded inode (an old record) the path is trusted: 1. */
static int locate_source(struct mig *m)
{
	const struct datastore *S = &m->g->store->ds[m->src];
	char found[4096];
	struct stat st;

	if (!m->src_ino ||
	    (bn_fstatat(S->fd, m->path, &st, AT_SYMLINK_NOFOLLOW) == 0 && st.st_ino == m->src_ino))
		return 1;
	if (!find_inode_in(S->fd, "", m->src_ino, found, sizeof(found), 0))
		return 0;
	vds_log(LOG_NOTICE, "vdsfs: %s: %s was renamed to %s before the crash\n", m->name, m->path,
		found);
	snprintf(m->path, sizeof(m->path), "%s", found);
	return 1;
}

/* Phase "switching": the copy was complete and durable; make it the file.
 * Idempotent: it finishes a switch at whatever step it stopped (mig_switch.c), and
 * leaves alone what is not the migration's: a name the copy would replace, or a
 * source path that no longer holds the migrated inode. *gone is set when the file
 * was removed before its flip: nothing to finish, the copy is dropped. */
static int roll_forward(struct mig *m, bool *gone)
{
	const struct datastore *S = &m->g->store->ds[m->src], *D = &m->g->store->ds[m->dst];
	char tmp[48], parent[4096];
	struct stat st;
	int ret;

	snprintf(tmp, sizeof(tmp), "%s.copy", m->name);
	if (fstatat(D->state_fd, tmp, &st, AT_SYMLINK_NOFOLLOW) == 0) {
		/* Not flipped yet: only if the file still exists is there one to flip. */
		if (!locate_source(m)) {
			*gone = true;
			return 0;
		}
		if (bn_fstatat(D->fd, m->path, &st, AT_SYMLINK_NOFOLLOW) == 0)
			return -EEXIST;	/* someone else's file took the name */
		vds_parent_path(m->path, parent, sizeof(parent));
		ret = ns_mkpath(m->g->ns, m->dst, parent);
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
	ret = sync_folder(m, m->dst, m->path);
	return ret ? ret : sync_folder(m, m->src, m->path);
}

/* Earlier phases: the source is authoritative; merge the differencing file into it.
 * *gone: the file was removed during the migration, nothing to merge into. */
static int roll_back(struct mig *m, bool preparing, bool *gone, char *why, size_t len)
{
	const struct datastore *S = &m->g->store->ds[m->src];
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
	if (!locate_source(m)) {
		close(dfd);
		*gone = true;
		return 0;
	}
	base = bn_open(S->fd, m->path, O_RDWR | O_CLOEXEC | O_NOFOLLOW | O_NOATIME, 0);
	if (base < 0 && errno == EPERM)	/* O_NOATIME is for the owner (open_noatime) */
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

/* Phases copying and converging, unless -o resume=off: go on from where the crash
 * left the migration instead of throwing its copy away. The file is routed through
 * its overlay from now on, before the mount makes it visible (its differencing
 * file holds writes the base does not); the migration is queued when the scheduler
 * starts (migs_start). A converging one mirrors into its copy again at once. 0 when
 * resumed; else -errno, why says what stands in the way, and the caller rolls back. */
static int resume(struct mig *m, enum mig_phase phase, char *why, size_t len)
{
	const struct datastore *S = &m->g->store->ds[m->src], *D = &m->g->store->ds[m->dst];
	struct overlay_open_opts oo = { .why = why, .why_len = len };
	char name[48], uuid[64], p[32];
	struct overlay *ov = NULL;
	uint64_t off;
	struct stat st;
	int ret;

	if (!locate_source(m))
		return snprintf(why, len, "the file is gone"), -ENOENT;
	if ((ret = ds_still_there(D)))
		return snprintf(why, len, "datastore %s is not mounted at %s", D->name, D->path), ret;
	ret = bn_open(S->fd, m->path, O_PATH | O_CLOEXEC | O_NOFOLLOW, 0);
	if (ret >= 0) {
		fd_path(ret, p);
		m->base_fd = open_noatime(p, O_RDWR | O_CLOEXEC);	/* as mig_prepare */
		close(ret);
	}
	if (ret < 0 || m->base_fd < 0 || fstat(m->base_fd, &st) < 0)
		return snprintf(why, len, "opening the file: %s", strerror(errno)), -errno;
	snprintf(name, sizeof(name), "%s.copy", m->name);
	if (phase == MIG_COPYING) {
		ret = copier_resume_point(m->base_fd, D->state_fd, name, &off, why, len);
		if (ret == -ESTALE)
			return ret;	/* a checkpoint that cannot be trusted: roll back */
	} else {
		m->copy_fd = openat(D->state_fd, name, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
		if (m->copy_fd < 0)
			return snprintf(why, len, "its copy on %s: %s", D->name, strerror(errno)), -errno;
	}
	snprintf(name, sizeof(name), "%s.diff", m->name);
	m->diff_fd = openat(S->state_fd, name, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
	if (m->diff_fd < 0)
		return snprintf(why, len, "its differencing file: %s", strerror(errno)), -errno;
	snprintf(uuid, sizeof(uuid), "%s:%lu", m->name, (unsigned long)st.st_ino);
	oo.base_uuid = uuid;
	ret = overlay_open(m->base_fd, m->diff_fd, &oo, &ov);
	if (ret)
		return ret;
	if (!(m->queued_path = strdup(m->path)))
		ret = -ENOMEM;
	if (!ret)
		ret = mig_resume_later(m->g, m);
	if (!ret && (ret = mig_bind(m, &st)))
		m->g->npending--;	/* the one just added: nothing is queued for m */
	if (ret) {
		overlay_close(ov);
		return snprintf(why, len, "%s", strerror(-ret)), ret;
	}
	m->src_dev = st.st_dev;
	m->src_ino = st.st_ino;
	m->resumed = true;
	m->resume_phase = phase;
	m->phase = MIG_QUEUED;
	m->ended_ns = 0;
	m->released = false;	/* the scheduler will have a job for it */
	m->journal_phase = (int)phase;
	m->space_check = true;
	mig_route_on(m, ov, phase == MIG_CONVERGING ? m->copy_fd : -1);
	return 0;
}

/* What resume() opened, closed again before a roll back. */
static void unresume(struct mig *m)
{
	int *fds[] = { &m->base_fd, &m->diff_fd, &m->copy_fd };

	for (size_t i = 0; i < sizeof(fds) / sizeof(fds[0]); i++)
		if (*fds[i] >= 0) {
			close(*fds[i]);
			*fds[i] = -1;
		}
}

static struct mig *record(struct migs *g, const struct journal_rec *r, int src, int dst)
{
	struct mig *m = mig_new(g, r->path, src, dst, 0);

	if (!m)
		return NULL;
	m->id = r->id;
	m->recovered = true;
	m->ended_ns = m->queued_ns;
	m->src_ino = (ino_t)r->src_ino;
	snprintf(m->name, sizeof(m->name), "mig-%llu", (unsigned long long)r->id);
	m->released = true;	/* never queued: no scheduler event names it */
	migs_lock(g);
	mig_register_locked(g, m);
	if (r->id >= g->next_id)
		g->next_id = r->id + 1;
	migs_unlock(g);
	return m;
}

static void recover_one(struct migs *g, int ds, const char *file)
{
	const struct store *s = g->store;
	struct journal_rec r;
	char text[8192], why[256] = "";
	bool gone = false;
	int src, dst, ret = 0;
	struct mig *m;

	if (read_small(s->ds[ds].state_fd, file, text, sizeof(text)) || journal_parse(text, &r)) {
		vds_log(LOG_ERR, "vdsfs: %s/.vdsfs/%s: unreadable migration journal, left as is\n",
			s->ds[ds].path, file);
		return;
	}
	src = store_by_name(s, r.src);
	dst = store_by_name(s, r.dst);
	if (src != ds || dst < 0) {
		vds_log(LOG_ERR, "vdsfs: %s/.vdsfs/%s: names datastore %s, which is not mounted; "
			"left as is\n", s->ds[ds].path, file, src != ds ? r.src : r.dst);
		return;
	}
	m = record(g, &r, src, dst);
	if (!m)
		return;
	if (r.phase == MIG_SWITCHING) {
		ret = roll_forward(m, &gone);
		m->phase = ret ? MIG_FAILED : gone ? MIG_CANCELLED : MIG_DONE;
		if (gone)
			snprintf(m->msg, sizeof(m->msg), "the file was removed before its switch: "
				 "nothing to finish after the crash");
		else
			snprintf(m->msg, sizeof(m->msg), ret ? "recovery could not finish the switch: %s"
							    : "finished the switch after a crash%s",
				 ret ? strerror(-ret) : "");
	} else if ((r.phase == MIG_COPYING || r.phase == MIG_CONVERGING) && g->resume &&
		   !(ret = resume(m, r.phase, why, sizeof(why)))) {
		vds_log(LOG_NOTICE, "vdsfs: migration %llu of %s: resumed after a crash (was %s)\n",
			(unsigned long long)r.id, m->path, mig_phase_name(r.phase));
		snprintf(m->msg, sizeof(m->msg), "resumed after a crash (was %s)",
			 mig_phase_name(r.phase));
		return;	/* queued when the scheduler starts; its journal stays */
	} else {
		char note[200] = "";

		if (ret) {	/* a resume that could not proceed */
			snprintf(note, sizeof(note), "could not resume (%.150s); ", why);
			unresume(m);
			why[0] = 0;
		}
		ret = roll_back(m, r.phase == MIG_PREPARING, &gone, why, sizeof(why));
		m->phase = ret ? MIG_FAILED : MIG_CANCELLED;
		if (gone)
			snprintf(m->msg, sizeof(m->msg), "the file was removed during the migration: "
				 "nothing to roll back after the crash");
		else if (ret)
			snprintf(m->msg, sizeof(m->msg), "%srecovery refused this file: %s", note, why);
		else
			snprintf(m->msg, sizeof(m->msg), "%srolled back after a crash (was %s)", note,
				 mig_phase_name(r.phase));
	}
	m->err = ret;
	migs_lock(g);
	mig_finished_locked(g, m);
	migs_unlock(g);
	vds_log(ret ? LOG_ERR : LOG_NOTICE, "vdsfs: migration %llu of %s: %s\n",
		(unsigned long long)r.id, r.path, m->msg);
	if (!ret && mig_drop_files(m, false))
		snprintf(m->msg + strlen(m->msg), sizeof(m->msg) - strlen(m->msg),
			 "; its leftovers could not all be removed (see the log)");
}

int migs_recover(struct migs *g)
{
	const struct store *s = g->store;

	for (int i = 0; i < s->nds; i++) {
		int fd = dup(s->ds[i].state_fd);
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
				recover_one(g, i, de->d_name);
			else if (l > 10 && !strcmp(de->d_name + l - 10, ".json.next"))
				unlinkat(s->ds[i].state_fd, de->d_name, 0);	/* never committed */
		}
		closedir(d);
	}
	return 0;
}
