/* main.c -- vds-copy: cold copies between datastores through the scheduler.
 *
 * For each job the destination's parent directories are created, the copy
 * goes to "relpath.vds-copy-part" (+ ".ckpt" while unfinished) and is renamed
 * to relpath only after it is complete and durable, so a file at relpath is
 * always a whole copy. A later run with the same arguments resumes partial
 * copies from their checkpoints. The engine is told to keep every partial
 * copy; output.c removes those of failed jobs (unless --keep-partial), so an
 * interrupted run (Ctrl-C, SIGKILL) can be resumed and a failed one leaves
 * nothing behind. SIGINT/SIGTERM cancel every job; a signal
 * thread (the others block the signals) does that with plain library calls.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vds-copy.h"

#define PART_SUFFIX ".vds-copy-part"

static int open_datastores(struct vc *vc)
{
	for (unsigned i = 0; i < vc->nds; i++) {
		vc->ds[i].fd = open(vc->ds[i].path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (vc->ds[i].fd < 0) {
			fprintf(stderr, "vds-copy: datastore %s: %s: %s\n", vc->ds[i].name,
				vc->ds[i].path, strerror(errno));
			return -1;
		}
	}
	return 0;
}

/* mkdir -p of rel's parent under root; returns an fd of that directory. */
static int open_parent(int root, const char *rel, const char **base)
{
	char *dup = strdup(rel), *p = dup, *slash;
	int fd = dup ? openat(root, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC) : -1, next;

	while (fd >= 0 && (slash = strchr(p, '/'))) {
		*slash = 0;
		if (*p && mkdirat(fd, p, 0755) < 0 && errno != EEXIST)
			next = -1;
		else
			next = *p ? openat(fd, p, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW) : dup2(fd, fd);
		if (next != fd)
			close(fd);
		fd = next;
		p = slash + 1;
	}
	*base = rel + (p - dup);
	free(dup);
	return fd;
}

static int prepare_job(struct vc *vc, struct vc_job *j)
{
	const char *base;
	struct stat st, dst;

	/* before creating directories on the destination for nothing */
	if (fstatat(vc->ds[j->src].fd, j->rel, &st, 0) < 0) {
		fprintf(stderr, "vds-copy: %s: %s\n", j->label, strerror(errno));
		return -1;
	}
	if (!S_ISREG(st.st_mode)) {
		fprintf(stderr, "vds-copy: %s: not a regular file\n", j->label);
		return -1;
	}
	j->dst_dirfd = open_parent(vc->ds[j->dst].fd, j->rel, &base);
	if (j->dst_dirfd < 0) {
		fprintf(stderr, "vds-copy: %s: cannot create the directory in %s: %s\n",
			j->label, vc->ds[j->dst].name, strerror(errno));
		return -1;
	}
	j->dst_base = strdup(base);
	j->part_base = malloc(strlen(base) + sizeof(PART_SUFFIX));
	if (!j->dst_base || !j->part_base)
		return -1;
	strcpy(j->part_base, base);
	strcat(j->part_base, PART_SUFFIX);
	if (fstatat(j->dst_dirfd, base, &dst, AT_SYMLINK_NOFOLLOW) < 0)
		return 0;
	if (dst.st_dev == st.st_dev && dst.st_ino == st.st_ino) {
		fprintf(stderr, "vds-copy: %s: source and destination are the same file\n", j->label);
		return -1;
	}
	if (!vc->force) {
		fprintf(stderr, "vds-copy: %s: %s already exists in %s (use --force)\n",
			j->label, j->rel, vc->ds[j->dst].name);
		return -1;
	}
	return 0;
}

static int submit_jobs(struct vc *vc, struct sched *s)
{
	struct sched_copy_spec spec;
	int bad = 0;

	for (unsigned i = 0; i < vc->njobs; i++) {
		struct vc_job *j = &vc->jobs[i];

		if (prepare_job(vc, j)) {
			bad++;
			continue;
		}
		spec = (struct sched_copy_spec){
			.src_dirfd = vc->ds[j->src].fd, .src_rel = j->rel,
			.dst_dirfd = j->dst_dirfd, .dst_rel = j->part_base,
			.final_rel = j->dst_base, .opts = vc->copy,
		};
		j->id = sched_submit_copy(s, j->src, j->dst, j->label, &spec, j);
		if (!j->id) {
			fprintf(stderr, "vds-copy: %s: out of memory\n", j->label);
			bad++;
		}
	}
	return bad;
}

struct sig_ctx {
	struct vc *vc;
	struct sched *s;
	sigset_t set;
};

static void *signal_thread(void *arg)
{
	struct sig_ctx *c = arg;
	int sig;

	if (sigwait(&c->set, &sig) == 0 && sig != SIGUSR1) {
		fprintf(stderr, "\nvds-copy: %s, cancelling\n", strsignal(sig));
		for (unsigned i = 0; i < c->vc->njobs; i++)
			if (c->vc->jobs[i].id)
				sched_cancel(c->s, c->vc->jobs[i].id);
	}
	return NULL;
}

static void set_rates(struct vc *vc, struct sched *s)
{
	for (unsigned i = 0; i < vc->nds; i++) {
		uint64_t r = vc->ds[i].rate ? vc->ds[i].rate : vc->bwlimit_all;

		if (r)
			sched_set_ds_rate(s, i, r);
	}
}

static int run(struct vc *vc)
{
	struct sched_opts so = { .max_running = vc->parallel, .per_ds = vc->per_ds,
				 .on_event = vc_on_event, .event_arg = vc };
	struct sig_ctx sc = { .vc = vc };
	pthread_t sig_thr;
	struct sched *s;
	int bad;

	/* A shell without job control starts background commands with SIGINT
	 * ignored, and an ignored signal never reaches sigwait(). */
	signal(SIGINT, SIG_DFL);
	signal(SIGTERM, SIG_DFL);
	sigemptyset(&sc.set);
	sigaddset(&sc.set, SIGINT);
	sigaddset(&sc.set, SIGTERM);
	sigaddset(&sc.set, SIGUSR1);  /* ends the signal thread */
	pthread_sigmask(SIG_BLOCK, &sc.set, NULL);
	s = sched_new(&so);
	if (!s)
		return fprintf(stderr, "vds-copy: cannot start the scheduler\n"), 1;
	sc.s = s;
	set_rates(vc, s);
	vc->t0_ns = vc_now_ns();
	bad = submit_jobs(vc, s);
	pthread_create(&sig_thr, NULL, signal_thread, &sc);
	sched_wait_idle(s);
	pthread_kill(sig_thr, SIGUSR1);
	pthread_join(sig_thr, NULL);
	sched_free(s);
	vc_print_summary(vc);
	return bad || vc->failed || vc->cancelled ? 1 : 0;
}

int main(int argc, char **argv)
{
	static struct vc vc;
	int r = vc_parse_args(&vc, argc, argv);

	if (r == VC_HELP)
		vc_usage(stdout);
	else if (r == VC_VERSION)
		printf("vds-copy %s\n", VDS_VERSION);
	if (r)
		return r > 0 ? 0 : 2;
	vc.tty = isatty(STDERR_FILENO) && !vc.json;
	vc.copy.keep_partial = true;
	if (open_datastores(&vc))
		return 2;
	return run(&vc);
}
