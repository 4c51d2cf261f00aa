/* testpoint.c - see testpoint.h. Environment read once; holds are counted permits. */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mig.h"
#include "testpoint.h"
#include "vdsfs.h"

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
		fuse_log(FUSE_LOG_ERR, "vdsfs: test crash at %s\n", point);
		kill(getpid(), SIGKILL);
	}
	if (!env_is("VDSFS_TEST_HOLD", point))
		return;
	pthread_mutex_lock(&m->v->mig_lock);
	m->held_at = point;
	pthread_mutex_unlock(&m->v->mig_lock);
	pthread_mutex_lock(&tp_lock);
	while (!permits && !atomic_load(&m->stopping))
		pthread_cond_wait(&tp_cond, &tp_lock);
	if (permits)
		permits--;
	pthread_mutex_unlock(&tp_lock);
	pthread_mutex_lock(&m->v->mig_lock);
	m->held_at = NULL;
	pthread_mutex_unlock(&m->v->mig_lock);
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
	pthread_mutex_lock(&lock);
	if (!strstr(failed, want) && strlen(failed) + strlen(want) < sizeof(failed)) {
		strcat(failed, want + (failed[0] ? 1 : 0));
		ret = -EIO;
	}
	pthread_mutex_unlock(&lock);
	if (ret)
		fuse_log(FUSE_LOG_ERR, "vdsfs: test failure injected at %s\n", step);
	return ret;
}

/* Shutdown: a held migration must see m->stopping, without being granted a permit. */
void testpoint_wake(void)
{
	pthread_mutex_lock(&tp_lock);
	pthread_cond_broadcast(&tp_cond);
	pthread_mutex_unlock(&tp_lock);
}

void testpoint_release(void)
{
	pthread_mutex_lock(&tp_lock);
	permits++;
	pthread_cond_broadcast(&tp_cond);
	pthread_mutex_unlock(&tp_lock);
}
