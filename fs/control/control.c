/* control.c - a Unix stream socket speaking one JSON object per line each way.
 *
 * The socket is created before the mount (so a clash is refused like any bad
 * input); who may connect and talk is access.c's job (root, the daemon's
 * user, and an optional group, checked with SO_PEERCRED on every client). Each client
 * gets a thread; a request is read whole (one line, at most CTL_MAX bytes) before
 * anything is parsed, and every reply ends with a newline. The request handlers live
 * in req.c.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include "control.h"
#include "lock.h"

#define CTL_MAX		(1u << 20)	/* bytes in one request line */
#define CTL_CLIENTS	256		/* clients connected at once (a thread each) */

static int mkdir_parent(const char *path)
{
	char dir[sizeof(((struct sockaddr_un *)0)->sun_path)];
	char *slash;

	snprintf(dir, sizeof(dir), "%s", path);
	slash = strrchr(dir, '/');
	if (!slash || slash == dir)
		return 0;
	*slash = 0;
	if (mkdir(dir, 0700) < 0 && errno != EEXIST)
		return -errno;
	return 0;
}

/* A socket file nobody answers on is a leftover of a crash: reuse the name. */
static bool socket_in_use(const struct sockaddr_un *addr)
{
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	bool used = fd >= 0 && connect(fd, (const struct sockaddr *)addr, sizeof(*addr)) == 0;

	if (fd >= 0)
		close(fd);
	return used;
}

int control_open(struct control *c, const char *path, bool own_dir, char *err, size_t len)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	int fd, ret;

	if (strlen(path) >= sizeof(addr.sun_path)) {
		snprintf(err, len, "control socket path %s is too long", path);
		return -ENAMETOOLONG;
	}
	strcpy(addr.sun_path, path);
	ret = mkdir_parent(path);
	if (ret) {
		snprintf(err, len, "cannot create the directory of %s: %s", path, strerror(-ret));
		return ret;
	}
	if (socket_in_use(&addr)) {
		snprintf(err, len, "control socket %s is in use by another vdsfs", path);
		return -EADDRINUSE;
	}
	unlink(path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || bind(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0)
		ret = -errno;
	else
		ret = control_grant(c, path, own_dir, err, len);
	if (!ret && listen(fd, 16) < 0)
		ret = -errno;
	if (ret) {
		if (!err[0])
			snprintf(err, len, "control socket %s: %s", path, strerror(-ret));
		if (fd >= 0)
			close(fd);
		unlink(path);
		return ret;
	}
	c->fd = fd;
	c->path = strdup(path);
	return 0;
}

void control_init(struct control *c, struct store *s, struct migs *g)
{
	memset(c, 0, sizeof(*c));
	c->store = s;
	c->migs = g;
	c->fd = -1;
	pthread_mutex_init(&c->lock, NULL);
	pthread_cond_init(&c->gone, NULL);
}

struct client {
	struct control *ctl;
	int fd;
};

/* Live client connections, so that control_stop can end them and wait: a client
 * thread must never outlive the state it reads. 0, or -EBUSY (stopping, or at the
 * bound) with the reason in why. */
static int client_add(struct control *c, int fd, const char **why)
{
	int ret = 0;

	lk_lock(&c->lock, LK_LEAF);
	if (c->stopping) {
		*why = "{\"ok\":false,\"error\":\"vdsfs is shutting down\"}";
		ret = -EBUSY;
	} else if (c->nclients == CTL_CLIENTS) {
		*why = "{\"ok\":false,\"error\":\"too many control clients at once (at most 256); "
		       "try again\"}";
		ret = -EBUSY;
	} else if (c->nclients == c->cap) {
		size_t cap = c->cap ? c->cap * 2 : 8;
		int *p = realloc(c->clients, cap * sizeof(*p));

		if (p) {
			c->clients = p;
			c->cap = cap;
		} else {
			*why = "{\"ok\":false,\"error\":\"out of memory\"}";
			ret = -ENOMEM;
		}
	}
	if (!ret)
		c->clients[c->nclients++] = fd;
	lk_unlock(&c->lock, LK_LEAF);
	return ret;
}

static void client_remove(struct control *c, int fd)
{
	lk_lock(&c->lock, LK_LEAF);
	for (size_t i = 0; i < c->nclients; i++)
		if (c->clients[i] == fd) {
			c->clients[i] = c->clients[--c->nclients];
			break;
		}
	close(fd);
	pthread_cond_broadcast(&c->gone);
	lk_unlock(&c->lock, LK_LEAF);
}

static int send_all(int fd, const char *s, size_t len)
{
	while (len) {
		ssize_t n = send(fd, s, len, MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		s += n;
		len -= n;
	}
	return 0;
}

static int reply(int fd, const char *text)
{
	return send_all(fd, text, strlen(text)) || send_all(fd, "\n", 1) ? -1 : 0;
}

/* Closing a Unix socket with unread input resets it, and the client would lose the
 * answer it is owed: end our side, then read and drop what it still sends, within
 * bounds a misbehaving client cannot stretch. */
static void hang_up_gently(int fd, char *buf, size_t len)
{
	struct timeval tv = { .tv_sec = 1 };
	size_t total = 0;
	ssize_t n;

	shutdown(fd, SHUT_WR);
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	while (total < 64 * (size_t)CTL_MAX && (n = recv(fd, buf, len, 0)) > 0)
		total += n;
}

/* Reads requests line by line; a line longer than CTL_MAX is refused and the
 * connection closed, since its end cannot be found reliably. */
static void serve_client(struct client *cl)
{
	char *buf = malloc(CTL_MAX + 1);
	size_t have = 0;

	while (buf) {
		char *nl = memchr(buf, '\n', have);

		if (!nl) {
			if (have == CTL_MAX) {
				reply(cl->fd, "{\"ok\":false,\"error\":\"request too large (at most 1 MiB)\"}");
				hang_up_gently(cl->fd, buf, CTL_MAX);
				break;
			}
			ssize_t n = recv(cl->fd, buf + have, CTL_MAX - have, 0);

			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0)
				break;
			have += n;
			continue;
		}
		*nl = 0;
		char *out = control_handle(cl->ctl, buf);
		int r = out ? reply(cl->fd, out) : -1;

		free(out);
		if (r)
			break;
		have -= nl + 1 - buf;
		memmove(buf, nl + 1, have);
	}
	free(buf);
}

static void *client_thread(void *arg)
{
	struct client *cl = arg;

	if (control_peer_allowed(cl->ctl, cl->fd))
		serve_client(cl);
	else
		reply(cl->fd, "{\"ok\":false,\"error\":\"permission denied: only root, the daemon's "
		      "user or its control_group may control vdsfs\"}");
	client_remove(cl->ctl, cl->fd);
	free(cl);
	return NULL;
}

static void *accept_thread(void *arg)
{
	struct control *c = arg;

	for (;;) {
		int fd = accept4(c->fd, NULL, NULL, SOCK_CLOEXEC);
		const char *why = NULL;
		struct client *cl;
		pthread_t t;
		pthread_attr_t a;

		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED || errno == EMFILE)
				continue;
			return NULL;	/* the socket was shut down */
		}
		cl = malloc(sizeof(*cl));
		if (!cl || client_add(c, fd, &why)) {
			if (why)
				reply(fd, why);	/* the client is told why, not just hung up on */
			close(fd);
			free(cl);
			continue;
		}
		cl->ctl = c;
		cl->fd = fd;
		pthread_attr_init(&a);
		pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
		if (pthread_create(&t, &a, client_thread, cl)) {
			client_remove(c, fd);
			free(cl);
		}
		pthread_attr_destroy(&a);
	}
}

int control_start(struct control *c)
{
	if (c->fd < 0)
		return 0;
	if (pthread_create(&c->thread, NULL, accept_thread, c))
		return -EAGAIN;
	c->running = true;
	return 0;
}

void control_stop(struct control *c)
{
	if (c->fd < 0)
		return;
	shutdown(c->fd, SHUT_RDWR);
	if (c->running)
		pthread_join(c->thread, NULL);
	c->running = false;
	lk_lock(&c->lock, LK_LEAF);
	c->stopping = true;
	for (size_t i = 0; i < c->nclients; i++)
		shutdown(c->clients[i], SHUT_RDWR);	/* wakes a client blocked in recv */
	while (c->nclients)
		lk_wait(&c->gone, &c->lock);
	lk_unlock(&c->lock, LK_LEAF);
	free(c->clients);
	c->clients = NULL;
	c->cap = 0;
	close(c->fd);
	c->fd = -1;
	if (c->path)
		unlink(c->path);
	free(c->path);
	c->path = NULL;
}
