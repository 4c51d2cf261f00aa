/* helpers.c - see helpers.h. */
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <criterion/criterion.h>

#include "helpers.h"

/* Directories not yet removed; a failed assertion ends the test process early,
 * so an atexit hook removes whatever is left. */
static char live[16][256];

static void rm_path(const char *path)
{
	char cmd[512];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", path);
	if (system(cmd))
		cr_log_warn("could not remove %s", path);
}

static void rm_live(void)
{
	for (int i = 0; i < 16; i++)
		if (live[i][0])
			rm_path(live[i]);
}

void tdir_new(struct tdir *d)
{
	static int hooked;

	snprintf(d->path, sizeof(d->path), "/tmp/vds-ovtest-XXXXXX");
	cr_assert_not_null(mkdtemp(d->path));
	if (!hooked++)
		atexit(rm_live);
	for (int i = 0; i < 16; i++)
		if (!live[i][0]) {
			snprintf(live[i], sizeof(live[i]), "%s", d->path);
			break;
		}
}

void tdir_rm(struct tdir *d)
{
	rm_path(d->path);
	for (int i = 0; i < 16; i++)
		if (!strcmp(live[i], d->path))
			live[i][0] = 0;
}

void tdir_file(const struct tdir *d, const char *name, char *out, size_t len)
{
	snprintf(out, len, "%s/%s", d->path, name);
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

int open_new(const char *path)
{
	int fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);

	cr_assert_geq(fd, 0, "open %s", path);
	return fd;
}

int open_rw(const char *path)
{
	int fd = open(path, O_RDWR | O_CLOEXEC);

	cr_assert_geq(fd, 0, "open %s", path);
	return fd;
}

int make_base(const char *path, uint64_t size, uint64_t seed, uint8_t **content)
{
	int fd = open_new(path);
	uint8_t *buf = malloc(size ? size : 1);

	cr_assert_not_null(buf);
	rng_fill(&seed, buf, size);
	cr_assert_eq(pwrite(fd, buf, size, 0), (ssize_t)size);
	if (content)
		*content = buf;
	else
		free(buf);
	return fd;
}

struct overlay *ov_new(int base_fd, int diff_fd, uint32_t bs, const char *uuid)
{
	struct overlay_create_opts o = { .block_size = bs, .size = -1, .base_uuid = uuid };
	struct overlay *ov = NULL;
	int ret = overlay_create(base_fd, diff_fd, &o, &ov);

	cr_assert_eq(ret, 0, "overlay_create: %s", strerror(-ret));
	return ov;
}

struct overlay *ov_reopen(int base_fd, int diff_fd, const char *uuid)
{
	char why[256] = "";
	struct overlay_open_opts o = { .base_uuid = uuid, .why = why, .why_len = sizeof(why) };
	struct overlay *ov = NULL;
	int ret = overlay_open(base_fd, diff_fd, &o, &ov);

	cr_assert_eq(ret, 0, "overlay_open: %s (%s)", strerror(-ret), why);
	return ov;
}

static void expect_same(const uint8_t *got, const uint8_t *want, uint64_t size, const char *what)
{
	if (!memcmp(got, want, size))
		return;
	for (uint64_t i = 0; i < size; i++)
		cr_assert_eq(got[i], want[i], "%s: byte %llu is %u, want %u", what,
			     (unsigned long long)i, got[i], want[i]);
}

void expect_contents(struct overlay *ov, const uint8_t *want, uint64_t size)
{
	uint8_t *got = malloc(size + 4096);
	struct overlay_stats st;

	cr_assert_not_null(got);
	overlay_stats(ov, &st);
	cr_assert_eq(st.size, size, "overlay size %llu, want %llu",
		     (unsigned long long)st.size, (unsigned long long)size);
	cr_assert_eq(overlay_read(ov, got, size + 4096, 0), (ssize_t)size);
	expect_same(got, want, size, "overlay");
	free(got);
}

void expect_file(int fd, const uint8_t *want, uint64_t size)
{
	struct stat st;
	uint8_t *got = malloc(size ? size : 1);

	cr_assert_not_null(got);
	cr_assert_eq(fstat(fd, &st), 0);
	cr_assert_eq((uint64_t)st.st_size, size, "file size %lld, want %llu",
		     (long long)st.st_size, (unsigned long long)size);
	cr_assert_eq(pread(fd, got, size, 0), (ssize_t)size);
	expect_same(got, want, size, "file");
	free(got);
}

int run_vds_diff(const char *arg0, ...)
{
	const char *exe = getenv("VDS_DIFF");
	const char *argv[16] = { "vds-diff", arg0 };
	va_list ap;
	int n = 2, status;
	pid_t pid;

	if (!exe)
		return -1;
	va_start(ap, arg0);
	while (n < 15 && (argv[n] = va_arg(ap, const char *)))
		n++;
	va_end(ap);
	argv[n] = NULL;
	pid = fork();
	if (pid == 0) {
		int null = open("/dev/null", O_WRONLY);

		dup2(null, 1);
		dup2(null, 2);
		execv(exe, (char **)argv);
		_exit(127);
	}
	if (pid < 0 || waitpid(pid, &status, 0) != pid || !WIFEXITED(status))
		return -1;
	return WEXITSTATUS(status);
}
