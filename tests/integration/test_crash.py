#!/usr/bin/env python3
"""Crash at every step of a migration (the daemon SIGKILLs itself at a named point,
VDSFS_TEST_CRASH, fs/testpoint.h), mount again on the same datastores, and check:
every write flushed before the crash reads back, the migration was finished or
rolled back as MIGRATION.md says, status reports it as recovered, the file lives on
exactly one datastore, and nothing is left in .vdsfs/."""
import os
import unittest

from vdsfs_fixture import Ctl, Mount, main, run, state_files, wait_dead
from test_migrate import MB, make_file, qemu_io

# point -> (hold point for the writes made during the migration, outcome)
# Up to and including "converged" the journal says the source is authoritative:
# recovery merges the differencing file back (cancelled). From the committed
# "switching" record on, the copy is complete: recovery finishes the flip (done).
POINTS = {
    "overlay-on": (None, "cancelled"),
    "mid-copy": ("overlay-on", "cancelled"),
    "copied": ("overlay-on", "cancelled"),
    "mid-converge": ("copied", "cancelled"),
    "converged": ("copied", "cancelled"),
    "before-flip": ("copied", "done"),
    "after-flip": ("copied", "done"),
    "cleanup": ("copied", "done"),
    "mid-cancel": ("copied", "cancelled"),
}


class Crash(unittest.TestCase):
    def crash_at(self, point):
        hold, outcome = POINTS[point]
        m = Mount(self, n=2)
        make_file(m.backing(0, "vm/disk"), 32)
        env = {"VDSFS_TEST_CRASH": point}
        if hold:
            env["VDSFS_TEST_HOLD"] = hold
        m.start(env=env)
        c = Ctl(m)
        img = m.path("vm/disk")
        qemu_io(img, "write -P 0xa1 0 2M", "flush")
        args = ["--bwlimit", "8M"] if point == "mid-copy" else []
        mid, = c.migrate(*args, img, "--to", "ds1")
        patterns = [("0xa1", "0 2M")]
        if hold:
            c.wait_held(mid, hold)
            qemu_io(img, "write -P 0xb2 10M 1M", "write -P 0xc3 31M 512k", "flush")
            patterns += [("0xb2", "10M 1M"), ("0xc3", "31M 512k")]
            if point == "mid-cancel":
                c.run("cancel", str(mid))
            c.release()
        wait_dead(m)
        run(["fusermount3", "-uz", m.mnt], check=False)
        m.start()
        st = c.one(mid)
        self.assertTrue(st["recovered"], st)
        self.assertEqual(st["phase"], outcome, st)
        for pat, rng in patterns:
            qemu_io(img, f"read -P {pat} {rng}")
        self.assertEqual(os.stat(img).st_size, 32 * MB)
        self.assertEqual(m.where("vm/disk"), [1] if outcome == "done" else [0])
        self.assertEqual(state_files(m), [])


def make_test(point):
    return lambda self: self.crash_at(point)


for _p in POINTS:
    setattr(Crash, "test_crash_" + _p.replace("-", "_"), make_test(_p))


if __name__ == "__main__":
    main()
