"""Shared fixture for the integration tests: real datastores, a real FUSE mount.

Every Mount registers its own teardown with the test case (addCleanup), so the mount
is unmounted, the tmpfs datastores are unmounted and the temporary tree is removed
even when a test fails or raises. Tests need root and /dev/fuse; without them the
whole module is skipped (meson counts exit status 77 as a skip).
"""
import errno
import fcntl
import os
import shutil
import subprocess
import sys
import tempfile
import time
import unittest

VDSFS = os.environ.get("VDSFS", "vdsfs")
# Options every Mount adds, so that the whole suite can run once per transport
# (tools/test.sh: VDSFS_EXTRA_OPTS=io_uring=on).
EXTRA_OPTS = os.environ.get("VDSFS_EXTRA_OPTS", "")
URING_PARAM = "/sys/module/fuse/parameters/enable_uring"


def uring_param(value=None):
    """The kernel's FUSE-over-io_uring switch: read it, or set it (Y/N) and return
    what it was. None where this kernel has no such switch."""
    try:
        with open(URING_PARAM) as f:
            old = f.read().strip()
        if value is not None:
            with open(URING_PARAM, "w") as f:
                f.write(value)
        return old
    except OSError:
        return None


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


CONTROL_DIR = "/run/vdsfs"     # where a daemon without control= puts its socket


def _rmdir_if_empty(path):
    try:
        os.rmdir(path)
    except OSError:
        pass    # another mount's socket is there, or the daemon is still leaving


def default_socket(mnt):
    """The daemon's socket without control=, named by the real systemd-escape."""
    name = run(["systemd-escape", "--path", os.path.realpath(mnt)]).stdout.strip()
    return f"{CONTROL_DIR}/{name}.sock"


def wait_gone(path, timeout=60):
    """Until path no longer exists (e.g. a socket the daemon removes as it exits)."""
    end = time.time() + timeout
    while os.path.lexists(path):
        if time.time() > end:
            raise AssertionError(f"{path} is still there")
        time.sleep(0.05)


def wait_unlocked(lock, timeout=60):
    """Until no process holds the flock on a datastore's .vdsfs/lock (the daemon
    holds it for as long as it serves the datastore)."""
    try:
        fd = os.open(lock, os.O_RDONLY)
    except OSError:
        return      # never served, or a datastore that is gone
    try:
        end = time.time() + timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                fcntl.flock(fd, fcntl.LOCK_UN)
                return
            except BlockingIOError:
                if time.time() > end:
                    raise AssertionError(f"{lock} is still held {timeout} s after the unmount")
                time.sleep(0.05)
    finally:
        os.close(fd)


class Mount:
    """Datastores ds0..dsN-1 under a fresh temp dir, mounted at <tmp>/mnt (or at mnt:
    relative to the temp dir, or absolute). control=False leaves the daemon its
    default socket under /run/vdsfs, as the README's `vdsctl -m` examples expect; the
    name comes from the unique temp dir, so it never meets a real mount's socket;
    sock is that default path then."""

    def __init__(self, case, n=3, opts=None, tmpfs_mb=None, names=None, control=True,
                 mnt="mnt"):
        self.case = case
        if not control and not os.path.isdir(CONTROL_DIR):
            case.addCleanup(_rmdir_if_empty, CONTROL_DIR)   # runs last: LIFO
        self.top = tempfile.mkdtemp(prefix="vdsfs-it-")
        case.addCleanup(self._remove_top)
        self.names = names or [f"ds{i}" for i in range(n)]
        self.paths = [os.path.join(self.top, nm) for nm in self.names]
        self.mnt = os.path.join(self.top, mnt)
        os.makedirs(self.mnt)
        for i, p in enumerate(self.paths):
            os.mkdir(p)
            if tmpfs_mb:
                run(["mount", "-t", "tmpfs", "-o", f"size={tmpfs_mb[i]}m", "tmpfs", p])
                case.addCleanup(self._umount_path, p)
        # A per-test control socket keeps parallel or leftover daemons apart.
        self.sock = os.path.join(self.top, "ctl.sock") if control else default_socket(self.mnt)
        self.opts_control = control
        opts = ",".join(o for o in (control and f"control={self.sock}", EXTRA_OPTS, opts) if o)
        self.opts = opts
        self.spec = ":".join(f"{nm}={p}" for nm, p in zip(self.names, self.paths))

    def start(self, extra=(), env=None):
        cmd = [VDSFS, self.spec, self.mnt] + list(extra)
        if self.opts:
            cmd += ["-o", self.opts]
        self.case.addCleanup(self.stop)
        run(cmd, env=dict(os.environ, **(env or {})))
        for _ in range(100):
            if mounted(self.mnt):
                return self
            time.sleep(0.05)
        raise AssertionError("vdsfs did not mount")

    def stop(self):
        """Unmount, then wait until the daemon has let go of its datastores: the
        unmount returns before the daemon has finished shutting down (migrations
        stopped, journals written), and a mount started before that is refused
        as "already served by another vdsfs"."""
        if mounted(self.mnt):
            if run(["fusermount3", "-u", self.mnt], check=False).returncode != 0:
                run(["fusermount3", "-uz", self.mnt], check=False)
        for _ in range(100):
            if not mounted(self.mnt):
                break
            time.sleep(0.05)
        for p in self.paths:
            wait_unlocked(os.path.join(p, ".vdsfs", "lock"))

    def _umount_path(self, p):
        run(["umount", "-l", p], check=False)

    def _remove_top(self):
        self.stop()
        # A default socket outlives the unmount a moment; wait so that /run/vdsfs can
        # be removed after it (a daemon that died leaves it: then stop waiting).
        for _ in range(100):
            if self.opts_control or not os.path.lexists(self.sock):
                break
            time.sleep(0.05)
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
    if "io_uring=on" in EXTRA_OPTS.split(","):
        # The run that tests the io_uring transport turns the kernel's switch on
        # for its mounts and puts it back as it was when it ends.
        old = uring_param("Y")
        if old is None:
            print("skip: this kernel has no FUSE over io_uring")
            sys.exit(77)
        import atexit
        atexit.register(uring_param, old)
    import warnings
    warnings.simplefilter("ignore", ResourceWarning)
    unittest.main(verbosity=2)


VDSCTL = os.environ.get("VDSCTL", "vdsctl")


class Ctl:
    """vdsctl against one Mount, plus polling helpers. Waits are bounded but never
    asserted on: a slow machine makes a test slower, not red."""

    def __init__(self, m):
        self.m = m

    def run(self, *args, check=True):
        return run([VDSCTL, "-s", self.m.sock, "-m", self.m.mnt] + list(args), check=check)

    def json(self, *args):
        import json
        return json.loads(self.run(*args).stdout)

    def status(self, mid=None):
        args = ["status", "--json"] + ([str(mid)] if mid else [])
        return self.json(*args)

    def one(self, mid):
        return self.status(mid)[0]

    def events(self):
        return self.json("events")["events"]

    def migrate(self, *args):
        out = self.run("migrate", *args).stdout.split()
        return [int(x) for x in out]

    def wait(self, cond, what, timeout=240):
        end = time.time() + timeout
        while time.time() < end:
            v = cond()
            if v:
                return v
            time.sleep(0.05)
        raise AssertionError(f"gave up waiting for {what}")

    def wait_phase(self, mid, *phases):
        return self.wait(lambda: self.one(mid)["phase"] in phases and self.one(mid),
                         f"migration {mid} to reach {phases}")

    def wait_held(self, mid, point):
        return self.wait(lambda: self.one(mid).get("held_at") == point,
                         f"migration {mid} to hold at {point}")

    def request(self, obj):
        """One raw control request (a dict), its reply as a dict: for fields and
        options vdsctl does not show or take."""
        import json
        import socket
        s = socket.socket(socket.AF_UNIX)
        s.connect(self.m.sock)
        try:
            s.sendall(json.dumps(obj).encode() + b"\n")
            return json.loads(s.makefile().readline())
        finally:
            s.close()

    def release(self):
        reply = self.request({"cmd": "test-release"})
        assert reply["ok"], reply


def peer_request(sock, request, setpriv):
    """Send one control request as another user (setpriv arguments, e.g.
    ["--reuid=65534", "--regid=65534", "--clear-groups"]) and return the reply line.
    A refused peer is answered at once and hung up on, so the send may meet a
    closed socket: the answer is still there to read. A connect that the socket's
    mode refuses returns "connect: <errno name>"."""
    code = ("import errno,socket,sys\ns=socket.socket(socket.AF_UNIX)\n"
            "try:\n s.connect(sys.argv[1])\nexcept OSError as e:\n"
            " print('connect: '+errno.errorcode[e.errno]);sys.exit()\n"
            "try:\n s.sendall(sys.argv[2].encode()+b'\\n')\nexcept OSError:\n pass\n"
            "print(s.makefile().readline())")
    return run(["setpriv"] + list(setpriv) + ["python3", "-c", code, sock, request]).stdout


def state_files(m):
    """Everything in the datastores' .vdsfs/ folders except the lock files."""
    out = []
    for p in m.paths:
        d = os.path.join(p, ".vdsfs")
        if os.path.isdir(d):
            out += [os.path.join(d, f) for f in os.listdir(d) if f != "lock"]
    return out


def wait_dead(m, timeout=120):
    """Until the daemon behind m is gone (after a test crash point). statfs always
    reaches the daemon; stat() could be answered from the kernel's attribute cache."""
    end = time.time() + timeout
    while time.time() < end:
        try:
            os.statvfs(m.mnt)
        except OSError as e:
            if e.errno == errno.ENOTCONN:
                return
        time.sleep(0.05)
    raise AssertionError("the daemon did not crash at its test point")
