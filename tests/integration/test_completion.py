#!/usr/bin/env python3
"""vdsctl's bash completion against a real daemon: datastore names (after --to and in
PATH=NAME) are the mount's, asked with the -m or -s on the line; status offers every
listed migration id, cancel only the active ones; paths come from the mount. The
completion is driven as in tests/tools/test_completion.py (the helpers are shared)."""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tools"))
from test_completion import complete  # noqa: E402

import unittest  # noqa: E402

from vdsfs_fixture import Ctl, Mount, main  # noqa: E402

NAMES = ["fast", "bulk", "nfs"]
TERMINAL = ("done", "failed", "cancelled")


class Daemon(unittest.TestCase):
    def setUp(self):
        # control=False: the default socket, which vdsctl -m finds by itself.
        self.m = Mount(self, names=NAMES, control=False)
        for rel in ("vm1/disk1.raw", "vm1/disk2.raw"):
            os.makedirs(os.path.dirname(self.m.backing(0, rel)), exist_ok=True)
            with open(self.m.backing(0, rel), "wb") as f:
                f.write(os.urandom(1 << 20))
        self.m.start(env={"VDSFS_TEST_HOLD": "copied"})
        self.c = Ctl(self.m)

    def test_datastore_names(self):
        mnt = self.m.mnt
        for line in (f"vdsctl -m {mnt} migrate --to ", f"vdsctl -s {self.m.sock} migrate vm1 --to ",
                     f"vdsctl -m {mnt} migrate --wait vm1/disk1.raw="):
            got, _, err = complete(line)
            self.assertEqual((got, err), (sorted(NAMES), ""), line)
        self.assertEqual(complete(f"vdsctl -m {mnt} migrate vm1/disk1.raw=n")[0], ["nfs"])
        self.assertEqual(complete(f"vdsctl --mount={mnt} migrate --to b")[0], ["bulk"])

    def test_migration_ids(self):
        done, = self.c.migrate(self.m.path("vm1/disk2.raw") + "=nfs")
        self.c.wait_held(done, "copied")
        self.c.release()
        self.assertEqual(self.c.wait_phase(done, *TERMINAL)["phase"], "done")
        active, = self.c.migrate(self.m.path("vm1/disk1.raw") + "=bulk")
        self.c.wait_held(active, "copied")
        mnt = self.m.mnt
        self.assertEqual(complete(f"vdsctl -m {mnt} status ")[0], sorted([str(done), str(active)]))
        self.assertEqual(complete(f"vdsctl -m {mnt} status --json ")[0],
                         sorted([str(done), str(active)]))
        self.assertEqual(complete(f"vdsctl -m {mnt} cancel ")[0], [str(active)])
        self.assertEqual(complete(f"vdsctl -s {self.m.sock} cancel ")[0], [str(active)])

    def test_paths_in_the_mount(self):
        got, _, _ = complete(f"vdsctl -m {self.m.mnt} where vm1/")
        self.assertEqual(got, ["vm1/disk1.raw", "vm1/disk2.raw"])
        got, _, _ = complete(f"vdsctl -m {self.m.mnt} where disk", cwd=self.m.path("vm1"))
        self.assertEqual(got, ["disk1.raw", "disk2.raw"])


if __name__ == "__main__":
    main()
