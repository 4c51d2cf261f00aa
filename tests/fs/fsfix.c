/* fsfix.c - see fsfix.h. */
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fsfix.h"

/* The directory of the fixture still alive, for the exit hook. */
static char live_top[64];

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	if (flag == FTW_DP)
		return rmdir(path) < 0 ? -1 : 0;
	return unlink(path) < 0 ? -1 : 0;
}

static void rm_tree(const char *top)
{
	if (top[0] && nftw(top, rm_one, 16, FTW_DEPTH | FTW_PHYS) < 0)
		fprintf(stderr, "fsfix: could not remove %s: %s\n", top, strerror(errno));
}

static void rm_live(void)
{
	rm_tree(live_top);
	live_top[0] = 0;
}

void fsfix_init_in(struct fsfix *f, int nds, const char *parent)
{
	static bool hooked;
	char err[256];

	memset(f, 0, sizeof(*f));
	snprintf(f->top, sizeof(f->top), "%s/vds-fsunit-XXXXXX", parent);
	cr_assert_not_null(mkdtemp(f->top));
	snprintf(live_top, sizeof(live_top), "%s", f->top);
	if (!hooked) {
		atexit(rm_live);
		hooked = true;
	}
	cr_assert(nds > 0 && nds <= 8);
	for (int i = 0; i < nds; i++) {
		char dir[PATH_MAX], name[2] = { (char)('a' + i), 0 };

		snprintf(dir, sizeof(dir), "%s/ds%d", f->top, i);
		cr_assert_eq(mkdir(dir, 0755), 0);
		cr_assert_eq(ds_open(&f->store.ds[i], name, dir, err, sizeof(err)), 0, "%s", err);
		f->store.nds = i + 1;
	}
	f->store.create = VDS_CREATE_FF;
	f->store.create_named = -1;
	f->store.root = geteuid() == 0;
	f->ns = calloc(1, sizeof(*f->ns));	/* the node table is a megabyte */
	cr_assert_not_null(f->ns);
	cr_assert_eq(ns_init(f->ns, &f->store), 0);
	cr_assert_eq(migs_new(&f->store, f->ns, &f->g), 0);
}

void fsfix_fini(struct fsfix *f)
{
	if (f->g) {
		migs_shutdown(f->g);
		migs_free(f->g);
		f->g = NULL;
	}
	if (f->ns) {
		ns_destroy(f->ns);
		free(f->ns);
		f->ns = NULL;
	}
	store_close(&f->store);
	rm_tree(f->top);
	live_top[0] = 0;
}

void fsfix_path(const struct fsfix *f, int ds, const char *rel, char *out, size_t len)
{
	if (!rel[0] || !strcmp(rel, "."))
		snprintf(out, len, "%s/ds%d", f->top, ds);
	else
		snprintf(out, len, "%s/ds%d/%s", f->top, ds, rel);
}

void fsfix_state_path(const struct fsfix *f, int ds, const char *name, char *out, size_t len)
{
	snprintf(out, len, "%s/ds%d/%s/%s", f->top, ds, VDS_STATE_DIR, name);
}

void write_file(const char *path, const void *buf, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);

	cr_assert_geq(fd, 0, "creating %s: %s", path, strerror(errno));
	cr_assert_eq(pwrite(fd, buf, len, 0), (ssize_t)len, "writing %s", path);
	close(fd);
}

uint8_t *read_fd(int fd, size_t *len)
{
	struct stat st;
	uint8_t *buf;

	cr_assert_eq(fstat(fd, &st), 0);
	buf = malloc(st.st_size ? (size_t)st.st_size : 1);
	cr_assert_not_null(buf);
	cr_assert_eq(pread(fd, buf, (size_t)st.st_size, 0), (ssize_t)st.st_size);
	*len = (size_t)st.st_size;
	return buf;
}

uint8_t *read_file(const char *path, size_t *len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	uint8_t *buf;

	if (fd < 0) {
		cr_assert_eq(errno, ENOENT, "opening %s: %s", path, strerror(errno));
		*len = 0;
		return NULL;
	}
	buf = read_fd(fd, len);
	close(fd);
	return buf;
}

bool file_exists(const char *path)
{
	struct stat st;

	return lstat(path, &st) == 0;
}

ino_t file_ino(const char *path)
{
	struct stat st;

	cr_assert_eq(lstat(path, &st), 0, "%s: %s", path, strerror(errno));
	return st.st_ino;
}

int count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *de;
	int n = 0;

	cr_assert_not_null(d);
	while ((de = readdir(d)))
		n += de->d_name[0] != '.';
	closedir(d);
	return n - 1;	/* the one opendir holds */
}

bool fd_is_open(int fd)
{
	return fcntl(fd, F_GETFD) != -1;
}

char thread_state(int tid)
{
	char p[64], line[512], *close_paren;
	FILE *f;

	snprintf(p, sizeof(p), "/proc/self/task/%d/stat", tid);
	f = fopen(p, "r");
	if (!f)
		return '?';
	if (!fgets(line, sizeof(line), f))
		line[0] = 0;
	fclose(f);
	close_paren = strrchr(line, ')');	/* the name may hold anything, even ')' */
	return close_paren && close_paren[1] && close_paren[2] ? close_paren[2] : '?';
}

uint64_t rng_next(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

void rng_fill(uint64_t *s, void *buf, size_t len)
{
	uint8_t *p = buf;

	while (len) {
		uint64_t v = rng_next(s);
		size_t n = len < 8 ? len : 8;

		memcpy(p, &v, n);
		p += n;
		len -= n;
	}
}
