/* fsfix.h - fixtures for the unit tests of fs/ns and fs/mig, which run without a
 * mount: datastores in a temporary directory (opened and locked by ds_open, as the
 * daemon does), a store, a namespace and a migration registry over them, and the
 * few file helpers every such test needs.
 *
 * Everything a fixture made is removed by fsfix_fini, and by an exit hook when an
 * assertion ends the test process first (criterion runs every test in a process of
 * its own).
 */
#ifndef VDS_TEST_FSFIX_H
#define VDS_TEST_FSFIX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "mig.h"
#include "ns.h"
#include "store.h"

struct fsfix {
	char top[64];		/* holds ds0, ds1, ...: one directory per datastore */
	struct store store;
	struct ns *ns;
	struct migs *g;
};

/* nds datastores named "a", "b", ... in a new temporary directory under parent
 * (FSFIX_DISK: /tmp, a disk filesystem, ext4 here; FSFIX_MEM: /dev/shm, tmpfs, for
 * tests that write a lot and need no disk), a namespace and a registry (never
 * started: no scheduler, no threads). */
#define FSFIX_DISK	"/tmp"
#define FSFIX_MEM	"/dev/shm"
void fsfix_init_in(struct fsfix *f, int nds, const char *parent);
static inline void fsfix_init(struct fsfix *f, int nds)
{
	fsfix_init_in(f, nds, FSFIX_DISK);
}
/* Free the registry, the namespace, the store, and remove the directory. */
void fsfix_fini(struct fsfix *f);
/* The absolute path of rel on datastore ds ("" or "." for its top). */
void fsfix_path(const struct fsfix *f, int ds, const char *rel, char *out, size_t len);
/* The same in the datastore's state folder (.vdsfs). */
void fsfix_state_path(const struct fsfix *f, int ds, const char *name, char *out, size_t len);

/* Whole files, asserting success. write_file creates or replaces; read_file returns
 * a malloc'd buffer (NULL if the file does not exist) and its length. */
void write_file(const char *path, const void *buf, size_t len);
uint8_t *read_file(const char *path, size_t *len);
bool file_exists(const char *path);
ino_t file_ino(const char *path);
/* Every byte of fd (from offset 0, st_size of them) into a malloc'd buffer. */
uint8_t *read_fd(int fd, size_t *len);

/* Fds this process has open now (/proc/self/fd). */
int count_fds(void);
/* True while fd is an open descriptor. */
bool fd_is_open(int fd);

/* The kernel's view of thread tid of this process: 'S' while it sleeps (blocked on
 * a lock, say), 'R' while it runs, '?' if it is gone. How a test sees that a thread
 * waits, without a timeout. */
char thread_state(int tid);

/* A deterministic pseudo-random stream (splitmix64). */
uint64_t rng_next(uint64_t *s);
void rng_fill(uint64_t *s, void *buf, size_t len);

#endif
