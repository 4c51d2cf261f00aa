#!/usr/bin/env python3
"""Crash at every step of a migration (the daemon SIGKILLs itself at a named point,
VDSFS_TEST_CRASH, fs/mig/testpoint.h), mount again on the same datastores, and check:
every write flushed before the crash reads back, the migration was resumed,
finished or rolled back as MIGRATION.md says, status reports it as recovered, the
file lives on exactly one datastore, and nothing is left in .vdsfs/.

Two writers prove the flushed data survives:
- qemu-io writes patterns and flushes, before and during the migration;
- fio writes 4k blocks with verify=crc32c through an O_DIRECT|O_DSYNC handle from
  before the migration until the daemon dies under it. Every write fio saw complete
  was durable (O_DSYNC), fio saves how far it got (verify_state_save) when its I/O
  fails, and after the remount `verify_only` + `verify_state_load` checks exactly
  those blocks."""
import os
import subprocess
import unittest

from vdsfs_fixture import Ctl, Mount, main, run, state_files, wait_dead
from test_migrate import MB, make_file, qemu_io

# point -> (hold point for the writes made during the migration, outcome, resumed)
# Copying or converging, the next mount resumes the migration (MIGRATION.md,
# "Resume"): it goes on from the copy's last checkpoint, or merges and repairs the
# copy, and switches (done). From the committed "switching" record on, recovery
# finishes the flip (done). A rollback under way (cancelling) is finished (cancelled).
POINTS = {
    "overlay-on": (None, "done", True),
    "mid-copy": ("overlay-on", "done", True),
    "copied": ("overlay-on", "done", True),
    "mid-converge": ("copied", "done", True),
    "converged": ("copied", "done", True),
    "before-flip": ("copied", "done", False),
    "after-flip": ("copied", "done", False),
    "cleanup": ("copied", "done", False),
    "mid-cancel": ("copied", "cancelled", False),
}


# fio's blocks live in 12M..28M, apart from the qemu-io patterns. The rate only
# bounds how long fio would run if nothing stopped it; the crash stops it first.
FIO_JOB = """[w]
filename={img}
rw=randwrite
bs=4k
offset=12M
size=16M
direct=1
sync=dsync
ioengine=psync
verify=crc32c
verify_fatal=1
"""
FIO_WRITE = "do_verify=0\nverify_state_save=1\nrate_iops=250\n"
FIO_VERIFY = "do_verify=1\nverify_only=1\nverify_state_load=1\n"


class FioWriter:
    """fio writing through the mount until the daemon dies, then verifying what it
    completed. Job options live in job files: fio applies command-line options that
    follow a job file to no job."""

    def __init__(self, case, m, img):
        self.case, self.dir = case, m.top
        for name, extra in (("write", FIO_WRITE), ("verify", FIO_VERIFY)):
            with open(os.path.join(self.dir, name + ".fio"), "w") as f:
                f.write(FIO_JOB.format(img=img) + extra)
        self.proc = subprocess.Popen(["fio", "write.fio"], cwd=self.dir,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        case.addCleanup(self._kill)

    def _kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.communicate()

    def reap(self):
        """After the crash: fio stopped on the dead mount and saved its state."""
        out = self.proc.communicate(timeout=120)[0]
        state = os.path.join(self.dir, "local-w-0-verify.state")
        self.case.assertTrue(os.path.exists(state), out)

    def verify(self):
        p = run(["fio", "verify.fio"], cwd=self.dir, check=False)
        self.case.assertEqual(p.returncode, 0, p.stdout + p.stderr)


def changed(path, before):
    return os.stat(path).st_mtime_ns != before


def crash_mid_migration(case, m, to, hold, outcome, cancel=False, migrate_args=()):
    """vm/disk on m's first datastore, the daemon started with a VDSFS_TEST_CRASH
    point (and hold, if given): write with qemu-io and fio, migrate it to `to`, write
    again while held, let it crash, mount again, and check that recovery ended the
    migration as outcome and every flushed write reads back. Returns the status."""
    c = Ctl(m)
    img = m.path("vm/disk")
    qemu_io(img, "write -P 0xa1 0 2M", "flush")
    base = m.backing(0, "vm/disk")
    before = os.stat(base).st_mtime_ns
    fio = FioWriter(case, m, img)
    c.wait(lambda: changed(base, before), "fio to write before the migration")
    mid, = c.migrate(*migrate_args, img, "--to", to)
    patterns = [("0xa1", "0 2M")]
    if hold:
        c.wait_held(mid, hold)
        c.wait(lambda: c.one(mid)["diff_bytes"] > 0, "fio to write into the overlay")
        qemu_io(img, "write -P 0xb2 10M 1M", "write -P 0xc3 31M 512k", "flush")
        patterns += [("0xb2", "10M 1M"), ("0xc3", "31M 512k")]
        if cancel:
            c.run("cancel", str(mid))
        c.release()
    wait_dead(m)
    fio.reap()
    run(["fusermount3", "-uz", m.mnt], check=False)
    m.start()
    st = c.wait_phase(mid, "done", "failed", "cancelled")
    case.assertTrue(st["recovered"], st)
    case.assertEqual(st["phase"], outcome, st)
    for pat, rng in patterns:
        qemu_io(img, f"read -P {pat} {rng}")
    fio.verify()
    case.assertEqual(os.stat(img).st_size, 32 * MB)
    return st


class Crash(unittest.TestCase):
    def crash_at(self, point):
        hold, outcome, resumed = POINTS[point]
        m = Mount(self, n=2)
        make_file(m.backing(0, "vm/disk"), 32)
        env = {"VDSFS_TEST_CRASH": point}
        if hold:
            env["VDSFS_TEST_HOLD"] = hold
        m.start(env=env)
        st = crash_mid_migration(self, m, "ds1", hold, outcome, cancel=point == "mid-cancel",
                                 migrate_args=["--bwlimit", "8M"] if point == "mid-copy" else [])
        self.assertEqual(st["resumed"], resumed, st)
        self.assertEqual(m.where("vm/disk"), [1] if outcome == "done" else [0])
        self.assertEqual(state_files(m), [])


def make_test(point):
    return lambda self: self.crash_at(point)


for _p in POINTS:
    setattr(Crash, "test_crash_" + _p.replace("-", "_"), make_test(_p))


if __name__ == "__main__":
    main()
