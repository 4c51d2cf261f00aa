#!/usr/bin/env python3
"""A migration interrupted while copying goes on from its last checkpoint at the
next mount instead of starting over (fs/mig/MIGRATION.md, "Resume"): after a kill -9
and after an unmount, the bytes copied after the resume are at most what was left
plus one checkpoint interval. A copy damaged between the two runs, or -o resume=off,
rolls the migration back with nothing lost. The crash points of every phase are in
test_crash.py."""
import hashlib
import os
import signal
import unittest

from vdsfs_fixture import Ctl, Mount, main, run, state_files, wait_dead
from test_migrate import MB

SIZE_MB = 512
CHECKPOINT = 64 * MB        # MIG_CHECKPOINT_EVERY, fs/mig/mig_int.h


def make_disk(path):
    """SIZE_MB of data (a random MiB over and over: every byte is data, and it is
    quick to write); returns its sha256."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    chunk = os.urandom(MB)
    h = hashlib.sha256()
    with open(path, "wb") as f:
        for _ in range(SIZE_MB):
            f.write(chunk)
            h.update(chunk)
    return h.hexdigest()


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(4 * MB), b""):
            h.update(block)
    return h.hexdigest()


def daemon_pid(m):
    """The daemon names itself in each datastore's lock file."""
    with open(m.backing(0, ".vdsfs/lock")) as f:
        return int(f.read().strip())


class Resume(unittest.TestCase):
    def start_copy(self, opts=None):
        """vm/disk moving ds0 -> ds1 at 32 MiB/s, stopped somewhere past 200 MiB:
        (m, c, mid, bytes copied as last seen)."""
        m = Mount(self, n=2, opts=opts)
        self.digest = make_disk(m.backing(0, "vm/disk"))
        m.start()
        c = Ctl(m)
        mid, = c.migrate("--bwlimit", "32M", m.path("vm/disk"), "--to", "ds1")
        seen = c.wait(lambda: (lambda b: b if b >= 200 * MB else 0)(c.one(mid)["bytes_copied"]),
                      "the copy to pass 200 MiB")
        self.assertLess(seen, SIZE_MB * MB)
        return m, c, mid, seen

    def finish(self, m, c, mid, seen):
        st = c.wait_phase(mid, "done", "failed", "cancelled")
        self.assertEqual(st["phase"], "done", st)
        self.assertTrue(st["resumed"], st)
        self.assertGreater(st["resumed_from"], 0, st)
        # What the resumed copy wrote: what was left when it stopped, and at most one
        # checkpoint interval more (the copy past its last checkpoint is redone).
        self.assertLessEqual(st["bytes_recopied"], SIZE_MB * MB - seen + CHECKPOINT, st)
        self.assertEqual(m.where("vm/disk"), [1])
        self.assertEqual(sha256(m.path("vm/disk")), self.digest)
        self.assertEqual(state_files(m), [])

    def test_kill_mid_copy_resumes_from_the_checkpoint(self):
        m, c, mid, seen = self.start_copy()
        os.kill(daemon_pid(m), signal.SIGKILL)
        wait_dead(m)
        run(["fusermount3", "-uz", m.mnt], check=False)
        m.start()
        self.finish(m, c, mid, seen)

    def test_unmount_mid_copy_resumes_at_the_next_mount(self):
        m, c, mid, seen = self.start_copy()
        m.stop()
        m.start()
        self.finish(m, c, mid, seen)

    def test_damaged_copy_rolls_back_and_keeps_the_file(self):
        m, c, mid, _ = self.start_copy()
        os.kill(daemon_pid(m), signal.SIGKILL)
        wait_dead(m)
        run(["fusermount3", "-uz", m.mnt], check=False)
        os.truncate(m.backing(1, f".vdsfs/mig-{mid}.copy"), MB)  # shorter than checkpointed
        m.start()
        st = c.wait_phase(mid, "done", "failed", "cancelled")
        self.assertEqual(st["phase"], "cancelled", st)
        self.assertFalse(st["resumed"], st)
        self.assertIn("could not resume", st["note"])
        self.assertIn("shorter than its checkpoint", st["note"])
        self.assertEqual(m.where("vm/disk"), [0])
        self.assertEqual(sha256(m.path("vm/disk")), self.digest)
        self.assertEqual(state_files(m), [])

    def test_resume_off_rolls_back(self):
        m, c, mid, _ = self.start_copy(opts="resume=off")
        os.kill(daemon_pid(m), signal.SIGKILL)
        wait_dead(m)
        run(["fusermount3", "-uz", m.mnt], check=False)
        m.start()
        st = c.one(mid)
        self.assertEqual(st["phase"], "cancelled", st)
        self.assertFalse(st["resumed"], st)
        self.assertEqual(m.where("vm/disk"), [0])
        self.assertEqual(sha256(m.path("vm/disk")), self.digest)
        self.assertEqual(state_files(m), [])


if __name__ == "__main__":
    main()
