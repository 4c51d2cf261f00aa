#!/usr/bin/env python3
"""Native is the oracle: the same table of operations runs on a plain directory of
the host filesystem and on the mount, and what comes back must be the same.

Compared per row: the return value or errno, then every entry of the row's own
directory (type, size, content, link target) and how atime, mtime and ctime of each
entry and of the directory itself moved between before and after (earlier, same,
later). No expected value is typed here: whatever the host filesystem does is right.

Rows: open() with O_RDONLY/O_WRONLY/O_RDWR x O_CREAT x O_EXCL x O_TRUNC x O_APPEND on
an absent name, a regular file, a directory, a symlink to a file, a dangling symlink
and a fifo (a successful open that may write writes two bytes); truncate() and
ftruncate() to a shorter, equal and longer size; an O_TRUNC open of a file another
handle holds; rename over an existing file.

The mount runs with create=ds1 while every row's directory already exists on ds0:
the union shows ds0's copy of a directory, so a name created on ds1 must still move
the times of the directory the user sees.

The table runs on idle files, and again with the regular file of each row held in
the middle of a migration: at "copied" (writes go to the differencing file only) and
at "converged" (mirrored to the destination copy as well). Those migrations then
finish, and the file must read back as the native one does.
"""
import errno
import os
import stat
import time
import unittest

from vdsfs_fixture import Ctl, Mount, main, state_files

CONTENT = bytes(range(48, 58)) * 10     # 100 bytes
ACCESS = (("RDONLY", os.O_RDONLY), ("WRONLY", os.O_WRONLY), ("RDWR", os.O_RDWR))
MODIFIERS = (("CREAT", os.O_CREAT), ("EXCL", os.O_EXCL), ("TRUNC", os.O_TRUNC),
             ("APPEND", os.O_APPEND))
KINDS = ("absent", "file", "dir", "symlink", "dangling", "fifo")
# Coarse timestamps tick at most every jiffy (<= 10 ms): between "before" and the
# operation, and between the operation and "after", at least that much time passes,
# so a change of a time shows as a change. Native and mount get the same pauses.
TICK = 0.03


def open_rows():
    rows = []
    for kind in KINDS:
        for aname, acc in ACCESS:
            for bits in range(16):
                names, flags = [aname], acc
                for i, (mname, mflag) in enumerate(MODIFIERS):
                    if bits & (1 << i):
                        names.append(mname)
                        flags |= mflag
                rows.append((f"open {'|'.join(names)} on {kind}", kind, flags))
    return rows


def make_target(d, kind):
    """The row's object "t" (and for symlinks its target "t.target") in d."""
    t = os.path.join(d, "t")
    if kind in ("file", "symlink"):
        with open(os.path.join(d, "t.target") if kind == "symlink" else t, "wb") as f:
            f.write(CONTENT)
    if kind in ("symlink", "dangling"):
        os.symlink("t.target", t)
    elif kind == "dir":
        os.mkdir(t)
    elif kind == "fifo":
        os.mkfifo(t)


def do_open(path, flags):
    """Open (never blocking on a fifo), write two bytes if it may, close."""
    try:
        fd = os.open(path, flags | os.O_NONBLOCK, 0o644)
    except OSError as e:
        return errno.errorcode[e.errno]
    try:
        if flags & (os.O_WRONLY | os.O_RDWR) and stat.S_ISREG(os.fstat(fd).st_mode):
            os.write(fd, b"AB")
    except OSError as e:
        return "write " + errno.errorcode[e.errno]
    finally:
        os.close(fd)
    return "ok"


def call(fn, *args):
    try:
        r = fn(*args)
        return "ok" if r is None else r
    except OSError as e:
        return errno.errorcode[e.errno]


def do_ftruncate(path, size):
    fd = os.open(path, os.O_WRONLY)
    try:
        os.ftruncate(fd, size)
    finally:
        os.close(fd)


def snapshot(d, contents=True):
    """{name: (lstat, what it holds)} for d itself (".") and every entry of d. Every
    lstat comes before any read: reading a file may move its atime (relatime)."""
    names = sorted(os.listdir(d))
    out = {".": (os.lstat(d), None)}
    out.update((name, (os.lstat(os.path.join(d, name)), None)) for name in names)
    for name in names if contents else ():
        p, st = os.path.join(d, name), out[name][0]
        if stat.S_ISREG(st.st_mode):
            with open(p, "rb") as f:
                out[name] = (st, f.read())
        elif stat.S_ISLNK(st.st_mode):
            out[name] = (st, "-> " + os.readlink(p))
    return out


def order(a, b):
    return "earlier" if b < a else "later" if b > a else "same"


def compare(before, after):
    """What a row did to its directory, in terms both sides can agree on."""
    res = {}
    for name, (st, what) in after.items():
        kind = stat.S_IFMT(st.st_mode)
        e = {"type": kind, "mode": stat.S_IMODE(st.st_mode)}
        if name != "." and not stat.S_ISDIR(st.st_mode):
            e["size"] = st.st_size
            e["content"] = what
        if name in before:
            b = before[name][0]
            e["times"] = tuple(order(getattr(b, f), getattr(st, f))
                               for f in ("st_atime_ns", "st_mtime_ns", "st_ctime_ns"))
        else:
            e["times"] = "new"
        res[name] = e
    res["gone"] = sorted(set(before) - set(after))
    return res


def run_rows(top, rows):
    """rows: (label, kind, action(dir) -> result). Each row gets top/rNNN. Returns
    {label: (result, comparison)}. Batched, so that the pauses are paid once."""
    dirs = [os.path.join(top, f"r{i:03d}") for i in range(len(rows))]
    for d, (_, kind, _) in zip(dirs, rows):
        make_target(d, kind)
    time.sleep(TICK)
    before = [snapshot(d, contents=False) for d in dirs]
    time.sleep(TICK)
    results = [action(d) for d, (_, _, action) in zip(dirs, rows)]
    time.sleep(TICK)
    after = [snapshot(d) for d in dirs]
    return {label: (r, compare(b, a))
            for (label, _, _), r, b, a in zip(rows, results, before, after)}


def table():
    rows = [(label, kind, lambda d, f=flags: do_open(os.path.join(d, "t"), f))
            for label, kind, flags in open_rows()]
    for size, word in ((50, "shorter"), (100, "equal"), (200, "longer")):
        for kind in ("file", "symlink"):
            rows.append((f"truncate {word} on {kind}", kind,
                         lambda d, s=size: call(os.truncate, os.path.join(d, "t"), s)))
            rows.append((f"ftruncate {word} on {kind}", kind,
                         lambda d, s=size: call(do_ftruncate, os.path.join(d, "t"), s)))
    for aname, acc in ACCESS:
        rows.append((f"open {aname}|TRUNC on file another handle holds", "file",
                     lambda d, f=acc | os.O_TRUNC: open_beside(os.path.join(d, "t"), f)))
    rows.append(("rename file over file", "file", rename_over))
    return rows


def open_beside(path, flags):
    """Open with flags while another handle holds the file, then write through that
    one past the new end: both handles see one file."""
    fd = os.open(path, os.O_RDWR)
    try:
        r = do_open(path, flags)
        os.pwrite(fd, b"Z", 5)
        return r, os.pread(fd, 16, 0)
    finally:
        os.close(fd)


def rename_over(d):
    with open(os.path.join(d, "u"), "wb") as f:
        f.write(b"replacement")
    return call(os.rename, os.path.join(d, "u"), os.path.join(d, "t"))


class Oracle(unittest.TestCase):
    def assert_same(self, native, mounted):
        self.assertEqual(sorted(native), sorted(mounted))
        bad = [label for label in native if native[label] != mounted[label]]
        if bad:
            self.fail(f"{len(bad)} of {len(native)} rows differ: " + ", ".join(bad) +
                      "\nthe first ones:\n" + "\n".join(
                          f"{label}:\n  native {native[label]}\n  mount  {mounted[label]}"
                          for label in bad[:8]))


class Idle(Oracle):
    def test_table_on_idle_files(self):
        rows = table()
        m = Mount(self, n=2, opts="create=ds1")
        native = os.path.join(m.top, "native")
        for i in range(len(rows)):
            os.makedirs(os.path.join(native, f"r{i:03d}"))
            os.makedirs(m.backing(0, f"r{i:03d}"))
        m.start()
        self.assert_same(run_rows(native, rows), run_rows(m.mnt, rows))


class HeldCopied(Oracle):
    """The regular-file rows again, on one file held mid-migration: each row first
    puts the file back to CONTENT through the mount (so through the overlay), then
    runs as above. Natively the same steps run on a plain file."""
    hold = "copied"

    def restore(self, path):
        fd = os.open(path, os.O_WRONLY)
        try:
            os.pwrite(fd, CONTENT, 0)
            os.ftruncate(fd, len(CONTENT))
        finally:
            os.close(fd)

    def run_held(self, top, rows):
        d = os.path.join(top, "held")
        out = {}
        for label, _, action in rows:
            self.restore(os.path.join(d, "t"))
            for name in os.listdir(d):
                if name != "t":
                    os.unlink(os.path.join(d, name))
            out[label] = self.one_row(d, action)
        return out

    def one_row(self, d, action):
        time.sleep(TICK)
        before = snapshot(d, contents=False)
        time.sleep(TICK)
        r = action(d)
        time.sleep(TICK)
        return r, compare(before, snapshot(d))

    def test_table_on_a_migrating_file(self):
        rows = [r for r in table() if r[1] == "file"]
        m = Mount(self, n=2)
        native = os.path.join(m.top, "native")
        for top in (native, m.paths[0]):
            os.makedirs(os.path.join(top, "held"))
            make_target(os.path.join(top, "held"), "file")
        m.start(env={"VDSFS_TEST_HOLD": self.hold})
        c = Ctl(m)
        mid, = c.migrate(m.path("held/t"), "--to", "ds1")
        c.wait_held(mid, self.hold)
        nat = self.run_held(native, rows[:-1])
        mnt = self.run_held(m.mnt, rows[:-1])
        self.assertEqual(c.one(mid)["phase"], "copying" if self.hold == "copied" else
                         "converging")
        self.assert_same(nat, mnt)
        c.release()
        st = c.wait_phase(mid, "done", "failed", "cancelled")
        self.assertEqual(st["phase"], "done", st)
        self.assertEqual(m.where("held/t"), [1])
        self.assertEqual(open(m.path("held/t"), "rb").read(),
                         open(os.path.join(native, "held/t"), "rb").read())
        self.assertEqual(state_files(m), [])

    def test_rename_over_a_migrating_file(self):
        """The migrating file is replaced by a rename: the new file must stay, the
        migration must not move anything."""
        m = Mount(self, n=2)
        native = os.path.join(m.top, "native")
        for top in (native, m.paths[0]):
            os.makedirs(os.path.join(top, "held"))
            make_target(os.path.join(top, "held"), "file")
        m.start(env={"VDSFS_TEST_HOLD": self.hold})
        c = Ctl(m)
        mid, = c.migrate(m.path("held/t"), "--to", "ds1")
        c.wait_held(mid, self.hold)
        nat = self.one_row(os.path.join(native, "held"), rename_over)
        mnt = self.one_row(m.path("held"), rename_over)
        self.assert_same({"rename": nat}, {"rename": mnt})
        c.release()
        st = c.wait_phase(mid, "done", "failed", "cancelled")
        self.assertNotEqual(st["phase"], "done", st)
        self.assertEqual(open(m.path("held/t"), "rb").read(), b"replacement")
        self.assertEqual(m.where("held/t"), [0])
        self.assertEqual(state_files(m), [])


class HeldConverged(HeldCopied):
    hold = "converged"


if __name__ == "__main__":
    main()
