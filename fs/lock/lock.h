/* lock.h - the daemon's one lock order, and a checker that holds the code to it.
 *
 * Every lock of fs/ has a rank. A thread takes locks in increasing rank only, so no
 * two threads can each hold what the other waits for. This is the whole order;
 * each lock's own rule (what it guards) sits next to the data it guards.
 *
 *   LK_GATE     a file's I/O gate (ns/vfile.h): shared for I/O, opens, releases and
 *               metadata of that file; exclusive to change its route or backing. A
 *               thread holds at most one gate. Asynchronous I/O (started by one
 *               thread, completed by another) holds it shared only to start and is
 *               counted in flight instead; the exclusive holder waits for that
 *               count under the file's idle lock (LK_LEAF).
 *   LK_NS       the namespace (ns/ns.h): shared around "resolve a name, then act on
 *               it"; exclusive for a migration's flip (a rename and an unlink).
 *               Held across backing name operations, never across an fsync or a
 *               journal commit. Also guards the store's datastore list
 *               (store/store.h, rule 3): adding, removing a datastore or changing
 *               its maintenance mode holds it exclusive.
 *   LK_JOURNAL  one migration's journal file (mig/journal.c): held across its
 *               write and fsync; per migration, so it stalls nobody else.
 *   LK_MIGS     the migration registry and the (L) fields of each record
 *               (mig/mig_int.h). Never held across I/O.
 *   LK_REGION   one migration's 1 MiB region locks (mig/mig_io.c): writers against
 *               the merge pass; several at once, in ascending index.
 *   LK_HANDLES  one open file's list of handles (ns/vfile.c).
 *   LK_NODES    the node table (ns/node.h): nodes, their kernel and daemon
 *               references, and each file node's vfile pointer and count.
 *   LK_LEAF     locks that take no other lock: the control socket's clients, the
 *               test hold points, the switch's retry timer, a file's idle lock
 *               (ns/vfile.c: its in-flight asynchronous I/O drained).
 * The libraries' own locks (overlay/, copier/) come after all of these: they are
 * taken inside ours, and no code of fs/ runs while one of them is held (callbacks
 * such as the scheduler's events are delivered with none held).
 *
 * The checker keeps, per thread, how many locks of each rank it holds, and asserts
 * at every acquisition that nothing of a higher rank is held (and nothing of the
 * same rank, but for LK_REGION and LK_LEAF). lk_held() lets a function assert the
 * lock its contract requires. Compiled out with NDEBUG (release builds); debug and
 * test builds check every acquisition. ThreadSanitizer's deadlock detector checks
 * the same order from the other side (tools/test.sh).
 */
#ifndef VDS_LOCK_H
#define VDS_LOCK_H

#include <pthread.h>
#include <stdbool.h>

enum lk_rank {
	LK_GATE = 1,
	LK_NS,
	LK_JOURNAL,
	LK_MIGS,
	LK_REGION,
	LK_HANDLES,
	LK_NODES,
	LK_LEAF,
	LK_NRANKS
};

#ifndef NDEBUG
/* Note that this thread took (or let go of) a lock of rank r; asserts the order. */
void lk_acquire(enum lk_rank r);
void lk_release(enum lk_rank r);
/* True if this thread holds a lock of rank r (not which one: see vfile.h's gate
 * owner for the one case where that matters). */
bool lk_held(enum lk_rank r);
#else
static inline void lk_acquire(enum lk_rank r) { (void)r; }
static inline void lk_release(enum lk_rank r) { (void)r; }
static inline bool lk_held(enum lk_rank r) { (void)r; return true; }
#endif

static inline void lk_lock(pthread_mutex_t *m, enum lk_rank r)
{
	lk_acquire(r);
	pthread_mutex_lock(m);
}

static inline void lk_unlock(pthread_mutex_t *m, enum lk_rank r)
{
	pthread_mutex_unlock(m);
	lk_release(r);
}

static inline void lk_rdlock(pthread_rwlock_t *l, enum lk_rank r)
{
	lk_acquire(r);
	pthread_rwlock_rdlock(l);
}

static inline void lk_wrlock(pthread_rwlock_t *l, enum lk_rank r)
{
	lk_acquire(r);
	pthread_rwlock_wrlock(l);
}

static inline void lk_rwunlock(pthread_rwlock_t *l, enum lk_rank r)
{
	pthread_rwlock_unlock(l);
	lk_release(r);
}

/* pthread_cond_wait on a lock held by lk_lock: the rank stays held, as the mutex
 * is held again on return. */
static inline int lk_wait(pthread_cond_t *c, pthread_mutex_t *m)
{
	return pthread_cond_wait(c, m);
}

#endif
