/* testpoint.c - see testpoint.h. Environment read once; holds are counted permits. */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "mig_int.h"
#include "testpoint.h"

static pthread_mutex_t tp_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t tp_cond = PTHREAD_COND_INITIALIZER;
static unsigned permits;

static bool env_is(const char *var, const char *point)
{
	const char *e = getenv(var);

	return e && !strcmp(e, point);
}

void testpoint(struct mig *m, const char *point)
{
	if (env_is("VDSFS_TEST_CRASH", point)) {
		vds_log(LOG_ERR, "vdsfs: test crash at %s\n", point);
		kill(getpid(), SIGKILL);
	}
	if (!env_is("VDSFS_TEST_HOLD", point))
		return;
	migs_lock(m->g);
	m->held_at = point;
	migs_unlock(m->g);
	lk_lock(&tp_lock, LK_LEAF);
	while (!permits && !atomic_load(&m->stopping))
		lk_wait(&tp_cond, &tp_lock);
	if (permits)
		permits--;
	lk_unlock(&tp_lock, LK_LEAF);
	migs_lock(m->g);
	m->held_at = NULL;
	migs_unlock(m->g);
}

int testfail(const char *step)
{
	static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
	static char failed[256];	/* ",step,step," already failed once */
	const char *e = getenv("VDSFS_TEST_FAIL");
	char want[64];
	int ret = 0;

	if (!e || snprintf(want, sizeof(want), ",%s,", step) >= (int)sizeof(want))
		return 0;
	char list[256];

	if (snprintf(list, sizeof(list), ",%s,", e) >= (int)sizeof(list) || !strstr(list, want))
		return 0;
	lk_lock(&lock, LK_LEAF);
	if (!strstr(failed, want) && strlen(failed) + strlen(want) < sizeof(failed)) {
		strcat(failed, want + (failed[0] ? 1 : 0));
		ret = -EIO;
	}
	lk_unlock(&lock, LK_LEAF);
	if (ret)
		vds_log(LOG_ERR, "vdsfs: test failure injected at %s\n", step);
	return ret;
}

/* Shutdown: a held migration must see m->stopping, without being granted a permit. */
void testpoint_wake(void)
{
	lk_lock(&tp_lock, LK_LEAF);
	pthread_cond_broadcast(&tp_cond);
	lk_unlock(&tp_lock, LK_LEAF);
}

void testpoint_release(void)
{
	lk_lock(&tp_lock, LK_LEAF);
	permits++;
	pthread_cond_broadcast(&tp_cond);
	lk_unlock(&tp_lock, LK_LEAF);
}
