#!/usr/bin/env python3
"""vdsfs under a service manager, checked for real without one.

Readiness: $NOTIFY_SOCKET names a datagram socket this test binds, as systemd
does for a Type=notify unit; READY=1 must arrive only once the mount is up and the
control socket answers, with MAINPID= when the daemon forked away, and STOPPING=1
when it is told to stop. The OOM score is read back from /proc/PID/oom_score_adj.
The journal: in a mount namespace of its own (unshare -m), a tmpfs over /run/systemd
holds a journal socket this test binds, so the daemon in the background writes its
lines there in journald's native protocol, and every line of a migration must name
it and its datastores, as text and as fields. Nothing outside the namespace sees
that socket."""
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from vdsfs_fixture import VDSFS, Ctl, Mount, main, mounted, run  # noqa: E402


def recv_fields(sock, timeout):
    """One datagram as {KEY: value} (sd_notify's and journald's text form: one
    KEY=value a line), or None after timeout seconds."""
    sock.settimeout(timeout)
    try:
        data = sock.recv(65536).decode()
    except socket.timeout:
        return None
    return dict(line.split("=", 1) for line in data.splitlines() if "=" in line)


def daemon_pid(m):
    """The daemon's pid, as it writes it into every datastore's lock file."""
    with open(os.path.join(m.paths[0], ".vdsfs", "lock")) as f:
        return int(f.read())


def has_sys_resource():
    """Does this process hold CAP_SYS_RESOURCE (needed to lower an OOM score)? Some
    sandboxes drop it even for root."""
    with open("/proc/self/status") as f:
        eff = next(int(line.split()[1], 16) for line in f if line.startswith("CapEff:"))
    return bool(eff & (1 << 24))


def oom_score_adj(pid):
    with open(f"/proc/{pid}/oom_score_adj") as f:
        return int(f.read())


class Notify(unittest.TestCase):
    def notify_socket(self):
        d = tempfile.mkdtemp(prefix="vdsfs-it-notify-")
        self.addCleanup(lambda: (os.path.exists(path) and os.unlink(path), os.rmdir(d)))
        path = os.path.join(d, "notify")
        s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        s.bind(path)
        self.addCleanup(s.close)
        return s, path

    def test_foreground_ready_after_mount_and_socket(self):
        s, path = self.notify_socket()
        m = Mount(self, n=2)
        p = subprocess.Popen([VDSFS, "-f", m.spec, m.mnt, "-o", m.opts],
                             env=dict(os.environ, NOTIFY_SOCKET=path),
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.addCleanup(lambda: p.poll() is None and (p.kill(), p.wait()))
        self.addCleanup(m.stop)
        msg = recv_fields(s, 120)
        self.assertIsNotNone(msg, "no notification from the daemon")
        self.assertEqual(msg.get("READY"), "1", msg)
        # When READY arrives, the mount is there and the control socket answers.
        self.assertTrue(mounted(m.mnt))
        self.assertEqual(Ctl(m).json("datastores", "--json")["datastores"][1]["name"], "ds1")
        self.assertIn("serving 2 datastores at " + os.path.realpath(m.mnt), msg["STATUS"])
        self.assertNotIn("MAINPID", msg, "in the foreground systemd's pid is ours")
        before = oom_score_adj(os.getpid())
        if has_sys_resource():
            self.assertEqual(oom_score_adj(p.pid), -1000, "root: out of the OOM killer's way")
        else:
            # Root without CAP_SYS_RESOURCE (a sandbox): the daemon says so and runs.
            self.assertEqual(oom_score_adj(p.pid), before)
        p.send_signal(signal.SIGTERM)
        stop = recv_fields(s, 120)
        self.assertEqual(stop.get("STOPPING"), "1", stop)
        self.assertEqual(p.wait(120), 0)
        self.assertFalse(mounted(m.mnt))
        err = p.stderr.read().decode()
        if not has_sys_resource():
            self.assertIn("cannot set oom_score_adj to -1000", err)

    def test_background_says_its_pid_and_keeps_its_oom_option(self):
        s, path = self.notify_socket()
        m = Mount(self, n=2, opts="oom_score_adj=250")
        m.start(env={"NOTIFY_SOCKET": path})
        msg = recv_fields(s, 120)
        self.assertEqual(msg.get("READY"), "1", msg)
        pid = daemon_pid(m)
        self.assertEqual(int(msg["MAINPID"]), pid, "forked: systemd is told the new pid")
        self.assertEqual(oom_score_adj(pid), 250)

    def test_bad_oom_value_refused_before_mount(self):
        m = Mount(self, n=1, opts="oom_score_adj=-2000")
        p = run([VDSFS, m.spec, m.mnt, "-o", m.opts], check=False)
        self.assertEqual(p.returncode, 1)
        self.assertIn("oom_score_adj=-2000", p.stderr)
        self.assertFalse(mounted(m.mnt))


INNER = "VDSFS_IT_JOURNAL_INNER"


class Journal(unittest.TestCase):
    def test_background_lines_name_migration_and_datastores(self):
        if not os.environ.get(INNER):
            # Again, alone, in a mount namespace of its own.
            p = run(["unshare", "-m", "--propagation", "private", sys.executable, "-W",
                     "ignore::ResourceWarning", os.path.abspath(__file__),
                     "Journal.test_background_lines_name_migration_and_datastores"],
                    check=False, env=dict(os.environ, **{INNER: "1"}))
            self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
            self.assertIn("OK", p.stderr)
            return
        run(["mount", "-t", "tmpfs", "-o", "mode=755", "tmpfs", "/run/systemd"])
        os.mkdir("/run/systemd/journal")
        j = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        j.bind("/run/systemd/journal/socket")
        self.addCleanup(j.close)
        m = Mount(self, n=2)
        m.start()
        with open(m.path("disk.img"), "wb") as f:
            f.write(os.urandom(4 << 20))
        ctl = Ctl(m)
        [mid] = ctl.migrate(m.path("disk.img"), "--to", "ds1")
        ctl.wait_phase(mid, "done")
        lines = []
        end = time.time() + 60
        while time.time() < end and not any("done" in x.get("MESSAGE", "") for x in lines):
            x = recv_fields(j, 5)
            if x:
                lines.append(x)
        mine = [x for x in lines if x.get("VDSFS_MIGRATION") == str(mid)]
        self.assertTrue(mine, lines)
        for x in mine:
            self.assertEqual(x["SYSLOG_IDENTIFIER"], "vdsfs")
            self.assertEqual(x["VDSFS_DATASTORE"], "ds0")
            self.assertEqual(x["VDSFS_TO"], "ds1")
            self.assertEqual(x["VDSFS_PATH"], "disk.img")
            self.assertEqual(x["VDSFS_MOUNT"], os.path.realpath(m.mnt))
            self.assertTrue(x["MESSAGE"].startswith(f"migration {mid} (disk.img, ds0 -> ds1): "), x)
        texts = [x["MESSAGE"].split(": ", 1)[1] for x in mine]
        self.assertIn("started", texts)
        self.assertTrue(any(t.startswith("done: 4194304 bytes copied") for t in texts), texts)


if __name__ == "__main__":
    main()
