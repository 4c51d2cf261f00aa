/* test_sched.c -- the distinct-datastore scheduler, checked from its event log.
 *
 * Jobs here use a controllable run callback: run only records the job, and
 * the test ends jobs explicitly with sched_job_done(). After each step the
 * test calls sched_sync(), so what the log holds is the scheduler's complete
 * reaction to that step; nothing depends on timing. Every test also replays
 * the whole log and checks the rule at each "started" event (at most N
 * running, at most k per datastore), and that the scheduler was
 * work-conserving whenever it was quiescent.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "scheduler.h"

#define MAXJ 32

static pthread_mutex_t ctl_lock = PTHREAD_MUTEX_INITIALIZER;
static struct sched_job *ctl_jobs[MAXJ + 1];   /* by id; guarded by ctl_lock */
static unsigned ctl_cancel_calls;              /* guarded by ctl_lock */

static void ctl_run(struct sched_job *job)
{
	pthread_mutex_lock(&ctl_lock);
	ctl_jobs[sched_job_id(job)] = job;
	pthread_mutex_unlock(&ctl_lock);
}

/* A cancel callback that ends the job right away, like a daemon would. */
static void ctl_cancel(struct sched_job *job)
{
	pthread_mutex_lock(&ctl_lock);
	ctl_cancel_calls++;
	pthread_mutex_unlock(&ctl_lock);
	sched_job_done(job, -ECANCELED, NULL);
}

static int refuse(struct sched_job *job, char *msg, size_t len)
{
	(void)job;
	snprintf(msg, len, "refused by precheck");
	return -ENOSPC;
}

static const struct sched_job_ops ctl_ops = { .run = ctl_run, .cancel = ctl_cancel };
static const struct sched_job_ops refuse_ops = { .run = ctl_run, .precheck = refuse };

static struct sched *S;
static unsigned max_run, per_ds;
static unsigned ds_override[64];   /* mirrors sched_set_ds_limit() */

static unsigned limit_of(uint32_t ds)
{
	return ds < 64 && ds_override[ds] ? ds_override[ds] : per_ds;
}

static void setup_n(unsigned n, unsigned k)
{
	struct sched_opts o = { .max_running = n, .per_ds = k, .keep_log = true };

	memset(ctl_jobs, 0, sizeof(ctl_jobs));
	memset(ds_override, 0, sizeof(ds_override));
	ctl_cancel_calls = 0;
	max_run = n ? n : 4;
	per_ds = k ? k : 1;
	S = sched_new(&o);
	cr_assert_not_null(S);
}

static void setup(void) { setup_n(0, 0); }

static void teardown(void)
{
	sched_free(S);
	S = NULL;
}

static uint64_t submit(uint32_t src, uint32_t dst)
{
	char name[32];
	uint64_t id;

	snprintf(name, sizeof(name), "job%u-%u", src, dst);
	id = sched_submit(S, src, dst, name, &ctl_ops, NULL);
	cr_assert(id > 0 && id <= MAXJ);
	return id;
}

static void finish(uint64_t id)
{
	struct sched_job *j;

	sched_sync(S);
	pthread_mutex_lock(&ctl_lock);
	j = ctl_jobs[id];
	pthread_mutex_unlock(&ctl_lock);
	cr_assert_not_null(j, "job %llu was never run", (unsigned long long)id);
	sched_job_done(j, 0, NULL);
	sched_sync(S);
}

/* ---- reading the log ---- */

static struct sched_event *L;
static size_t NL;

static void load(void)
{
	free(L);
	sched_sync(S);
	cr_assert_eq(sched_log(S, &L, &NL), 0);
}

/* seq of the first event of type t for job id, 0 if none */
static uint64_t at(uint64_t id, enum sched_event_type t)
{
	for (size_t i = 0; i < NL; i++)
		if (L[i].job == id && L[i].type == t)
			return L[i].seq;
	return 0;
}

/* The first event of type t for job id; the test fails if there is none. */
static const struct sched_event *ev_of(uint64_t id, enum sched_event_type t)
{
	uint64_t seq = at(id, t);

	cr_assert_neq(seq, 0, "job %llu has no %s event", (unsigned long long)id, sched_event_name(t));
	return &L[seq - 1];  /* seq numbers are dense from 1: check_log() */
}

static bool ended(enum sched_event_type t)
{
	return t == SCHED_EV_FINISHED || t == SCHED_EV_FAILED || t == SCHED_EV_CANCELLED;
}

/* The next event after seq that is not progress. */
static const struct sched_event *next_after(uint64_t seq)
{
	for (size_t i = 0; i < NL; i++)
		if (L[i].seq > seq && L[i].type != SCHED_EV_PROGRESS)
			return &L[i];
	return NULL;
}

struct replay {
	bool queued[MAXJ + 1], running[MAXJ + 1];
	uint32_t src[MAXJ + 1], dst[MAXJ + 1];
	unsigned nrun;
};

static unsigned ds_use(const struct replay *r, uint32_t ds)
{
	unsigned n = 0;

	for (unsigned j = 1; j <= MAXJ; j++)
		if (r->running[j] && (r->src[j] == ds || r->dst[j] == ds))
			n++;
	return n;
}

static void replay_event(struct replay *r, const struct sched_event *e)
{
	uint64_t j = e->job;

	cr_assert(j >= 1 && j <= MAXJ);
	r->src[j] = e->src_ds;
	r->dst[j] = e->dst_ds;
	if (e->type == SCHED_EV_QUEUED)
		r->queued[j] = true;
	if (e->type == SCHED_EV_STARTED) {
		cr_assert(r->queued[j] && !r->running[j], "job %llu started twice", (unsigned long long)j);
		r->queued[j] = false;
		r->running[j] = true;
		r->nrun++;
		cr_assert(r->nrun <= max_run, "%u running > %u", r->nrun, max_run);
		cr_assert(ds_use(r, e->src_ds) <= limit_of(e->src_ds), "source datastore %u shared", e->src_ds);
		cr_assert(ds_use(r, e->dst_ds) <= limit_of(e->dst_ds), "destination datastore %u shared", e->dst_ds);
	}
	if (ended(e->type)) {
		if (r->running[j])
			r->nrun--;
		r->running[j] = r->queued[j] = false;
	}
}

/* Replays the log; checks the rule at every start and, since the log was
 * taken at a quiescent point, that no queued job could start now. */
static void check_log(void)
{
	struct replay r = { 0 };
	uint64_t last_seq = 0, last_ts = 0;

	load();
	for (size_t i = 0; i < NL; i++) {
		cr_assert_eq(L[i].seq, last_seq + 1, "sequence numbers must be dense");
		cr_assert_geq(L[i].ts_ns, last_ts, "timestamps must not go back");
		last_seq = L[i].seq;
		last_ts = L[i].ts_ns;
		replay_event(&r, &L[i]);
	}
	for (unsigned j = 1; j <= MAXJ; j++) {
		if (!r.queued[j])
			continue;
		cr_assert(r.nrun == max_run || ds_use(&r, r.src[j]) >= limit_of(r.src[j]) ||
			  ds_use(&r, r.dst[j]) >= limit_of(r.dst[j]),
			  "job %u waits although its datastores are free", j);
	}
}

static void assert_running(const uint64_t *ids, size_t n)
{
	struct replay r = { 0 };

	load();
	for (size_t i = 0; i < NL; i++)
		replay_event(&r, &L[i]);
	for (size_t i = 0; i < n; i++)
		cr_assert(r.running[ids[i]], "job %llu should run", (unsigned long long)ids[i]);
	cr_assert_eq(r.nrun, n, "%u running, expected %zu", r.nrun, n);
}

#define RUNNING(...) do { \
	uint64_t ids_[] = { __VA_ARGS__ }; \
	assert_running(ids_, sizeof(ids_) / sizeof(ids_[0])); \
	check_log(); \
} while (0)

/* ---- the seed's three examples ---- */

TestSuite(sched, .fini = teardown, .timeout = 30);

/* VMDK1, VMDK2 on DS1 -> DS4; VMDK3, VMDK4 on DS2 -> DS3. */
Test(sched, seed_two_pairs)
{
	uint64_t v1, v2, v3, v4;
	const struct sched_event *e;

	setup();
	v1 = submit(1, 4);
	v2 = submit(1, 4);
	v3 = submit(2, 3);
	v4 = submit(2, 3);

	sched_sync(S);
	RUNNING(v1, v3);
	finish(v1);
	RUNNING(v3, v2);
	e = next_after(at(v1, SCHED_EV_FINISHED));
	cr_assert(e && e->job == v2 && e->type == SCHED_EV_STARTED,
		  "VMDK2 must start the moment VMDK1 ends");
	cr_assert_eq(at(v4, SCHED_EV_STARTED), 0);
	finish(v3);
	RUNNING(v2, v4);
	e = next_after(at(v3, SCHED_EV_FINISHED));
	cr_assert(e && e->job == v4 && e->type == SCHED_EV_STARTED,
		  "VMDK4 must start the moment VMDK3 ends");
	cr_assert_lt(at(v3, SCHED_EV_STARTED), at(v1, SCHED_EV_FINISHED), "1 and 3 overlap");
	finish(v2);
	finish(v4);
	sched_wait_idle(S);
	RUNNING();
}

/* Fan-out: two disks on A going to B and to C copy one after the other. */
Test(sched, seed_fan_out_is_serial)
{
	uint64_t a, b;

	setup();
	a = submit(1, 2);
	b = submit(1, 3);

	sched_sync(S);
	RUNNING(a);
	finish(a);
	RUNNING(b);
	cr_assert_gt(at(b, SCHED_EV_STARTED), at(a, SCHED_EV_FINISHED));
	finish(b);
	check_log();
}

/* Five disks on five distinct pairs: four at once, the fifth when one ends. */
Test(sched, seed_five_distinct_pairs)
{
	uint64_t j[5];
	const struct sched_event *e;

	setup();
	for (int i = 0; i < 5; i++)
		j[i] = submit(10 + 2 * i, 11 + 2 * i);
	sched_sync(S);
	RUNNING(j[0], j[1], j[2], j[3]);
	finish(j[2]);
	RUNNING(j[0], j[1], j[3], j[4]);
	e = next_after(at(j[2], SCHED_EV_FINISHED));
	cr_assert(e && e->job == j[4] && e->type == SCHED_EV_STARTED);
	for (int i = 0; i < 5; i++)
		if (i != 2)
			finish(j[i]);
	sched_wait_idle(S);
	check_log();
}

/* ---- the rule's edges ---- */

Test(sched, work_conserving_overtakes_waiting_job)
{
	uint64_t a, b, c;

	setup();
	a = submit(1, 2);
	b = submit(1, 3);
	c = submit(4, 5);

	sched_sync(S);
	RUNNING(a, c);
	cr_assert_eq(at(a, SCHED_EV_FINISHED), 0, "c overtook b while a still ran");
	finish(a);
	RUNNING(b, c);
	finish(b);
	finish(c);
}

/* Fan-in: two sources into one destination datastore are serial too. */
Test(sched, fan_in_is_serial)
{
	uint64_t a, b;

	setup();
	a = submit(1, 3);
	b = submit(2, 3);
	sched_sync(S);
	RUNNING(a);
	finish(a);
	RUNNING(b);
	finish(b);
}

Test(sched, source_and_destination_roles_both_count)
{
	uint64_t a, b;

	/* DS2 is the destination of a and the source of b: b must wait */
	setup();
	a = submit(1, 2);
	b = submit(2, 3);

	sched_sync(S);
	RUNNING(a);
	finish(a);
	RUNNING(b);
	finish(b);
}

Test(sched, same_datastore_copy_counts_once)
{
	uint64_t a, b;

	setup();
	a = submit(7, 7);
	b = submit(7, 8);

	sched_sync(S);
	RUNNING(a);
	finish(a);
	RUNNING(b);
	finish(b);
}

Test(sched, max_running_configurable)
{
	uint64_t a, b, c;

	setup_n(2, 0);
	a = submit(1, 2);
	b = submit(3, 4);
	c = submit(5, 6);
	sched_sync(S);
	RUNNING(a, b);
	finish(b);
	RUNNING(a, c);
	finish(a);
	finish(c);
}

Test(sched, k_per_datastore)
{
	uint64_t a, b, c;

	setup_n(4, 2);
	a = submit(1, 2);
	b = submit(1, 3);
	c = submit(1, 4);
	sched_sync(S);
	RUNNING(a, b);
	finish(a);
	RUNNING(b, c);
	finish(b);
	finish(c);
}

Test(sched, per_datastore_override)
{
	uint64_t a, b, c;

	setup();
	cr_assert_eq(sched_set_ds_limit(S, 1, 2), 0);
	ds_override[1] = 2;
	a = submit(1, 2);
	b = submit(1, 3);
	c = submit(5, 3);
	sched_sync(S);
	RUNNING(a, b);
	finish(b);
	RUNNING(a, c);
	finish(a);
	finish(c);
}

/* ---- cancel, precheck, events ---- */

Test(sched, cancel_queued_never_starts)
{
	uint64_t a, b, c;

	setup();
	a = submit(1, 2);
	b = submit(1, 3);
	c = submit(1, 4);

	sched_sync(S);
	cr_assert_eq(sched_cancel(S, b), 0);
	sched_sync(S);
	finish(a);
	RUNNING(c);
	load();
	cr_assert_neq(at(b, SCHED_EV_CANCELLED), 0);
	cr_assert_eq(at(b, SCHED_EV_STARTED), 0);
	cr_assert_eq(sched_cancel(S, b), -ENOENT);
	finish(c);
}

Test(sched, cancel_running_calls_back_and_frees_slot)
{
	uint64_t a, b;
	const struct sched_event *e;

	setup();
	a = submit(1, 2);
	b = submit(1, 3);

	sched_sync(S);
	cr_assert_eq(sched_cancel(S, a), 0);
	sched_sync(S);
	sched_sync(S);
	cr_assert_eq(ctl_cancel_calls, 1);
	RUNNING(b);
	e = next_after(at(a, SCHED_EV_CANCELLED));
	cr_assert(e && e->job == b && e->type == SCHED_EV_STARTED);
	finish(b);
}

Test(sched, precheck_refusal_fails_without_start)
{
	uint64_t a, b;
	const struct sched_event *e;

	setup();
	a = sched_submit(S, 1, 2, "refused", &refuse_ops, NULL);
	b = submit(1, 2);
	sched_sync(S);
	RUNNING(b);
	cr_assert_eq(at(a, SCHED_EV_STARTED), 0);
	e = ev_of(a, SCHED_EV_FAILED);
	cr_assert_eq(e->type, SCHED_EV_FAILED);
	cr_assert_eq(e->status, -ENOSPC);
	cr_assert_str_eq(e->msg, "refused by precheck");
	finish(b);
}

Test(sched, failure_status_and_message)
{
	uint64_t a;
	const struct sched_event *e;

	setup();
	a = submit(1, 2);

	sched_sync(S);
	pthread_mutex_lock(&ctl_lock);
	sched_job_done(ctl_jobs[a], -EIO, "disk on fire");
	pthread_mutex_unlock(&ctl_lock);
	load();
	e = ev_of(a, SCHED_EV_FAILED);
	cr_assert_eq(e->status, -EIO);
	cr_assert_str_eq(e->msg, "disk on fire");
	cr_assert_str_eq(e->name, "job1-2");
	check_log();
}

static unsigned cb_count;
static uint64_t cb_last_seq;
static bool cb_in_order = true;

static void on_event(void *arg, const struct sched_event *ev)
{
	(void)arg;
	cb_in_order = cb_in_order && ev->seq == cb_last_seq + 1;
	cb_last_seq = ev->seq;
	cb_count++;
}

/* The callback sees every event, in order, from the scheduler thread. */
Test(sched, callback_gets_every_event_in_order)
{
	struct sched_opts o = { .on_event = on_event, .keep_log = true };
	uint64_t ids[6];

	memset(ctl_jobs, 0, sizeof(ctl_jobs));
	max_run = 4;
	per_ds = 1;
	S = sched_new(&o);
	for (int i = 0; i < 6; i++)
		ids[i] = submit(1 + (i % 3), 10 + (i % 2));
	sched_sync(S);
	for (int round = 0; round < 6; round++) {
		sched_sync(S);
		pthread_mutex_lock(&ctl_lock);
		for (int i = 0; i < 6; i++)
			if (ctl_jobs[ids[i]]) {
				sched_job_done(ctl_jobs[ids[i]], 0, NULL);
				ctl_jobs[ids[i]] = NULL;
			}
		pthread_mutex_unlock(&ctl_lock);
	}
	sched_wait_idle(S);
	load();
	cr_assert_eq(NL, 18, "6 x queued/started/finished, got %zu", NL);
	cr_assert_eq(cb_count, NL);
	cr_assert(cb_in_order);
	check_log();
}

/* ---- the ready-made copy run, on real files ---- */

static void write_random(int dirfd, const char *name, size_t size, unsigned seed)
{
	unsigned char *b = malloc(size);
	int fd = openat(dirfd, name, O_WRONLY | O_CREAT | O_TRUNC, 0640);

	cr_assert(b && fd >= 0);
	for (size_t i = 0; i < size; i++)
		b[i] = (unsigned char)(rand_r(&seed) >> 7);
	cr_assert_eq(write(fd, b, size), (ssize_t)size);
	close(fd);
	free(b);
}

static bool same_file(int da, int db, const char *name)
{
	char cmd[600], pa[64], pb[64];

	snprintf(pa, sizeof(pa), "/proc/self/fd/%d/%s", da, name);
	snprintf(pb, sizeof(pb), "/proc/self/fd/%d/%s", db, name);
	snprintf(cmd, sizeof(cmd), "cmp -s '%s' '%s'", pa, pb);
	return system(cmd) == 0;
}

/* Seed example 1 with real copies: whatever the copies' speed, VMDK2 starts
 * after VMDK1 ended, VMDK4 after VMDK3, the rule holds at every start, and
 * every file arrives whole under its final name. */
Test(sched, seed_two_pairs_real_copies)
{
	static const char *names[] = { "vmdk1", "vmdk2", "vmdk3", "vmdk4" };
	static const uint32_t src[] = { 1, 1, 2, 2 }, dst[] = { 4, 4, 3, 3 };
	char root[] = "/var/tmp/copier-sched-XXXXXX", path[300], part[64];
	struct sched_copy_spec spec;
	uint64_t id[4];
	int ds[5];

	setup();
	cr_assert_not_null(mkdtemp(root));
	for (int i = 1; i <= 4; i++) {
		snprintf(path, sizeof(path), "%s/ds%d", root, i);
		cr_assert_eq(mkdir(path, 0755), 0);
		ds[i] = open(path, O_RDONLY | O_DIRECTORY);
	}
	for (int i = 0; i < 4; i++)
		write_random(ds[src[i]], names[i], (size_t)(1 << 20) * (3 + i) + 17, (unsigned)i);
	for (int i = 0; i < 4; i++) {
		snprintf(part, sizeof(part), "%s.part", names[i]);
		spec = (struct sched_copy_spec){ .src_dirfd = ds[src[i]], .src_rel = names[i],
			.dst_dirfd = ds[dst[i]], .dst_rel = part, .final_rel = names[i],
			.opts = { .chunk_size = 65536, .queue_depth = 4, .space_margin = 1 } };
		id[i] = sched_submit_copy(S, src[i], dst[i], names[i], &spec, NULL);
		cr_assert_eq(id[i], (uint64_t)i + 1);
	}
	sched_wait_idle(S);
	check_log();
	for (int i = 0; i < 4; i++) {
		uint64_t size = (uint64_t)(1 << 20) * (3 + i) + 17;
		const struct sched_event *f = ev_of(id[i], SCHED_EV_FINISHED);

		cr_assert_eq(f->done, size, "%s: done %llu", names[i], (unsigned long long)f->done);
		cr_assert_eq(f->total, size);
	}
	cr_assert_gt(at(id[1], SCHED_EV_STARTED), at(id[0], SCHED_EV_FINISHED));
	cr_assert_gt(at(id[3], SCHED_EV_STARTED), at(id[2], SCHED_EV_FINISHED));
	for (int i = 0; i < 4; i++) {
		cr_assert(same_file(ds[src[i]], ds[dst[i]], names[i]), "%s differs", names[i]);
		snprintf(part, sizeof(part), "%s.part", names[i]);
		cr_assert_neq(faccessat(ds[dst[i]], part, F_OK, 0), 0, "temporary name left");
	}
	for (int i = 1; i <= 4; i++)
		close(ds[i]);
	snprintf(path, sizeof(path), "rm -rf '%s'", root);
	cr_assert_eq(system(path), 0);
}

/* sched_free() with queued and running jobs cancels all and returns. */
Test(sched, free_cancels_everything, .fini = NULL)
{
	setup();
	submit(1, 2);
	submit(1, 3);
	sched_sync(S);
	sched_free(S);
	S = NULL;
	cr_assert_eq(ctl_cancel_calls, 1);
}
