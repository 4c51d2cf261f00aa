#!/usr/bin/env python3
"""Faults during a migration (issue 6): the differencing file's datastore fills up,
the destination fills up during the copy, the destination disappears, the source's
disk fails reads (EIO), a corrupt journal or differencing file is found at mount, and
a control client misbehaves. In every case nothing written before is lost and the
source keeps serving."""
import errno
import json
import mmap
import os
import re
import shutil
import socket
import subprocess
import time
import unittest

from vdsfs_fixture import Ctl, Mount, main, mounted, peer_request, run, state_files, wait_dead
from test_migrate import MB, make_file, qemu_io

FAULTFS = os.environ.get("FAULTFS", "faultfs")


def held_on_tmpfs(case, tmpfs_mb, size_mb, *writes):
    """vm/disk (size_mb) on tmpfs datastores ds0, ds1 of the given sizes, migrating
    to ds1 and held at "copied", then written with qemu-io: (m, c, img, mid)."""
    m = Mount(case, n=2, tmpfs_mb=tmpfs_mb)
    make_file(m.backing(0, "vm/disk"), size_mb)
    m.start(env={"VDSFS_TEST_HOLD": "copied"})
    c = Ctl(m)
    img = m.path("vm/disk")
    mid, = c.migrate(img, "--to", "ds1")
    c.wait_held(mid, "copied")
    qemu_io(img, *writes)
    return m, c, img, mid


class SourceFull(unittest.TestCase):
    """The differencing file grows on the source; when that fills, writers get
    ENOSPC, what was written stays, reads go on, and the migration still ends."""

    def test_enospc_on_source_keeps_data(self):
        m, c, img, mid = held_on_tmpfs(self, [40, 200], 24, "write -P 0x71 0 1M", "flush")
        fd = os.open(img, os.O_RDWR)
        err = None
        try:
            for i in range(1, 24):  # rewrite the rest: the diff needs ~23 MiB, 16 are free
                os.pwrite(fd, bytes([0x72]) * MB, i * MB)
                os.fsync(fd)
        except OSError as e:
            err = e.errno
        finally:
            os.close(fd)
        self.assertEqual(err, errno.ENOSPC)
        qemu_io(img, "read -P 0x72 1M 1M")     # what was written and flushed is there
        c.release()
        # The full source cannot take the journal's next record either: the
        # migration fails and rolls back (MIGRATION.md), the file stays on ds0.
        st = c.wait_phase(mid, "done", "failed", "cancelled")
        self.assertEqual(st["phase"], "failed", st)
        self.assertIn("journal", st["error"])
        qemu_io(img, "read -P 0x71 0 1M", "read -P 0x72 1M 1M")
        self.assertEqual(m.where("vm/disk"), [0])
        self.assertEqual(state_files(m), [])


class DestinationFull(unittest.TestCase):
    def test_destination_fills_during_copy(self):
        # ds1 passes the pre-check only because the file is sparse-looking to df
        # afterwards: fill ds1 behind vdsfs's back once the copy has started.
        m = Mount(self, n=2, tmpfs_mb=[200, 120])
        make_file(m.backing(0, "vm/disk"), 48)
        m.start()
        c = Ctl(m)
        img = m.path("vm/disk")
        mid, = c.migrate("--bwlimit", "8M", img, "--to", "ds1")
        c.wait(lambda: c.one(mid)["bytes_copied"] > 0, "copy progress")
        fd = os.open(m.backing(1, "filler"), os.O_WRONLY | os.O_CREAT)
        try:
            while True:
                os.write(fd, b"\1" * MB)
        except OSError as e:
            self.assertEqual(e.errno, errno.ENOSPC)
        finally:
            os.close(fd)
        st = c.wait_phase(mid, "failed", "done", "cancelled")
        self.assertEqual(st["phase"], "failed", st)
        # ENOSPC from a copy write, or the room check of the copy's progress first
        self.assertRegex(st.get("error", ""), "No space|no room left on datastore ds1")
        os.unlink(m.backing(1, "filler"))
        self.assertEqual(m.where("vm/disk"), [0])
        self.assertEqual(os.stat(img).st_size, 48 * MB)
        run(["cmp", img, m.backing(0, "vm/disk")])
        self.assertEqual(state_files(m), [])


def fill(path, leave):
    """Fill the filesystem holding path until at most leave bytes are free."""
    fd = os.open(os.path.join(path, "filler"), os.O_WRONLY | os.O_CREAT)
    try:
        while True:
            vfs = os.statvfs(path)
            free = vfs.f_bavail * vfs.f_frsize
            if free <= leave:
                return free
            os.write(fd, b"\1" * min(MB, free - leave))
    finally:
        os.close(fd)


class SpaceCheck(unittest.TestCase):
    """What a destination needs (fs/mig/mig_space.c): the allocated bytes, what the
    differencing file and writes meanwhile add, a margin; every term in a refusal;
    and a migration whose destination runs out of room fails at once, rolled back."""

    def mount(self, tmpfs_mb, hold=None):
        m = Mount(self, n=2, tmpfs_mb=tmpfs_mb)
        self.m, self.c = m, Ctl(m)
        return m

    def migrate(self, *moves, **opts):
        return self.c.request(dict({"cmd": "migrate",
                                    "moves": [{"path": p, "to": "ds1"} for p in moves]}, **opts))

    def test_thin_64g_disk_holding_16m_moves_to_a_1g_datastore(self):
        m = self.mount([128, 1024])
        b = m.backing(0, "vm/thin")
        make_file(b, 0)
        data = os.urandom(8 * MB)
        with open(b, "r+b") as f:
            f.truncate(64 << 30)
            for at in (0, 40 << 30):
                f.seek(at)
                f.write(data)
        m.start()
        reply = self.migrate("vm/thin")
        self.assertTrue(reply["ok"], reply)
        st = self.c.wait_phase(reply["ids"][0], "done", "failed", "cancelled")
        self.assertEqual(st["phase"], "done", st)
        self.assertEqual(m.where("vm/thin"), [1])
        self.assertEqual(os.stat(m.path("vm/thin")).st_size, 64 << 30)
        self.assertLess(os.stat(m.backing(1, "vm/thin")).st_blocks * 512, 20 * MB)
        with open(m.path("vm/thin"), "rb") as f:
            for at in (0, 40 << 30):
                f.seek(at)
                self.assertEqual(f.read(8 * MB), data)
        self.assertEqual(state_files(m), [])

    def test_refusal_names_every_term_and_changes_nothing(self):
        m = self.mount([128, 32])
        make_file(m.backing(0, "vm/disk"), 48)
        m.start()
        reply = self.migrate("vm/disk")
        self.assertFalse(reply["ok"], reply)
        self.assertRegex(reply["error"],
                         r"^no room on datastore ds1 for vm/disk: [0-9.]+ MiB free, 112 MiB needed = "
                         r"48 MiB allocated \+ 0 differencing \+ 0 growth \(0/s for ~10 s\) "
                         r"\+ 64 MiB margin$")
        self.assertEqual(self.c.status(), [])
        self.assertEqual(m.where("vm/disk"), [0])
        self.assertEqual(os.listdir(m.paths[1]), [".vdsfs"])
        self.assertEqual(state_files(m), [])

    def test_margin_and_no_check_are_the_callers_to_choose(self):
        m = self.mount([160, 80])
        for name, size in (("a", 45), ("b", 45), ("c", 20)):
            make_file(m.backing(0, "vm/" + name), size)
        m.start()
        self.assertIn("45 MiB allocated", self.migrate("vm/a")["error"])    # + 64 MiB margin
        self.assertIn("must be bytes", self.migrate("vm/a", space_margin=-1)["error"])
        self.assertIn("true or false", self.migrate("vm/a", space_check="no")["error"])
        # a and b fit one at a time, not together: the request is refused whole
        both = self.migrate("vm/a", "vm/b", space_margin=MB)
        self.assertIn("for the 2 files this request moves there", both["error"])
        self.assertEqual(self.c.status(), [])
        a = self.migrate("vm/a", space_margin=MB)
        self.assertTrue(a["ok"], a)
        self.assertEqual(self.c.wait_phase(a["ids"][0], "done", "failed")["phase"], "done")
        # c fits in what is left, but not with the default margin; unless unchecked
        self.assertIn("64 MiB margin", self.migrate("vm/c")["error"])
        c = self.migrate("vm/c", space_check=False)
        self.assertTrue(c["ok"], c)
        self.assertEqual(self.c.wait_phase(c["ids"][0], "done", "failed")["phase"], "done")
        self.assertEqual(m.where("vm/a") + m.where("vm/b") + m.where("vm/c"), [1, 0, 1])

    def test_migrations_already_headed_there_count(self):
        m = self.mount([160, 100])
        make_file(m.backing(0, "vm/a"), 40)
        make_file(m.backing(0, "vm/b"), 60)
        m.start(env={"VDSFS_TEST_HOLD": "overlay-on"})
        a = self.migrate("vm/a", space_margin=MB)
        self.c.wait_held(a["ids"][0], "overlay-on")
        b = self.migrate("vm/b", space_margin=MB)          # would fit on its own
        self.assertFalse(b["ok"], b)
        self.assertRegex(b["error"], r"60 MiB allocated .* \+ 40 MiB still to write for 1 "
                                     r"migration already headed there \+ 1\.0 MiB margin$")
        self.c.release()
        self.assertEqual(self.c.wait_phase(a["ids"][0], "done", "failed")["phase"], "done")
        self.assertEqual([s["id"] for s in self.c.status()], a["ids"])

    def run_out(self, hold, **opts):
        """vm/disk (32 MiB) to ds1 (64 MiB), held at hold; ds1 is filled to 1 MiB
        free from outside, then released: the migration fails at once."""
        m = self.mount([160, 64])
        ref = os.path.join(m.top, "ref")
        make_file(ref, 32)
        os.makedirs(m.backing(0, "vm"))
        shutil.copyfile(ref, m.backing(0, "vm/disk"))
        m.start(env={"VDSFS_TEST_HOLD": hold})
        reply = self.migrate("vm/disk", space_margin=MB, **opts)
        self.assertTrue(reply["ok"], reply)
        mid = reply["ids"][0]
        self.c.wait_held(mid, hold)
        return m, ref, mid

    def assert_failed_for_room(self, m, ref, mid):
        fill(m.paths[1], MB)
        self.c.release()
        st = self.c.wait_phase(mid, "done", "failed", "cancelled")
        self.assertEqual(st["phase"], "failed", st)
        self.assertRegex(st["error"], r"^no room left on datastore ds1: [0-9.]+ [KM]iB free, "
                                      r"[0-9.]+ MiB still to write$")
        os.unlink(m.backing(1, "filler"))
        self.assertEqual(m.where("vm/disk"), [0])
        self.assertEqual(state_files(m), [])
        return st

    def test_no_room_left_mid_copy_fails_at_once(self):
        m, ref, mid = self.run_out("mid-copy", bwlimit=4 * MB)
        self.assert_failed_for_room(m, ref, mid)
        run(["cmp", m.path("vm/disk"), ref])

    def test_no_room_left_for_converging_fails_at_once(self):
        m, ref, mid = self.run_out("copied")
        for target in (m.path("vm/disk"), ref):
            qemu_io(target, "write -P 0xe1 4M 8M", "flush")
        self.assert_failed_for_room(m, ref, mid)
        run(["cmp", m.path("vm/disk"), ref])


class DestinationGone(unittest.TestCase):
    def test_destination_unmounted_mid_migration(self):
        m, c, img, mid = held_on_tmpfs(self, [200, 200], 32, "write -P 0x81 2M 1M", "flush")
        run(["umount", "-l", m.paths[1]])   # the destination vanishes
        c.release()
        st = c.wait_phase(mid, "failed", "done", "cancelled")
        self.assertEqual(st["phase"], "failed", st)
        self.assertIn("no longer mounted", st["error"])
        qemu_io(img, "read -P 0x81 2M 1M")
        self.assertEqual(m.where("vm/disk"), [0])
        self.assertEqual(os.stat(img).st_size, 32 * MB)


class FaultFs:
    """faultfs (faultfs.c) serving a fresh backing directory at datastore i's path:
    reads of rel that touch [start, end) fail with EIO while the switch file exists.
    Mount it before vdsfs starts: cleanups run in reverse order of registration, so
    it is unmounted only after vdsfs has stopped, and before the tree is removed."""

    def __init__(self, case, m, i, rel, start, end):
        self.case, self.mnt = case, m.paths[i]
        self.backing = os.path.join(m.top, m.names[i] + "-backing")
        self.switch = os.path.join(m.top, "fault-on")
        self.log = os.path.join(m.top, "faultfs.log")
        os.mkdir(self.backing)
        with open(self.log, "w") as log:
            self.proc = subprocess.Popen(
                [FAULTFS, "--eio-file", rel, "--eio-from", str(start), "--eio-to", str(end),
                 "--when", self.switch, "-f", self.backing, self.mnt],
                stdout=log, stderr=subprocess.STDOUT)
        case.addCleanup(self.stop)
        for _ in range(200):
            if mounted(self.mnt):
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        raise AssertionError(f"faultfs did not mount: {self.output()}")

    def output(self):
        with open(self.log) as f:
            return f.read()

    def on(self):
        open(self.switch, "w").close()

    def off(self):
        os.unlink(self.switch)

    def open_files(self):
        """Backing files faultfs holds open: one per handle someone has on it."""
        fds, out = f"/proc/{self.proc.pid}/fd", []
        for fd in os.listdir(fds):
            try:
                target = os.readlink(os.path.join(fds, fd))
            except OSError:
                continue    # closed meanwhile
            if target.startswith(self.backing + "/"):
                out.append(target)
        return out

    def stop(self):
        # Unmount only once faultfs holds nothing open: vdsfs closes its datastore
        # files as it exits, after its mount is gone, and the kernel sends those
        # releases asynchronously; any still queued at unmount would be dropped and
        # their handles leaked in faultfs (LeakSanitizer reports them).
        end = time.time() + 60
        while self.proc.poll() is None and self.open_files() and time.time() < end:
            time.sleep(0.05)
        busy = self.open_files() if self.proc.poll() is None else []
        if mounted(self.mnt) and run(["fusermount3", "-u", self.mnt], check=False).returncode:
            run(["fusermount3", "-uz", self.mnt], check=False)
        try:
            rc = self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError(f"faultfs did not exit once unmounted; still open: {busy}\n"
                                 f"{self.output()}")
        self.case.assertEqual(rc, 0, self.output())


def direct_read(fd, off, length):
    """length bytes at off through an O_DIRECT handle, as a VM with cache=none
    reads: no page cache of the mount stands between the reader and vdsfs."""
    buf = mmap.mmap(-1, length)     # page-aligned
    return buf[:os.preadv(fd, [buf], off)]


class SourceReadErrors(unittest.TestCase):
    """The source datastore's disk fails reads (EIO) in one range of the base file
    (faultfs). The copy cannot read it, so the migration fails and rolls back; the
    VM sees the device error for that range and only there; every write, before and
    during the migration, is kept; nothing is left behind; and once the disk reads
    again the disk serves on and moves."""

    BAD_FROM, BAD_TO = 8 * MB, 9 * MB

    def assert_eio(self, fd, off, length):
        with self.assertRaises(OSError) as cm:
            direct_read(fd, off, length)
        self.assertEqual(cm.exception.errno, errno.EIO)

    def test_eio_on_source_fails_migration_and_keeps_data(self):
        m = Mount(self, n=2)
        fault = FaultFs(self, m, 0, "vm/disk", self.BAD_FROM, self.BAD_TO)
        # A reference image gets every write the disk gets: qemu-img compare then
        # proves that no byte of the disk was lost or damaged, not only the patterns.
        ref = os.path.join(m.top, "ref.raw")
        make_file(ref, 32)
        os.makedirs(m.backing(0, "vm"))
        shutil.copyfile(ref, m.backing(0, "vm/disk"))
        m.start(env={"VDSFS_TEST_HOLD": "overlay-on"})
        c = Ctl(m)
        img = m.path("vm/disk")
        # One handle for every read that must fail: a new open would make faultfs
        # drop the inode's cached pages and hide a fault served from that cache.
        fd = os.open(img, os.O_RDONLY | os.O_DIRECT)
        self.addCleanup(os.close, fd)

        def write(*cmds):
            for target in (img, ref):
                qemu_io(target, *cmds, "flush")

        write("write -P 0xa1 0 1M", "write -P 0xa2 8M 1M", "write -P 0xa3 31M 1M")
        fault.on()
        self.assert_eio(fd, self.BAD_FROM, MB)
        qemu_io(img, "read -P 0xa1 0 1M", "read 7M 1M", "read 9M 1M", "read -P 0xa3 31M 1M")
        fault.off()

        mid, = c.migrate(img, "--to", "ds1")
        c.wait_held(mid, "overlay-on")
        # The overlay reads the base through one long-lived buffered handle: the
        # range reads fine, then fails once the fault is on (before the copy has
        # read a byte), so no page cache below vdsfs hides the fault.
        self.assertEqual(direct_read(fd, self.BAD_FROM, MB), b"\xa2" * MB)
        fault.on()
        self.assert_eio(fd, self.BAD_FROM, MB)
        # Writes into the overlay, one of them rewriting the start of the bad range
        # in whole blocks: that part now reads from the differencing file, the rest
        # of the range still from the failing base.
        write("write -P 0xb1 2M 1M", "write -P 0xb2 8M 64k", "write -P 0xb3 20M 512k")
        qemu_io(img, "read -P 0xb2 8M 64k")
        self.assert_eio(fd, self.BAD_FROM + 64 * 1024, 64 * 1024)
        c.release()

        st = c.wait_phase(mid, "done", "failed", "cancelled")
        self.assertEqual(st["phase"], "failed", st)
        # "copy failed: read from source at offset N: Input/output error", N the
        # start of a copier read (1 MiB) that touched the bad range
        hit = re.search(r"read from source at offset (\d+): " + os.strerror(errno.EIO), st["error"])
        self.assertTrue(hit, st)
        self.assertTrue(self.BAD_FROM - MB < int(hit.group(1)) < self.BAD_TO, st)
        # Rolled back: the file is on ds0 alone, no copy or state is left anywhere.
        self.assertEqual(m.where("vm/disk"), [0])
        self.assertEqual(os.listdir(m.paths[1]), [".vdsfs"])
        self.assertEqual(state_files(m), [])
        self.assertEqual(os.stat(img).st_size, 32 * MB)
        # The base still fails in the bad range (the overlay's blocks were merged
        # into it), and only there.
        self.assert_eio(fd, self.BAD_FROM, MB)
        qemu_io(img, "read -P 0xa1 0 1M", "read -P 0xb1 2M 1M", "read -P 0xb3 20M 512k",
                "read -P 0xa3 31M 1M")

        fault.off()
        qemu_io(img, "read -P 0xb2 8M 64k", "read -P 0xa2 8256k 960k")
        run(["qemu-img", "compare", "-f", "raw", "-F", "raw", img, ref])

        # The disk serves on, and moves once its source reads again.
        write("write -P 0xc1 4M 1M")
        qemu_io(img, "read -P 0xc1 4M 1M")
        mid2, = c.migrate(img, "--to", "ds1")
        c.wait_held(mid2, "overlay-on")
        write("write -P 0xc2 12M 1M")
        c.release()
        st = c.wait_phase(mid2, "done", "failed", "cancelled")
        self.assertEqual(st["phase"], "done", st)
        self.assertEqual(m.where("vm/disk"), [1])
        self.assertEqual(os.stat(img).st_size, 32 * MB)
        qemu_io(img, "read -P 0xb2 8M 64k", "read -P 0xa2 8256k 960k", "read -P 0xc1 4M 1M",
                "read -P 0xc2 12M 1M")
        run(["qemu-img", "compare", "-f", "raw", "-F", "raw", img, ref])
        self.assertEqual(direct_read(fd, self.BAD_FROM, 64 * 1024), b"\xb2" * 64 * 1024)
        self.assertEqual(state_files(m), [])
        self.assertEqual(c.one(mid)["phase"], "failed")


class SwitchFaults(unittest.TestCase):
    """Steps of the switch made to fail (VDSFS_TEST_FAIL, fs/mig/testpoint.h), each on
    either side of its point of no return (fs/mig/mig_switch.c): before it the source
    stays authoritative; after it the destination is the file, and the journal
    makes the next mount finish what the daemon could not."""

    def start(self, fail, hold=None, crash=None, opts=None):
        m = Mount(self, n=2, opts=opts)
        make_file(m.backing(0, "vm/disk"), 8)
        m.start(env={k: v for k, v in (("VDSFS_TEST_FAIL", fail), ("VDSFS_TEST_HOLD", hold),
                                       ("VDSFS_TEST_CRASH", crash)) if v})
        c = Ctl(m)
        img = m.path("vm/disk")
        qemu_io(img, "write -P 0xd1 1M 64k", "flush")
        mid, = c.migrate(img, "--to", "ds1")
        return m, c, img, mid

    def ended(self, c, mid, phase):
        st = c.wait_phase(mid, "done", "failed", "cancelled")
        self.assertEqual(st["phase"], phase, st)
        return st

    def recovered_on_ds1(self, m, c, img, mid, *reads):
        """After a remount: the next mount finished the switch, nothing is left."""
        st = c.one(mid)
        self.assertEqual((st["phase"], st["recovered"]), ("done", True), st)
        self.assertEqual(m.where("vm/disk"), [1])
        self.assertEqual(state_files(m), [])
        qemu_io(img, "read -P 0xd1 1M 64k", *reads)

    def journal(self, m, mid):
        with open(m.backing(0, f".vdsfs/mig-{mid}.json")) as f:
            return json.load(f)["phase"]

    def remount(self, m):
        with open(m.backing(0, ".vdsfs/lock")) as f:
            pid = int(f.read())
        run(["fusermount3", "-u", m.mnt])
        Ctl(m).wait(lambda: not os.path.exists(f"/proc/{pid}"), "the daemon to exit")
        m.start()

    def test_rename_into_place_fails_rolls_back(self):
        m, c, img, mid = self.start("flip-rename")
        st = self.ended(c, mid, "failed")
        self.assertIn("renaming the copy into place: " + os.strerror(errno.EIO), st["error"])
        self.assertEqual(m.where("vm/disk"), [0])
        self.assertEqual(state_files(m), [])
        qemu_io(img, "read -P 0xd1 1M 64k")
        again, = c.migrate(img, "--to", "ds1")      # the fault was once
        self.assertEqual(c.wait_phase(again, "done", "failed")["phase"], "done")
        qemu_io(img, "read -P 0xd1 1M 64k")

    def test_committed_switch_that_cannot_go_back_is_finished_by_the_next_mount(self):
        m, c, img, mid = self.start("flip-rename,journal-revert")
        st = self.ended(c, mid, "failed")
        self.assertIn("the next mount finishes the switch", st["error"])
        self.assertEqual(self.journal(m, mid), "switching")
        # The overlay still carries the file, and mirrors into the copy the journal
        # names: writes made now are in the file the next mount puts in place.
        qemu_io(img, "write -P 0xd2 2M 64k", "flush", "read -P 0xd1 1M 64k")
        self.remount(m)
        self.recovered_on_ds1(m, c, img, mid, "read -P 0xd2 2M 64k")

    def test_stuck_switch_of_a_file_then_removed_is_not_brought_back(self):
        m, c, img, mid = self.start("flip-rename,journal-revert")
        self.ended(c, mid, "failed")
        os.unlink(img)
        self.assertEqual(state_files(m), [])     # nothing left for recovery to act on
        self.remount(m)
        self.assertFalse(os.path.exists(img))
        self.assertEqual(m.where("vm/disk"), [])

    def test_commit_fsync_fails_rolls_back(self):
        m, c, img, mid = self.start("commit")
        st = self.ended(c, mid, "failed")
        self.assertIn("committing the journal", st["error"])
        self.assertEqual(m.where("vm/disk"), [0])
        self.assertEqual(state_files(m), [])
        qemu_io(img, "read -P 0xd1 1M 64k")

    def test_source_that_cannot_be_removed_is_hidden_then_removed(self):
        # timeout=0: every access through the mount asks the daemon, so a stale
        # source on ds0 (first in order) would be what a lookup finds.
        m, c, img, mid = self.start("flip-unlink", hold="unlink-retry", opts="timeout=0")
        c.wait_held(mid, "unlink-retry")
        st = c.one(mid)
        self.assertEqual(st["phase"], "switching", st)
        self.assertIn("could not be removed", st["note"])
        self.assertEqual(m.where("vm/disk"), [0, 1])
        self.assertEqual(self.journal(m, mid), "switching")
        # Lookups (and so this write) find the file on ds1, not the old one on ds0.
        qemu_io(img, "write -P 0xd3 3M 64k", "flush")
        def at_3m(ds):
            with open(m.backing(ds, "vm/disk"), "rb") as f:
                f.seek(3 * MB)
                return f.read(64 * 1024)
        self.assertEqual(at_3m(1), b"\xd3" * 64 * 1024)
        self.assertNotEqual(at_3m(0), b"\xd3" * 64 * 1024)
        where = c.request({"cmd": "where", "paths": ["vm/disk"]})["where"][0]
        self.assertEqual(where["datastore"], "ds1", where)
        qemu_io(img, "read -P 0xd1 1M 64k", "read -P 0xd3 3M 64k")
        c.release()
        st = self.ended(c, mid, "done")
        self.assertNotIn("note", st)
        self.assertEqual(m.where("vm/disk"), [1])
        self.assertEqual(state_files(m), [])
        qemu_io(img, "read -P 0xd1 1M 64k", "read -P 0xd3 3M 64k")

    def test_source_left_by_a_crash_is_removed_by_the_next_mount(self):
        m, c, img, mid = self.start("flip-unlink", crash="unlink-retry")
        wait_dead(m)
        run(["fusermount3", "-uz", m.mnt], check=False)
        self.assertEqual(m.where("vm/disk"), [0, 1])
        m.start()
        self.recovered_on_ds1(m, c, img, mid)

    def test_switch_not_yet_durable_keeps_the_journal(self):
        m, c, img, mid = self.start("flip-sync")
        st = self.ended(c, mid, "done")
        self.assertIn("not durable", st["note"])
        self.assertEqual(self.journal(m, mid), "switching")
        self.assertEqual(m.where("vm/disk"), [1])
        self.remount(m)
        self.recovered_on_ds1(m, c, img, mid)


class CorruptAtMount(unittest.TestCase):
    def crash_then_damage(self, damage):
        m = Mount(self, n=2)
        make_file(m.backing(0, "vm/disk"), 8)
        make_file(m.backing(0, "vm/other"), 1)
        m.start(env={"VDSFS_TEST_HOLD": "copied", "VDSFS_TEST_CRASH": "mid-converge"})
        c = Ctl(m)
        mid, = c.migrate(m.path("vm/disk"), "--to", "ds1")
        c.wait_held(mid, "copied")
        qemu_io(m.path("vm/disk"), "write -P 0x91 0 4M", "flush")
        c.release()
        wait_dead(m)
        run(["fusermount3", "-uz", m.mnt], check=False)
        damage(os.path.join(m.paths[0], ".vdsfs", f"mig-{mid}"))
        m.start()
        return m, c, mid

    def test_corrupt_differencing_file_is_refused_others_serve(self):
        def damage(base):
            # both header slots and the map (the data area starts at 1 MiB): one
            # damaged header alone is a torn write the format survives by design
            with open(base + ".diff", "r+b") as f:
                f.write(b"garbage!" * (MB // 8))
        m, c, mid = self.crash_then_damage(damage)
        st = c.one(mid)
        self.assertEqual(st["phase"], "failed", st)
        self.assertIn("refused", st["error"])
        # the rest of the mount serves normally, and the damage is explained
        self.assertEqual(os.path.getsize(m.path("vm/other")), MB)
        p = run([os.environ.get("VDS_DIFF", "vds-diff"), "check", os.path.join(m.paths[0], ".vdsfs", f"mig-{mid}.diff")],
                check=False)
        self.assertNotEqual(p.returncode, 0)
        # the files are kept for a human: nothing was guessed
        self.assertTrue(os.path.exists(os.path.join(m.paths[0], ".vdsfs", f"mig-{mid}.json")))

    def test_corrupt_journal_is_left_alone(self):
        def damage(base):
            with open(base + ".json", "w") as f:
                f.write("{not json")
        m, c, mid = self.crash_then_damage(damage)
        self.assertEqual(os.path.getsize(m.path("vm/other")), MB)
        self.assertTrue(os.path.exists(os.path.join(m.paths[0], ".vdsfs", f"mig-{mid}.json")))


class BadControlClients(unittest.TestCase):
    def setUp(self):
        self.m = Mount(self, n=2)
        make_file(self.m.backing(0, "vm/disk"), 1)
        self.m.start()
        self.c = Ctl(self.m)

    def send(self, data, read=True):
        s = socket.socket(socket.AF_UNIX)
        s.connect(self.m.sock)
        try:
            s.sendall(data)
            s.shutdown(socket.SHUT_WR)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the daemon refused to read on (oversized) and said why
        out = s.makefile("rb").read() if read else b""
        s.close()
        return out

    def test_garbage_truncated_wrong_types(self):
        for req in (b"\x00\xff garbage\n", b'{"cmd": "migr\n', b"[1,2,3]\n", b'{"cmd": 5}\n',
                    b'{"cmd":"migrate","moves":"x"}\n', b'{"cmd":"migrate","moves":[{"path":7}]}\n',
                    b'{"cmd":"where","paths":[null]}\n', b'{"cmd":"cancel","id":"1"}\n',
                    b'{"cmd":"migrate","moves":[{"path":"../../etc/passwd","to":"ds1"}]}\n',
                    b'{"cmd":"migrate","moves":[{"path":"/etc/passwd","to":"ds1"}]}\n',
                    b'{"cmd":"migrate","moves":[{"path":"vm/disk\\nx","to":"ds1"}]}\n',
                    b'{"cmd":"where","paths":["../../../etc"]}\n'):
            out = self.send(req)
            reply = json.loads(out.splitlines()[0])
            if "where" in reply:  # where answers per path
                self.assertTrue(reply["where"][0].get("error"), req)
            else:
                self.assertFalse(reply["ok"], req)
                self.assertTrue(reply["error"], req)
        self.assertEqual(self.c.status(), [])
        self.assertEqual(self.m.where("vm/disk"), [0])

    def test_symlink_out_of_a_datastore_is_refused(self):
        os.symlink("/etc", self.m.backing(0, "escape"))
        for req in (b'{"cmd":"migrate","moves":[{"path":"escape/hostname","to":"ds1"}]}\n',
                    b'{"cmd":"where","paths":["escape/hostname"]}\n'):
            reply = json.loads(self.send(req).splitlines()[0])
            err = reply.get("error") or reply["where"][0].get("error")
            self.assertTrue(err, reply)
        self.assertEqual(self.c.status(), [])
        self.assertTrue(os.path.exists("/etc/hostname"))

    def test_oversized_request_and_disconnects(self):
        out = self.send(b"x" * (2 << 20))
        self.assertIn(b"too large", out)
        self.send(b'{"cmd":"status"', read=False)      # gone mid-request
        s = socket.socket(socket.AF_UNIX)
        s.connect(self.m.sock)
        s.close()                                       # gone before a word
        self.assertEqual(self.c.status(), [])           # still serving

    def test_non_root_peer_refused(self):
        os.chmod(self.m.top, 0o755)
        os.chmod(self.m.sock, 0o777)
        out = peer_request(self.m.sock, '{"cmd":"status"}',
                           ["--reuid=65534", "--regid=65534", "--clear-groups"])
        self.assertIn("permission denied", out)

if __name__ == "__main__":
    main()
