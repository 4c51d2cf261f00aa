/* sched_copy.c -- the scheduler's ready-made run: copy one file.
 *
 * Each running copy gets a thread of its own that calls copier_copy_at()
 * (the engine is synchronous by design, and at most max_running of these
 * exist). The job's cancel flag is the engine's cancel flag, so
 * sched_cancel() needs no cancel callback. The limiters of the source and
 * destination datastores are appended to the caller's, so every copy
 * touching a datastore shares its budget.
 *
 * Ownership: struct copy_impl (with private copies of the spec's strings)
 * lives from sched_submit_copy() to release, which the scheduler thread
 * calls after sched_job_done(); release joins the copy thread first, and the
 * thread touches nothing after sched_job_done().
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"
#include "scheduler.h"

struct copy_impl {
	struct sched_copy_spec spec;     /* strings point to our copies */
	char *src_rel, *dst_rel, *final_rel;
	pthread_t thread;
	bool thread_started;
};

static void add_limiter(struct copier_opts *o, struct copier_limiter *lim)
{
	int i;

	for (i = 0; i < COPIER_MAX_LIMITERS && lim; i++) {
		if (o->limiters[i] == lim)
			return;
		if (!o->limiters[i]) {
			o->limiters[i] = lim;
			return;
		}
	}
}

static void copy_progress(void *arg, const struct copier_progress *p)
{
	sched_job_progress(arg, p);
}

/* Rename into place and make the rename durable. */
static int install(struct copy_impl *c, struct copier_result *res)
{
	const struct sched_copy_spec *sp = &c->spec;

	if (renameat(sp->dst_dirfd, sp->dst_rel, sp->dst_dirfd, sp->final_rel) < 0 ||
	    fsync(sp->dst_dirfd) < 0) {
		res->err = -errno;
		snprintf(res->msg, sizeof(res->msg), "installing %s: %s", sp->final_rel,
			 strerror(errno));
		return res->err;
	}
	return 0;
}

static void *copy_thread(void *arg)
{
	struct sched_job *job = arg;
	struct copy_impl *c = sched_job_impl(job);
	struct sched *s = sched_job_sched(job);
	struct copier_opts o = c->spec.opts;
	struct copier_result res;
	int r;

	add_limiter(&o, sched_ds_limiter(s, sched_job_src(job)));
	add_limiter(&o, sched_ds_limiter(s, sched_job_dst(job)));
	o.cancel = sched_job_cancel_flag(job);
	o.progress = copy_progress;
	o.progress_arg = job;
	o.no_space_check = true;  /* the precheck did it before "started" */
	r = copier_copy_at(c->spec.src_dirfd, c->spec.src_rel, c->spec.dst_dirfd,
			   c->spec.dst_rel, &o, &res);
	if (!r && c->final_rel)
		r = install(c, &res);
	sched_job_done(job, r, res.msg);
	return NULL;
}

static void copy_run(struct sched_job *job)
{
	struct copy_impl *c = sched_job_impl(job);
	int r = pthread_create(&c->thread, NULL, copy_thread, job);

	c->thread_started = r == 0;
	if (r)
		sched_job_done(job, -r, "cannot start copy thread");
}

static int copy_precheck(struct sched_job *job, char *msg, size_t len)
{
	struct copy_impl *c = sched_job_impl(job);
	const struct sched_copy_spec *sp = &c->spec;
	int fd, r;

	fd = openat(sp->src_dirfd, sp->src_rel, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		r = -errno;
		snprintf(msg, len, "opening source %s: %s", sp->src_rel, strerror(errno));
		return r;
	}
	r = sp->opts.no_space_check ? 0 :
		copier_check_space(fd, sp->dst_dirfd, sp->dst_rel,
				   sp->opts.space_margin ? sp->opts.space_margin : 64ull << 20,
				   msg, len);
	close(fd);
	return r;
}

static void copy_release(struct sched_job *job)
{
	struct copy_impl *c = sched_job_impl(job);

	if (c->thread_started)
		pthread_join(c->thread, NULL);
	free(c->src_rel);
	free(c->dst_rel);
	free(c->final_rel);
	free(c);
}

static const struct sched_job_ops copy_ops = {
	.run = copy_run,
	.precheck = copy_precheck,
	.release = copy_release,
};

uint64_t sched_submit_copy(struct sched *s, uint32_t src_ds, uint32_t dst_ds,
			   const char *name, const struct sched_copy_spec *spec,
			   void *user)
{
	struct copy_impl *c = calloc(1, sizeof(*c));
	uint64_t id = 0;

	if (!c)
		return 0;
	c->spec = *spec;
	c->src_rel = strdup(spec->src_rel);
	c->dst_rel = strdup(spec->dst_rel);
	c->final_rel = spec->final_rel ? strdup(spec->final_rel) : NULL;
	if (c->src_rel && c->dst_rel && (c->final_rel || !spec->final_rel)) {
		c->spec.src_rel = c->src_rel;
		c->spec.dst_rel = c->dst_rel;
		c->spec.final_rel = c->final_rel;
		id = sched_submit_impl(s, src_ds, dst_ds, name, &copy_ops, user, c);
	}
	if (!id) {
		free(c->src_rel);
		free(c->dst_rel);
		free(c->final_rel);
		free(c);
	}
	return id;
}
