#!/usr/bin/env python3
"""Live migration through the mount: the seed scenario and its order, qemu-io and
fio verify while files move, a writer flat out, cancel in each phase, the namespace
rules (rename, unlink, truncate during a migration) and every bad request.

Phases are pinned with the daemon's test-only hold point (VDSFS_TEST_HOLD, see
fs/mig/testpoint.h) so no assertion depends on timing."""
import os
import subprocess
import unittest

from vdsfs_fixture import Ctl, Mount, main, run, state_files

MB = 1 << 20


def make_file(path, size_mb, fill=True):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        if fill:
            chunk = os.urandom(MB)
            for _ in range(size_mb):
                f.write(chunk)
        else:
            f.truncate(size_mb * MB)


def qemu_io(img, *cmds, check=True):
    args = ["qemu-io", "-f", "raw", "-t", "none", "-i", "io_uring"]
    for c in cmds:
        args += ["-c", c]
    p = run(args + [img], check=check)
    if check:
        assert "Pattern verification failed" not in p.stdout + p.stderr, p.stdout
    return p


def fio_args(path, size, extra=()):
    return ["fio", "--name=v", f"--filename={path}", f"--size={size}", "--direct=1",
            "--ioengine=io_uring", "--rw=randwrite", "--bs=4k", "--iodepth=16",
            "--verify=crc32c", "--verify_fatal=1", "--verify_state_save=0",
            "--output-format=terse"] + list(extra)


class Base(unittest.TestCase):
    hold = None
    n = 2
    tmpfs = None

    def setUp(self):
        self.m = Mount(self, n=self.n, tmpfs_mb=self.tmpfs)
        self.files()
        self.m.start(env={"VDSFS_TEST_HOLD": self.hold} if self.hold else None)
        self.c = Ctl(self.m)

    def files(self):
        make_file(self.m.backing(0, "vm/disk"), 32)

    def assert_clean(self):
        self.assertEqual(state_files(self.m), [])

    def migrate_held(self, point, *writes):
        """Start moving vm/disk to ds1, wait at point, then write with qemu-io."""
        img = self.m.path("vm/disk")
        mid, = self.c.migrate(img, "--to", "ds1")
        self.c.wait_held(mid, point)
        if writes:
            qemu_io(img, *writes)
        return img, mid


class Seed(Base):
    """vSphere 5.1: VMDK1, VMDK2 on DS1 -> DS4, VMDK3, VMDK4 on DS2 -> DS3."""
    n = 4
    hold = "copied"

    def files(self):
        for i, ds in ((1, 0), (2, 0), (3, 1), (4, 1)):
            make_file(self.m.backing(ds, f"vm/VMDK{i}"), 16)

    def test_seed_order_with_fio_verify(self):
        p = self.m.path
        # lay out fio's verify headers on every disk, then move them under load
        for i in range(1, 5):
            run(fio_args(p(f"vm/VMDK{i}"), "16m", ["--rw=write", "--bs=64k"]))
        ids = self.c.migrate(p("vm/VMDK1") + "=ds3", p("vm/VMDK2") + "=ds3",
                             p("vm/VMDK3") + "=ds2", p("vm/VMDK4") + "=ds2")
        self.assertEqual(len(ids), 4)
        d1, d2, d3, d4 = ids
        self.c.wait_held(d1, "copied")
        self.c.wait_held(d3, "copied")
        self.assertEqual(self.c.one(d2)["phase"], "queued")
        self.assertEqual(self.c.one(d4)["phase"], "queued")
        # writes while all four are mid-migration (two copying, two queued)
        # Full-coverage random writes (each block once): a later verify_only run
        # replays exactly this pattern, which a number_ios-limited run would not.
        writers = [subprocess.Popen(fio_args(p(f"vm/VMDK{i}"), "16m", ["--verify_backlog=256"]),
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE)
                   for i in range(1, 5)]
        for w in writers:
            out, err = w.communicate()
            self.assertEqual(w.returncode, 0, out + err)
        # one permit per migration: the scheduler alone decides who runs when
        for _ in ids:
            self.c.release()
        for i in ids:
            self.c.wait_phase(i, "done", "failed", "cancelled")
        st = {m["id"]: m for m in self.c.status()}
        for i in ids:
            self.assertEqual(st[i]["phase"], "done", st[i])
        s1, e1, s2, e2 = (st[d1]["started_seq"], st[d1]["ended_seq"],
                          st[d2]["started_seq"], st[d2]["ended_seq"])
        s3, e3, s4 = st[d3]["started_seq"], st[d3]["ended_seq"], st[d4]["started_seq"]
        self.assertTrue(s1 < e3 and s3 < e1, "VMDK1 and VMDK3 must overlap")
        self.assertGreater(s2, e1, "VMDK2 starts only after VMDK1 ends")
        self.assertGreater(s4, e3, "VMDK4 starts only after VMDK3 ends")
        ev = [e for e in self.c.events() if e["event"] == "started"]
        self.assertEqual(len(ev), 4)
        for i, ds in ((1, 3), (2, 3), (3, 2), (4, 2)):
            self.assertEqual(self.m.where(f"vm/VMDK{i}"), [ds])
            r = run(fio_args(p(f"vm/VMDK{i}"), "16m", ["--verify_only"]), check=False)
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assert_clean()


class Parallel(Base):
    n = 4
    hold = "copied"

    def files(self):
        make_file(self.m.backing(0, "vm/a"), 4)
        make_file(self.m.backing(1, "vm/b"), 4)

    def test_parallel_one_serialises_distinct_pairs(self):
        # ds0->ds2 and ds1->ds3 share no datastore: only --parallel 1 keeps b waiting
        a, b = self.c.migrate("--parallel", "1", self.m.path("vm/a") + "=ds2",
                              self.m.path("vm/b") + "=ds3")
        self.c.wait_held(a, "copied")
        self.assertEqual(self.c.one(b)["phase"], "queued")
        self.c.release()
        self.c.wait_held(b, "copied")
        self.c.release()
        sa, sb = self.c.wait_phase(a, "done"), self.c.wait_phase(b, "done")
        self.assertGreater(sb["started_seq"], sa["ended_seq"])
        p = self.c.run("migrate", "--parallel", "0", self.m.path("vm/a"), "--to", "ds0", check=False)
        self.assertNotEqual(p.returncode, 0)


class QemuIo(Base):
    hold = "copied"

    def test_patterns_survive_migration_and_match_reference(self):
        ref = os.path.join(self.m.top, "ref.raw")
        run(["cp", self.m.backing(0, "vm/disk"), ref])
        writes = ["write -P 0x11 0 1M", "write -P 0x22 5M 64k", "write -P 0x33 31M 1M", "flush"]
        img, mid = self.migrate_held("copied", *writes)
        qemu_io(ref, *writes)
        self.c.release()
        self.assertEqual(self.c.wait_phase(mid, "done", "failed")["phase"], "done")
        qemu_io(img, "read -P 0x11 0 1M", "read -P 0x22 5M 64k", "read -P 0x33 31M 1M")
        run(["qemu-img", "compare", "-f", "raw", "-F", "raw", img, ref])
        self.assertEqual(self.m.where("vm/disk"), [1])
        self.assertEqual(os.stat(img).st_size, 32 * MB)
        self.assert_clean()


class Metadata(Base):
    """Owner, mode, times and xattrs are the file's, not the copy's: the same after a
    migration as before, seen through the mount and on the destination itself."""
    hold = "copied"
    XATTRS = {"user.vm": b"disk-0", "trusted.vdsfs-test": b"\x00\x01binary"}

    def files(self):
        make_file(self.m.backing(0, "vm/disk"), 8)
        b = self.m.backing(0, "vm/disk")
        os.chown(b, 1234, 5678)
        os.chmod(b, 0o640)
        os.utime(b, ns=(1_600_000_000_123_456_789, 1_500_000_000_987_654_321))
        for k, v in self.XATTRS.items():
            os.setxattr(b, k, v)

    def meta(self, path):
        st = os.stat(path)
        xattrs = {k: os.getxattr(path, k) for k in os.listxattr(path)}
        return (st.st_uid, st.st_gid, st.st_mode, st.st_atime_ns, st.st_mtime_ns), xattrs

    def migrate(self, write):
        img, mid = self.migrate_held("copied", *(["write -P 0x5a 1M 64k", "flush"] if write else []))
        before = self.meta(img)
        self.c.release()
        self.assertEqual(self.c.wait_phase(mid, "done", "failed")["phase"], "done")
        self.assertEqual(self.m.where("vm/disk"), [1])
        return before, self.meta(img), self.meta(self.m.backing(1, "vm/disk"))

    def test_idle_file_keeps_everything(self):
        before, after, dest = self.migrate(write=False)
        self.assertEqual(before, ((1234, 5678, 0o100640, 1_600_000_000_123_456_789,
                                   1_500_000_000_987_654_321), self.XATTRS))
        self.assertEqual(after, before)
        self.assertEqual(dest, before)

    def test_written_file_keeps_owner_mode_xattrs_and_its_new_mtime(self):
        before, after, dest = self.migrate(write=True)
        self.assertGreater(before[0][4], 1_500_000_000_987_654_321)  # the write moved mtime
        self.assertEqual(after, before)                             # the switch did not
        self.assertEqual(dest, before)


def extent_map(path):
    """[(start, end)] of the data SEEK_DATA/SEEK_HOLE report, in order."""
    out, fd = [], os.open(path, os.O_RDONLY)
    try:
        size, pos = os.fstat(fd).st_size, 0
        while pos < size:
            try:
                start = os.lseek(fd, pos, os.SEEK_DATA)
            except OSError:
                break   # ENXIO: no data after pos
            pos = os.lseek(fd, start, os.SEEK_HOLE)
            out.append((start, pos))
    finally:
        os.close(fd)
    return out


class SparseMap(Base):
    """SEEK_DATA/SEEK_HOLE answer for what the file reads as while it migrates
    (differencing-file blocks are data, punched ones holes, the base for the rest),
    so cp --sparse and qemu-img map stay cheap and right."""
    hold = "copied"

    def files(self):
        b = self.m.backing(0, "vm/disk")
        make_file(b, 32, fill=False)
        with open(b, "r+b") as f:
            for at in (0, 16 * MB):
                f.seek(at)
                f.write(os.urandom(MB))

    def test_holes_and_data_while_migrating_and_after(self):
        img, mid = self.migrate_held("copied", "write -P 0x31 8M 64k", "write -P 0x32 20M 4k",
                                     "discard 16M 512k", "flush")
        want = [(0, MB), (8 * MB, 8 * MB + 64 * 1024), (16 * MB + 512 * 1024, 17 * MB),
                (20 * MB, 20 * MB + 4096)]
        self.assertEqual(extent_map(img), want)
        self.c.release()
        self.assertEqual(self.c.wait_phase(mid, "done", "failed")["phase"], "done")
        self.assertEqual(extent_map(img), want)
        qemu_io(img, "read -P 0x31 8M 64k", "read -P 0 16M 512k", "read -P 0x32 20M 4k")


class UnmountMidMigration(Base):
    """Unmounting stops a migration where it is and leaves its journal; the daemon
    exits (even with the migration parked at a test hold point), and the next mount
    resumes it (MIGRATION.md, "Resume")."""
    hold = "copied"

    def test_unmount_then_remount_resumes(self):
        img, mid = self.migrate_held("copied", "write -P 0x6b 3M 1M", "flush")
        with open(self.m.backing(0, ".vdsfs/lock")) as f:
            pid = int(f.read())
        run(["fusermount3", "-u", self.m.mnt])
        self.c.wait(lambda: not os.path.exists(f"/proc/{pid}"), "the daemon to exit")
        self.assertTrue(state_files(self.m))        # the journal is left for recovery
        self.m.start()
        st = self.c.wait_phase(mid, "done", "failed", "cancelled")
        self.assertEqual((st["phase"], st["recovered"], st["resumed"]), ("done", True, True), st)
        qemu_io(img, "read -P 0x6b 3M 1M")
        self.assertEqual(self.m.where("vm/disk"), [1])
        self.assert_clean()


class FlatOut(Base):
    def files(self):
        make_file(self.m.backing(0, "vm/disk"), 128)

    def test_writer_flat_out_still_converges(self):
        img = self.m.path("vm/disk")
        w = subprocess.Popen(fio_args(img, "128m", ["--iodepth=32", "--time_based", "--runtime=600",
                                                    "--verify_backlog=1024", "--exitall"]),
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            mid, = self.c.migrate(img, "--to", "ds1")
            st = self.c.wait_phase(mid, "done", "failed")
            self.assertEqual(st["phase"], "done", st)
            self.assertIsNone(w.poll(), "the writer must still be running: it never paused")
        finally:
            w.terminate()
            w.wait()
        self.assertEqual(self.m.where("vm/disk"), [1])
        self.assert_clean()


class CancelCopying(Base):
    def test_cancel_during_copy_keeps_writes_on_source(self):
        img = self.m.path("vm/disk")
        mid, = self.c.migrate("--bwlimit", "1M", img, "--to", "ds1")
        self.c.wait(lambda: self.c.one(mid)["bytes_copied"] > 0, "copy progress")
        qemu_io(img, "write -P 0x44 3M 128k", "flush")
        self.c.run("cancel", str(mid))
        self.assertEqual(self.c.wait_phase(mid, "cancelled", "failed", "done")["phase"], "cancelled")
        qemu_io(img, "read -P 0x44 3M 128k")
        self.assertEqual(self.m.where("vm/disk"), [0])
        self.assert_clean()


class CancelConverging(Base):
    hold = "converged"

    def test_cancel_during_converge(self):
        img, mid = self.migrate_held("converged", "write -P 0x55 7M 256k", "flush")
        self.c.run("cancel", str(mid))
        self.c.release()
        self.assertEqual(self.c.wait_phase(mid, "cancelled", "failed", "done")["phase"], "cancelled")
        qemu_io(img, "read -P 0x55 7M 256k")
        self.assertEqual(self.m.where("vm/disk"), [0])
        p = self.c.run("cancel", str(mid), check=False)
        self.assertEqual(p.returncode, 1)
        self.assertIn("already cancelled", p.stderr)
        self.assert_clean()


class NamespaceRules(Base):
    hold = "copied"

    def test_rename_during_migration_follows(self):
        _, mid = self.migrate_held("copied")
        os.makedirs(self.m.path("other"))
        os.rename(self.m.path("vm/disk"), self.m.path("other/renamed"))
        self.c.release()
        self.assertEqual(self.c.wait_phase(mid, "done", "failed")["phase"], "done")
        self.assertEqual(self.m.where("other/renamed"), [1])
        self.assertEqual(self.m.where("vm/disk"), [])
        self.assert_clean()

    def test_unlink_during_migration_cancels(self):
        _, mid = self.migrate_held("copied")
        os.unlink(self.m.path("vm/disk"))
        self.c.release()
        self.assertEqual(self.c.wait_phase(mid, "cancelled", "failed", "done")["phase"], "cancelled")
        self.assertEqual(self.m.where("vm/disk"), [])
        self.assert_clean()

    def test_truncate_and_extend_during_migration(self):
        img, mid = self.migrate_held("copied")
        os.truncate(img, 8 * MB)
        os.truncate(img, 40 * MB)
        self.assertEqual(os.stat(img).st_size, 40 * MB)
        qemu_io(img, "write -P 0x66 39M 1M", "flush")
        self.c.release()
        self.assertEqual(self.c.wait_phase(mid, "done", "failed")["phase"], "done")
        self.assertEqual(os.stat(img).st_size, 40 * MB)
        qemu_io(img, "read -P 0 8M 31M", "read -P 0x66 39M 1M")
        self.assert_clean()

    def test_open_handle_survives_switch(self):
        img = self.m.path("vm/disk")
        fd = os.open(img, os.O_RDWR)
        try:
            ino = os.fstat(fd).st_ino
            mid, = self.c.migrate(img, "--to", "ds1")
            self.c.wait_held(mid, "copied")
            os.pwrite(fd, b"before-switch", 100)
            self.c.release()
            self.assertEqual(self.c.wait_phase(mid, "done", "failed")["phase"], "done")
            os.pwrite(fd, b"after-switch!", 200)
            os.fsync(fd)
            self.assertEqual(os.pread(fd, 13, 100), b"before-switch")
            self.assertEqual(os.stat(img).st_ino, ino)
        finally:
            os.close(fd)
        with open(self.m.backing(1, "vm/disk"), "rb") as f:
            f.seek(200)
            self.assertEqual(f.read(13), b"after-switch!")


class SwitchRaces(Base):
    """The file is unlinked or replaced (renamed over) while its switch is under
    way, past the point where unlink or rename still cancel it: the flip checks
    that the source path still names the migrating file, and ends cancelled
    instead of resurrecting it or clobbering the new one."""
    hold = "switching"

    def held(self):
        img, mid = self.migrate_held("switching")
        self.assertEqual(self.c.one(mid)["phase"], "switching")
        return img, mid

    def assert_cancelled(self, mid, why):
        st = self.c.wait_phase(mid, "done", "failed", "cancelled")
        self.assertEqual(st["phase"], "cancelled", st)
        self.assertRegex(st.get("note", ""), why)
        self.assert_clean()

    def replace(self, ds):
        """Rename, through the mount, a new file on datastore ds over vm/disk."""
        img, mid = self.held()
        new = self.m.backing(ds, "vm/new")
        os.makedirs(os.path.dirname(new), exist_ok=True)
        with open(new, "wb") as f:
            f.write(b"the new file\n")
        before = os.stat(new)
        os.rename(self.m.path("vm/new"), img)
        self.c.release()
        self.assert_cancelled(mid, "replaced|renamed over")
        with open(img, "rb") as f:
            self.assertEqual(f.read(), b"the new file\n")
        self.assertEqual(self.m.where("vm/disk"), [ds])
        after = os.stat(self.m.backing(ds, "vm/disk"))
        self.assertEqual((after.st_ino, after.st_mtime_ns, after.st_size),
                         (before.st_ino, before.st_mtime_ns, before.st_size))

    def test_renamed_over_from_the_destination_is_not_clobbered(self):
        self.replace(1)

    def test_renamed_over_on_the_source_is_not_removed(self):
        self.replace(0)

    def test_unlinked_while_switching_stays_unlinked(self):
        img, mid = self.held()
        os.unlink(img)
        self.c.release()
        self.assert_cancelled(mid, "removed")
        self.assertFalse(os.path.exists(img))
        self.assertEqual(self.m.where("vm/disk"), [])


class ManyHandles(Base):
    """A file held open through 300 handles (past the 256 the switch once had room
    for) switches, and every handle reads and writes the destination afterwards."""
    hold = "copied"
    HANDLES = 300

    def test_300_handles_survive_the_switch(self):
        import resource
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if soft < self.HANDLES + 64:
            resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 4096), hard))
        img = self.m.path("vm/disk")
        fds = [os.open(img, os.O_RDWR) for _ in range(self.HANDLES)]
        for fd in fds:
            self.addCleanup(os.close, fd)
        mid, = self.c.migrate(img, "--to", "ds1")
        self.c.wait_held(mid, "copied")
        for i, fd in enumerate(fds):
            os.pwrite(fd, b"before %04d" % i, i * 4096)
        self.c.release()
        st = self.c.wait_phase(mid, "done", "failed", "cancelled")
        self.assertEqual(st["phase"], "done", st)
        self.assertEqual(self.m.where("vm/disk"), [1])
        for i, fd in enumerate(fds):
            self.assertEqual(os.pread(fd, 11, i * 4096), b"before %04d" % i)
            os.pwrite(fd, b"after  %04d" % i, i * 4096 + 2048)
            os.fsync(fd)
        with open(self.m.backing(1, "vm/disk"), "rb") as f:
            for i in range(self.HANDLES):
                f.seek(i * 4096)
                self.assertEqual(f.read(11), b"before %04d" % i)
                f.seek(i * 4096 + 2048)
                self.assertEqual(f.read(11), b"after  %04d" % i)
        self.assert_clean()


class BadRequests(Base):
    n = 3
    tmpfs = [160, 160, 4]
    hold = "copied"

    def refused(self, *args, expect):
        before = self.c.status()
        p = self.c.run("migrate", *args, check=False)
        self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
        self.assertIn(expect, p.stderr)
        self.assertEqual(self.c.status(), before)

    def test_each_bad_request_changes_nothing(self):
        p = self.m.path
        os.link(self.m.backing(0, "vm/disk"), self.m.backing(0, "vm/hardlink"))
        make_file(self.m.backing(0, "vm/small"), 1)
        self.refused(p("vm/nope"), "--to", "ds1", expect="no such file")
        self.refused(p("vm/small"), "--to", "nowhere", expect="unknown datastore")
        self.refused("/etc/hostname", "--to", "ds1", expect="not inside the mount")
        self.refused(p("vm/small"), "--to", "ds0", expect="already on datastore ds0")
        self.refused(p("vm/disk"), "--to", "ds1", expect="hard-linked")
        self.refused(p("vm/small"), "--to", "ds2", expect="no room on datastore ds2")
        # all-or-nothing: one bad file in a request queues none
        self.refused(p("vm/small") + "=ds1", p("vm/nope") + "=ds1", expect="no such file")
        self.refused(p("vm") + "=ds1", p("vm/small") + "=ds2", expect="named twice, to ds1 and to ds2")
        os.unlink(self.m.backing(0, "vm/hardlink"))
        mid, = self.c.migrate(p("vm/disk"), "--to", "ds1")
        self.c.wait_held(mid, "copied")
        self.refused(p("vm/disk"), "--to", "ds1", expect="already migrating")
        self.c.release()
        self.c.wait_phase(mid, "done", "failed")

    def test_bad_cancel_and_status(self):
        self.assertEqual(self.c.run("cancel", "999", check=False).returncode, 1)
        self.assertEqual(self.c.run("status", "999", check=False).returncode, 1)
        self.assertEqual(self.c.run("bogus", check=False).returncode, 2)

    def test_where_and_datastores(self):
        out = self.c.run("where", self.m.path("vm/disk")).stdout
        self.assertIn("vm/disk\tds0", out)
        ds = self.c.json("datastores", "--json")["datastores"]
        self.assertEqual([d["name"] for d in ds], ["ds0", "ds1", "ds2"])
        self.assertEqual(ds[0]["held"], 32 * MB)
        self.assertEqual(ds[0]["fs"], "tmpfs")


if __name__ == "__main__":
    main()
