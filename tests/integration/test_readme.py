#!/usr/bin/env python3
"""Every vdsctl line of README.md's code blocks, run as written, from / and from the
mount root; then vdsctl's path rule from a folder inside the mount, outside it and
with -s alone.

The mount has the README's datastore names (fast, bulk, nfs) and its default control
socket, as `vdsctl -m` expects; only the README's mountpoint is replaced by the test's.
Synopsis notation is expanded: each [optional] part is tried absent and present, ID
becomes a real migration id. Any other placeholder, or a command this test cannot
check, fails the test, so a new README line cannot go untested."""
import itertools
import json
import os
import re
import shlex
import unittest

from vdsfs_fixture import VDSCTL, Ctl, Mount, main, run

README = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "README.md")
README_MNT = "/var/lib/vdsfs"
NAMES = ["fast", "bulk", "nfs"]
FILES = ["vm1/disk1.raw", "vm1/disk2.raw"]
TERMINAL = ("done", "failed", "cancelled")


def readme_vdsctl_lines():
    """The lines of README code blocks (indented or fenced) that start with vdsctl."""
    out, fenced = [], False
    with open(README) as f:
        for raw in f:
            if raw.startswith("```"):
                fenced = not fenced
            elif (fenced or raw.startswith("    ")) and raw.strip().startswith("vdsctl "):
                out.append(raw.strip())
    return out


def variants(line):
    """The line with each [optional] part left out or kept, every combination."""
    opts = re.findall(r"\[([^\]]*)\]", line)
    for keep in itertools.product((False, True), repeat=len(opts)):
        it = iter(keep)
        yield re.sub(r"\[([^\]]*)\]", lambda mo: mo.group(1) if next(it) else "", line)


def command_of(argv):
    """vdsctl's subcommand and its arguments, past -m/-s (or --mount/--socket)."""
    i = 1
    while argv[i] in ("-m", "-s", "--mount", "--socket"):
        i += 2
    return argv[i], argv[i + 1:]


class ReadmeExamples(unittest.TestCase):
    def test_there_are_examples(self):
        lines = readme_vdsctl_lines()
        self.assertGreaterEqual(len(lines), 6, lines)
        for cmd in ("migrate", "status", "cancel", "datastores", "where"):
            self.assertTrue(any(f" {cmd}" in l for l in lines), cmd)

    def test_each_line_from_root_and_from_the_mount(self):
        for line in readme_vdsctl_lines():
            for where in ("/", "mount root"):
                with self.subTest(line=line, cwd=where):
                    self.run_line(line, where)

    def mount(self, hold=None):
        m = Mount(self, names=NAMES, control=False)
        for rel in FILES:
            os.makedirs(os.path.dirname(m.backing(0, rel)), exist_ok=True)
            with open(m.backing(0, rel), "wb") as f:
                f.write(os.urandom(1 << 20))
        m.start(env={"VDSFS_TEST_HOLD": hold} if hold else None)
        return m, Ctl(m)

    def run_line(self, line, where):
        cmd, _ = command_of(shlex.split(line.replace(README_MNT, "/mnt"), comments=True))
        check = getattr(self, "check_" + cmd, None)
        self.assertIsNotNone(check, f"no check for the README's '{cmd}'; add check_{cmd}")
        m, c = self.mount(hold="copied" if cmd == "cancel" else None)
        mid = None
        if re.search(r"\bID\b", line):
            mid = self.migration_to_cancel(c) if cmd == "cancel" else self.finished_migration(c)
        cwd = "/" if where == "/" else m.mnt
        for text in variants(line):
            argv = shlex.split(text.replace(README_MNT, m.mnt), comments=True)
            argv = [str(mid) if a == "ID" else a for a in argv]
            unknown = [a for a in argv if re.fullmatch(r"[A-Z][A-Z_]+", a)]
            self.assertEqual(unknown, [], f"placeholder in the README line {line!r}")
            p = run([VDSCTL] + argv[1:], check=False, cwd=cwd)
            self.assertEqual(p.returncode, 0, f"{text} from {where}: {p.stderr}")
            check(m, c, command_of(argv)[1], p.stdout, mid)

    def finished_migration(self, c):
        mid, = c.migrate(c.m.path(FILES[1]) + "=nfs")
        self.assertEqual(c.wait_phase(mid, *TERMINAL)["phase"], "done")
        return mid

    def migration_to_cancel(self, c):
        mid, = c.migrate(c.m.path(FILES[1]) + "=nfs")
        c.wait_held(mid, "copied")
        return mid

    def rel(self, m, path):
        return os.path.relpath(path, m.mnt) if path.startswith("/") else path

    def check_migrate(self, m, c, args, out, mid):
        want, to, paths = {}, None, []
        it = iter(args)
        for a in it:
            if a in ("--to", "--bwlimit", "--parallel", "--space-margin"):
                v = next(it)
                to = v if a == "--to" else to
            elif not a.startswith("--"):
                paths.append(a)
        for a in paths:
            path, _, ds = a.rpartition("=") if "=" in a else (a, "", to)
            rel = self.rel(m, path)
            files = [f for f in FILES if f == rel or f.startswith(rel + "/")]
            self.assertTrue(files, f"{a} names none of {FILES}")
            want.update((f, NAMES.index(ds)) for f in files)
        c.wait(lambda: all(s["phase"] in TERMINAL for s in c.status()), "migrations to end")
        self.assertEqual([s["phase"] for s in c.status()], ["done"] * len(want))
        for f, i in want.items():
            self.assertEqual(m.where(f), [i], f)

    def check_status(self, m, c, args, out, mid):
        if "--json" in args:
            ids = [s["id"] for s in json.loads(out)]
        else:
            ids = [int(l.split()[0]) for l in out.splitlines()]
        self.assertEqual(ids, [mid])    # the only migration there is, asked for or not

    def check_cancel(self, m, c, args, out, mid):
        c.release()     # from the hold that kept it cancellable
        self.assertEqual(c.wait_phase(mid, *TERMINAL)["phase"], "cancelled")
        self.assertEqual(m.where(FILES[1]), [0])

    def check_datastores(self, m, c, args, out, mid):
        if "--names" in args:
            self.assertEqual(out.splitlines(), NAMES)
            return
        rows = [l.split() for l in out.splitlines()[1:]]
        self.assertEqual([(r[0], r[-1]) for r in rows], list(zip(NAMES, m.paths)))

    def check_where(self, m, c, args, out, mid):
        want = [f"{self.rel(m, a)}\tfast" for a in args if not a.startswith("--")]
        self.assertEqual(out.splitlines(), want)


class PathRule(unittest.TestCase):
    """The rule beyond the README's lines: from a folder inside the mount paths are
    relative to it; outside paths, ".." out of the mount and a symlink out of it are
    refused with nothing sent or changed; with -s alone paths are from the root."""

    def setUp(self):
        self.m = Mount(self, names=NAMES)
        for rel in FILES:
            os.makedirs(os.path.dirname(self.m.backing(0, rel)), exist_ok=True)
            with open(self.m.backing(0, rel), "wb") as f:
                f.write(os.urandom(1 << 20))
        os.symlink("/etc", self.m.backing(0, "vm1/out"))
        self.m.start()
        self.c = Ctl(self.m)

    def vdsctl(self, cwd, *args, sock_only=False):
        mnt = [] if sock_only else ["-m", self.m.mnt]
        return run([VDSCTL, "-s", self.m.sock] + mnt + list(args), check=False, cwd=cwd)

    def test_relative_to_a_folder_inside(self):
        vm1 = self.m.path("vm1")
        p = self.vdsctl(vm1, "where", "disk1.raw", "../vm1/disk2.raw", "./")
        self.assertEqual((p.returncode, p.stdout), (0, "vm1/disk1.raw\tfast\n"
                                                       "vm1/disk2.raw\tfast\nvm1\tfast\n"), p.stderr)
        p = self.vdsctl(vm1, "migrate", "--wait", "disk2.raw=nfs")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(self.m.where("vm1/disk2.raw"), [2])
        p = self.vdsctl(vm1, "where", "vm1/disk1.raw")     # vm1/vm1/disk1.raw: no such file
        self.assertEqual(p.returncode, 1)
        self.assertIn("vm1/disk1.raw: no such file in the mount", p.stderr)

    def refused(self, cwd, args, expect, sock_only=False):
        before = self.c.status()
        p = self.vdsctl(cwd, *args, sock_only=sock_only)
        self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
        self.assertEqual(len(p.stderr.strip().splitlines()), 1, p.stderr)
        self.assertIn(expect, p.stderr)
        self.assertEqual(self.c.status(), before)
        self.assertEqual([self.m.where(f) for f in FILES], [[0], [0]])

    def test_outside_refused(self):
        mnt, vm1 = self.m.mnt, self.m.path("vm1")
        self.refused("/", ["where", "/etc/hostname"], "not inside the mount")
        self.refused("/", ["migrate", "/etc/hostname=bulk"], "not inside the mount")
        self.refused(mnt, ["migrate", "../x=bulk"], "not inside the mount")
        self.refused(vm1, ["migrate", "../../x", "--to", "bulk"], "not inside the mount")
        self.refused(vm1, ["migrate", "..=bulk"], "the mount's root")
        self.refused("/", ["migrate", mnt + "=bulk"], "the mount's root")
        self.refused("/", ["migrate", "vm1/nope=bulk"], "no such file in the mount")

    def test_symlink_out_of_the_mount_not_followed(self):
        self.refused("/", ["migrate", "vm1/out/hostname=bulk"], "symlink")
        p = self.vdsctl("/", "where", "vm1/out/hostname")
        self.assertEqual(p.returncode, 1, p.stdout)
        self.assertEqual(os.listdir(self.m.paths[1]), [".vdsfs"])

    def test_socket_only_paths_from_the_root(self):
        vm1 = self.m.path("vm1")
        p = self.vdsctl(vm1, "where", "vm1/disk1.raw", "/vm1/disk2.raw", sock_only=True)
        self.assertEqual((p.returncode, p.stdout),
                         (0, "vm1/disk1.raw\tfast\nvm1/disk2.raw\tfast\n"), p.stderr)
        self.refused("/", ["migrate", "../x=bulk"], "leads out of the mount", sock_only=True)


if __name__ == "__main__":
    main()
