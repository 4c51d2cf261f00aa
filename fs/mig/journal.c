/* journal.c - write, remove and parse migration journals (see journal.h). */
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "journal.h"
#include "mig_int.h"

static int write_all(int fd, const char *s, size_t len)
{
	while (len) {
		ssize_t n = write(fd, s, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? -errno : -EIO;
		s += n;
		len -= n;
	}
	return 0;
}

static char *journal_text(struct mig *m, enum mig_phase phase, unsigned *gen)
{
	const struct store *st = m->g->store;
	json_object *o = json_object_new_object();
	char *dup;

	migs_lock(m->g);
	json_object_object_add(o, "version", json_object_new_int(JOURNAL_VERSION));
	json_object_object_add(o, "id", json_object_new_int64((int64_t)m->id));
	json_object_object_add(o, "path", json_object_new_string(m->path));
	*gen = m->path_gen;
	migs_unlock(m->g);
	json_object_object_add(o, "src", json_object_new_string(st->ds[m->src].name));
	json_object_object_add(o, "dst", json_object_new_string(st->ds[m->dst].name));
	json_object_object_add(o, "phase", json_object_new_string(mig_phase_name(phase)));
	json_object_object_add(o, "src_ino", json_object_new_int64((int64_t)m->src_ino));
	dup = strdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
	json_object_put(o);
	return dup;
}

int journal_stage(struct mig *m, enum mig_phase phase, unsigned *gen)
{
	int sfd = m->g->store->ds[m->src].state_fd, fd, ret;
	char tmp[64];
	char *text;

	assert(lk_held(LK_JOURNAL));
	text = journal_text(m, phase, gen);
	if (!text)
		return -ENOMEM;
	snprintf(tmp, sizeof(tmp), "%s.json.next", m->name);
	fd = openat(sfd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0) {
		free(text);
		return -errno;
	}
	ret = write_all(fd, text, strlen(text));
	if (!ret && fdatasync(fd) < 0)
		ret = -errno;
	close(fd);
	free(text);
	if (ret)	/* e.g. ENOSPC: a half-written record must not linger */
		unlinkat(sfd, tmp, 0);
	return ret;
}

int journal_commit(struct mig *m, bool *current)
{
	int sfd = m->g->store->ds[m->src].state_fd;
	char tmp[64], name[64];

	assert(lk_held(LK_JOURNAL));
	snprintf(tmp, sizeof(tmp), "%s.json.next", m->name);
	snprintf(name, sizeof(name), "%s.json", m->name);
	if (renameat(sfd, tmp, sfd, name) < 0)
		return -errno;
	if (current)
		*current = true;
	return fsync(sfd) < 0 ? -errno : 0;
}

int journal_write(struct mig *m, enum mig_phase phase)
{
	unsigned gen;
	int ret = journal_stage(m, phase, &gen);

	if (!ret)
		ret = journal_commit(m, NULL);
	if (!ret) {
		m->journal_phase = (int)phase;
		m->journal_gen = gen;
	}
	return ret;
}

int journal_remove(struct mig *m)
{
	int sfd = m->g->store->ds[m->src].state_fd;
	char name[64];

	snprintf(name, sizeof(name), "%s.json.next", m->name);
	unlinkat(sfd, name, 0);
	snprintf(name, sizeof(name), "%s.json", m->name);
	if (unlinkat(sfd, name, 0) < 0 && errno != ENOENT)
		return -errno;
	return fsync(sfd) < 0 ? -errno : 0;
}

static int get_str(json_object *o, const char *key, char *out, size_t len)
{
	json_object *v;
	const char *s;

	if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_string))
		return -EBADMSG;
	s = json_object_get_string(v);
	if (strlen(s) >= len)
		return -EBADMSG;
	strcpy(out, s);
	return 0;
}

int journal_parse(const char *text, struct journal_rec *r)
{
	json_object *o = json_tokener_parse(text), *id, *v;
	char phase[16];
	int ret = -EBADMSG;

	memset(r, 0, sizeof(*r));
	if (!o)
		return -EBADMSG;
	if (!json_object_object_get_ex(o, "version", &v) || !json_object_is_type(v, json_type_int))
		;	/* -EBADMSG */
	else if (json_object_get_int64(v) != JOURNAL_VERSION)
		ret = -EPROTONOSUPPORT;
	else if (json_object_object_get_ex(o, "id", &id) && json_object_is_type(id, json_type_int) &&
	    json_object_get_int64(id) > 0) {
		r->id = (uint64_t)json_object_get_int64(id);
		ret = get_str(o, "path", r->path, sizeof(r->path));
		if (!ret)
			ret = get_str(o, "src", r->src, sizeof(r->src));
		if (!ret)
			ret = get_str(o, "dst", r->dst, sizeof(r->dst));
		if (!ret)
			ret = get_str(o, "phase", phase, sizeof(phase));
		if (!ret) {
			int p = mig_phase_parse(phase);

			if (p < 0)
				ret = -EBADMSG;
			else
				r->phase = (enum mig_phase)p;
		}
		/* Optional (older records lack it): the source inode, so that recovery
		 * removes a source only if it is still the file that was migrated. */
		if (!ret && json_object_object_get_ex(o, "src_ino", &id) &&
		    json_object_is_type(id, json_type_int))
			r->src_ino = (uint64_t)json_object_get_int64(id);
	}
	json_object_put(o);
	return ret;
}
