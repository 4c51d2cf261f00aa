/* control.c - a Unix stream socket speaking one JSON object per line each way.
 *
 * The socket is created before the mount (so a clash is refused like any bad
 * input); who may connect and talk is control_access.c's job (root, the daemon's
 * user, and an optional group, checked with SO_PEERCRED on every client). Each client
 * gets a thread; a request is read whole (one line, at most CTL_MAX bytes) before
 * anything is parsed, and every reply ends with a newline. The request handlers live
 * in control_req.c.
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
#include "vdsfs.h"

#define CTL_MAX	(1u << 20)

char *control_handle(struct vds *v, const char *line);

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

int control_open(struct vds *v, const char *path, bool own_dir, char *err, size_t len)
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
		ret = control_grant(v, path, own_dir, err, len);
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
	v->ctl_fd = fd;
	v->ctl_path = strdup(path);
	return 0;
}

struct client {
	struct vds *v;
	int fd;
};

/* Live client connections, so that control_stop can end them and wait: a client
 * thread must never outlive the state it reads. */
static pthread_mutex_t clients_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t clients_gone = PTHREAD_COND_INITIALIZER;
static int client_fds[64];
static int nclients;
static bool stopping;

static bool client_add(int fd)
{
	bool ok;

	pthread_mutex_lock(&clients_lock);
	ok = !stopping && nclients < 64;
	if (ok)
		client_fds[nclients++] = fd;
	pthread_mutex_unlock(&clients_lock);
	return ok;
}

static void client_remove(int fd)
{
	pthread_mutex_lock(&clients_lock);
	for (int i = 0; i < nclients; i++)
		if (client_fds[i] == fd) {
			client_fds[i] = client_fds[--nclients];
			break;
		}
	close(fd);
	pthread_cond_broadcast(&clients_gone);
	pthread_mutex_unlock(&clients_lock);
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
static void serve_client(struct client *c)
{
	char *buf = malloc(CTL_MAX + 1);
	size_t have = 0;

	while (buf) {
		char *nl = memchr(buf, '\n', have);

		if (!nl) {
			if (have == CTL_MAX) {
				reply(c->fd, "{\"ok\":false,\"error\":\"request too large\"}");
				hang_up_gently(c->fd, buf, CTL_MAX);
				break;
			}
			ssize_t n = recv(c->fd, buf + have, CTL_MAX - have, 0);

			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0)
				break;
			have += n;
			continue;
		}
		*nl = 0;
		char *out = control_handle(c->v, buf);
		int r = out ? reply(c->fd, out) : -1;

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
	struct client *c = arg;

	if (control_peer_allowed(c->v, c->fd))
		serve_client(c);
	else
		reply(c->fd, "{\"ok\":false,\"error\":\"permission denied: only root, the daemon's "
		      "user or its control_group may control vdsfs\"}");
	client_remove(c->fd);
	free(c);
	return NULL;
}

static void *accept_thread(void *arg)
{
	struct vds *v = arg;

	for (;;) {
		int fd = accept4(v->ctl_fd, NULL, NULL, SOCK_CLOEXEC);
		struct client *c;
		pthread_t t;
		pthread_attr_t a;

		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED || errno == EMFILE)
				continue;
			return NULL;	/* the socket was shut down */
		}
		c = malloc(sizeof(*c));
		if (!c || !client_add(fd)) {	/* busy or stopping: refuse */
			close(fd);
			free(c);
			continue;
		}
		c->v = v;
		c->fd = fd;
		pthread_attr_init(&a);
		pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
		if (pthread_create(&t, &a, client_thread, c)) {
			client_remove(fd);
			free(c);
		}
		pthread_attr_destroy(&a);
	}
}

static pthread_t ctl_thread;
static bool ctl_running;

int control_start(struct vds *v)
{
	if (v->ctl_fd < 0)
		return 0;
	if (pthread_create(&ctl_thread, NULL, accept_thread, v))
		return -EAGAIN;
	ctl_running = true;
	return 0;
}

void control_stop(struct vds *v)
{
	if (v->ctl_fd < 0)
		return;
	shutdown(v->ctl_fd, SHUT_RDWR);
	if (ctl_running)
		pthread_join(ctl_thread, NULL);
	ctl_running = false;
	pthread_mutex_lock(&clients_lock);
	stopping = true;
	for (int i = 0; i < nclients; i++)
		shutdown(client_fds[i], SHUT_RDWR);	/* wakes a client blocked in recv */
	while (nclients)
		pthread_cond_wait(&clients_gone, &clients_lock);
	pthread_mutex_unlock(&clients_lock);
	close(v->ctl_fd);
	v->ctl_fd = -1;
	if (v->ctl_path)
		unlink(v->ctl_path);
	free(v->ctl_path);
	v->ctl_path = NULL;
}
