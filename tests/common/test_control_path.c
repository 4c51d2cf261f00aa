/* Unit tests for common/control_path.c: the default control socket name.
 *
 * The oracle is the real `systemd-escape --path` (package systemd, which
 * tools/deps.sh installs): every expected name comes from running it, none is
 * typed here. It is run through fork/exec, not a shell, so that spaces, quotes
 * and control bytes in the table reach it unchanged. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "control_path.h"

#define SUN_PATH_MAX	108	/* sizeof(sun_path) on Linux, the limit the name must respect */

/* systemd-escape --path's answer for path, without its newline. */
static void oracle(const char *path, char *out, size_t len)
{
	int fds[2], status;
	size_t n = 0;
	ssize_t r;
	pid_t pid;

	cr_assert_eq(pipe(fds), 0);
	pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		dup2(fds[1], STDOUT_FILENO);
		close(fds[0]);
		execlp("systemd-escape", "systemd-escape", "--path", "--", path, (char *)NULL);
		_exit(127);
	}
	close(fds[1]);
	while (n + 1 < len && (r = read(fds[0], out + n, len - n - 1)) > 0)
		n += (size_t)r;
	close(fds[0]);
	out[n] = 0;
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) != 127,
		  "systemd-escape is missing (Debian package systemd; tools/deps.sh installs it)");
	cr_assert_eq(WEXITSTATUS(status), 0, "systemd-escape --path refused '%s'", path);
	cr_assert(n > 0 && out[n - 1] == '\n', "unexpected output '%s'", out);
	out[n - 1] = 0;
}

Test(control_path, same_as_systemd_escape)
{
	static const char *paths[] = {
		"/", "/var/lib/vdsfs", "/srv/vm-a", "/srv/vm/a", "/srv/vm\\x2da",
		"//a//b/", "/a/b/", "/.hidden/x", "/a/.b", "/a.", "/-", "/-/-", "/a-b-c",
		"/a b/c d", "/a:b_c.d", "/100%", "/back\\slash", "/q'uo\"te", "/tab\tx",
		"/nl\nx", "/\x01\x7f", "/caf\xc3\xa9", "/x\xff", "/A~z/{}[]", "/run/vdsfs",
	};
	char got[256], want[128], path[256];

	for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
		oracle(paths[i], want, sizeof(want));
		snprintf(path, sizeof(path), "%s/%s.sock", VDS_CONTROL_DIR, want);
		cr_assert_eq(control_default_path(paths[i], got, sizeof(got)), 0, "path '%s'", paths[i]);
		cr_assert_str_eq(got, path, "path '%s'", paths[i]);
	}
}

Test(control_path, distinct_mountpoints_distinct_sockets)
{
	char a[SUN_PATH_MAX], b[SUN_PATH_MAX];

	cr_assert_eq(control_default_path("/srv/vm-a", a, sizeof(a)), 0);
	cr_assert_eq(control_default_path("/srv/vm/a", b, sizeof(b)), 0);
	cr_assert_str_neq(a, b);
}

/* The name must fit a Unix socket address whatever buffer the caller has. */
Test(control_path, longest_name_that_fits)
{
	size_t room = SUN_PATH_MAX - 1 - strlen(VDS_CONTROL_DIR "/") - strlen(".sock");
	char mnt[256] = "/", out[512];

	memset(mnt + 1, 'a', room);
	cr_assert_eq(control_default_path(mnt, out, sizeof(out)), 0);
	cr_assert_eq(strlen(out), SUN_PATH_MAX - 1);
	mnt[room + 1] = 'a';
	cr_assert_eq(control_default_path(mnt, out, sizeof(out)), -ENAMETOOLONG);
}

/* Escaping makes a name four times longer: the limit applies to the escaped name. */
Test(control_path, escaped_name_too_long)
{
	char mnt[64] = "/", out[512];

	memset(mnt + 1, '-', 30);	/* 31 bytes as typed, 120 escaped */
	cr_assert_eq(control_default_path(mnt, out, sizeof(out)), -ENAMETOOLONG);
}

Test(control_path, small_buffer)
{
	char out[20];

	cr_assert_eq(control_default_path("/var/lib/vdsfs", out, sizeof(out)), -ENAMETOOLONG);
	cr_assert_lt(strlen(out), sizeof(out));
}

Test(control_path, refused)
{
	char out[SUN_PATH_MAX];

	cr_assert_eq(control_default_path("var/lib", out, sizeof(out)), -EINVAL);
	cr_assert_eq(control_default_path("", out, sizeof(out)), -EINVAL);
	cr_assert_eq(control_default_path("/a/./b", out, sizeof(out)), -EINVAL);
	cr_assert_eq(control_default_path("/a/../b", out, sizeof(out)), -EINVAL);
	cr_assert_eq(control_default_path("/..", out, sizeof(out)), -EINVAL);
}
