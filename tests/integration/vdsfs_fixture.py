"""Shared fixture for the integration tests: real datastores, a real FUSE mount.

Every Mount registers its own teardown with the test case (addCleanup), so the mount
is unmounted, the tmpfs datastores are unmounted and the temporary tree is removed
even when a test fails or raises. Tests need root and /dev/fuse; without them the
whole module is skipped (meson counts exit status 77 as a skip).
"""
import os
import shutil
import subprocess
import sys
import tempfile
import time
import unittest

VDSFS = os.environ.get("VDSFS", "vdsfs")


def require_root():
    if os.geteuid() != 0 or not os.path.exists("/dev/fuse"):
        print("skip: integration tests need root and /dev/fuse")
        sys.exit(77)


def mounted(path):
    with open("/proc/self/mountinfo") as f:
        return any(line.split()[4] == path for line in f)


def run(cmd, check=True, **kw):
    """Run a command, failing with its output when check is true and it fails."""
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)
    if check and p.returncode != 0:
        raise AssertionError(f"{cmd} exited {p.returncode}\nstdout: {p.stdout}\nstderr: {p.stderr}")
    return p


class Mount:
    """Datastores ds0..dsN-1 under a fresh temp dir, mounted at <tmp>/mnt."""

    def __init__(self, case, n=3, opts=None, tmpfs_mb=None, names=None):
        self.case = case
        self.top = tempfile.mkdtemp(prefix="vdsfs-it-")
        case.addCleanup(self._remove_top)
        self.names = names or [f"ds{i}" for i in range(n)]
        self.paths = [os.path.join(self.top, nm) for nm in self.names]
        self.mnt = os.path.join(self.top, "mnt")
        os.mkdir(self.mnt)
        for i, p in enumerate(self.paths):
            os.mkdir(p)
            if tmpfs_mb:
                run(["mount", "-t", "tmpfs", "-o", f"size={tmpfs_mb[i]}m", "tmpfs", p])
                case.addCleanup(self._umount_path, p)
        self.opts = opts
        self.spec = ":".join(f"{nm}={p}" for nm, p in zip(self.names, self.paths))

    def start(self, extra=()):
        cmd = [VDSFS, self.spec, self.mnt] + list(extra)
        if self.opts:
            cmd += ["-o", self.opts]
        self.case.addCleanup(self.stop)
        run(cmd)
        for _ in range(100):
            if mounted(self.mnt):
                return self
            time.sleep(0.05)
        raise AssertionError("vdsfs did not mount")

    def stop(self):
        if mounted(self.mnt):
            if run(["fusermount3", "-u", self.mnt], check=False).returncode != 0:
                run(["fusermount3", "-uz", self.mnt], check=False)
        for _ in range(100):
            if not mounted(self.mnt):
                return
            time.sleep(0.05)

    def _umount_path(self, p):
        run(["umount", "-l", p], check=False)

    def _remove_top(self):
        self.stop()
        shutil.rmtree(self.top, ignore_errors=True)

    def path(self, rel):
        return os.path.join(self.mnt, rel)

    def backing(self, i, rel):
        return os.path.join(self.paths[i], rel)

    def where(self, rel):
        """Indexes of the datastores that hold rel."""
        return [i for i, p in enumerate(self.paths) if os.path.lexists(os.path.join(p, rel))]


def main():
    require_root()
    import warnings
    warnings.simplefilter("ignore", ResourceWarning)
    unittest.main(verbosity=2)
