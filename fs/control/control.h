/* control.h - the control socket vdsctl talks to.
 *
 * A Unix stream socket speaking one JSON object per line each way (req.c has the
 * requests; common/proto.h their vocabulary). Who may connect is access.c's job:
 * root, the daemon's user, and an optional group, checked with SO_PEERCRED on every
 * client. The control layer asks the migration registry (mig.h) and reads the
 * datastores (store.h); it knows nothing of FUSE or of the namespace's internals.
 *
 * Locking: ctl->lock (LK_LEAF) guards the client list and `stopping`; nothing else
 * is shared between the accept thread, the client threads and control_stop.
 */
#ifndef VDS_CONTROL_H
#define VDS_CONTROL_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

struct migs;
struct store;

struct control {
	struct store *store;
	struct migs *migs;
	int fd;				/* listening socket, -1 if none */
	char *path;
	bool group;			/* control_group given: gid may connect too */
	gid_t gid;
	pthread_t thread;		/* accept loop */
	bool running;
	pthread_mutex_t lock;		/* LK_LEAF: what follows */
	pthread_cond_t gone;		/* a client left */
	int *clients;			/* their fds, so control_stop can end them */
	size_t nclients, cap;
	bool stopping;
};

/* An idle control plane for store s and registry g (both outlive it). */
void control_init(struct control *c, struct store *s, struct migs *g);
/* Bind and listen at path (own_dir: we made its directory, we may chmod it); err
 * gets one line on failure. Before the mount, so a clash is refused like bad input. */
int control_open(struct control *c, const char *path, bool own_dir, char *err, size_t len);
/* Start accepting (a thread; after daemonizing). */
int control_start(struct control *c);
/* Stop accepting, end every client and wait for it, remove the socket. Idempotent. */
void control_stop(struct control *c);

/* One request line in, one reply line out (malloc'd; NULL only out of memory). */
char *control_handle(struct control *c, const char *line);

/* access.c */
/* Resolve a group name or id for control_group=. */
int control_group_resolve(const char *spec, gid_t *gid, char *err, size_t len);
/* Give the socket (and its directory, if ours) to the group, if one was given. */
int control_grant(struct control *c, const char *path, bool own_dir, char *err, size_t len);
/* May the peer on fd talk to us? */
bool control_peer_allowed(const struct control *c, int fd);

#endif
