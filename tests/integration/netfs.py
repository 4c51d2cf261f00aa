"""Network filesystems for datastores, each started by the test that uses it and torn
down by that test's cleanups, even when it fails (test_netfs.py).

- Gluster: a glusterd of our own (working directory, run directory and CLI socket in
  the test's temp dir, listening on 127.0.0.2 only), one single-brick volume whose
  brick is a tmpfs of a given size, mounted with the GlusterFS FUSE client. 127.0.0.2
  is loopback too; the gluster CLI refuses 127.0.0.1 and "localhost" as a brick's
  host, and the machine's hostname need not resolve to loopback.
- Sshfs: an sshd of our own on a free loopback port (temp host key, a temp
  authorized key for root, no PAM, no password), the "remote" directory a tmpfs,
  mounted with sshfs. The system's sshd and its configuration are never touched.
"""
import os
import signal
import socket
import subprocess
import time

from vdsfs_fixture import mounted, run

GLUSTER_HOST = "127.0.0.2"


def wait_until(cond, what, timeout=60):
    end = time.time() + timeout
    while time.time() < end:
        if cond():
            return
        time.sleep(0.1)
    raise AssertionError(f"gave up waiting for {what}")


def alive(pid):
    """A process that exists and is no zombie (PID 1 here need not reap orphans)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def tmpfs(case, path, size_mb):
    os.makedirs(path, exist_ok=True)
    run(["mount", "-t", "tmpfs", "-o", f"size={size_mb}m", "tmpfs", path])
    case.addCleanup(lambda: run(["umount", "-l", path], check=False))


def unmount(path):
    if mounted(path) and run(["umount", path], check=False).returncode:
        run(["umount", "-l", path], check=False)


class Gluster:
    """glusterd + volume `name` (brick: a tmpfs of brick_mb) mounted at mnt."""

    def __init__(self, case, top, mnt, brick_mb, name="vdsfsit"):
        self.case, self.name, self.mnt = case, name, mnt
        self.dir = os.path.join(top, "glusterd")
        self.run_dir = os.path.join(self.dir, "run")
        self.sock = os.path.join(self.dir, "glusterd.socket")
        self.brick = os.path.join(top, "gluster-brick")
        for d in ("wd", "run", "log"):
            os.makedirs(os.path.join(self.dir, d))
        tmpfs(case, self.brick, brick_mb)
        vol = os.path.join(self.dir, "glusterd.vol")
        with open(vol, "w") as f:
            f.write("volume management\n"
                    "    type mgmt/glusterd\n"
                    f"    option working-directory {self.dir}/wd\n"
                    f"    option run-directory {self.run_dir}\n"
                    f"    option glusterd-sockfile {self.sock}\n"
                    "    option transport-type socket\n"
                    f"    option transport.socket.bind-address {GLUSTER_HOST}\n"
                    "    option transport.socket.listen-port 24007\n"
                    "    option ping-timeout 0\n"
                    "    option event-threads 1\n"
                    "end-volume\n")
        self.log = os.path.join(self.dir, "log", "glusterd.log")
        self.glusterd = subprocess.Popen(["glusterd", "--no-daemon", "-f", vol, "-l", self.log,
                                          "--log-level=WARNING"],
                                         stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        case.addCleanup(self.stop)
        wait_until(lambda: os.path.exists(self.sock) or self.glusterd.poll() is not None,
                   "glusterd's socket")
        if self.glusterd.poll() is not None:
            raise AssertionError(f"glusterd exited {self.glusterd.returncode}: {self.logs()}")
        self.cli("volume", "create", name, f"{GLUSTER_HOST}:{self.brick}", "force")
        self.cli("volume", "start", name)
        self.mount()

    def logs(self):
        try:
            with open(self.log) as f:
                return f.read()[-3000:]
        except OSError:
            return ""

    def cli(self, *args, check=True):
        # The CLI retries a refused connection for a while: wait_until gives glusterd
        # the time to accept its first request.
        return run(["gluster", f"--glusterd-sock={self.sock}", "--mode=script"] + list(args),
                   check=check)

    def mount(self):
        os.makedirs(self.mnt, exist_ok=True)
        run(["mount", "-t", "glusterfs", "-o",
             f"log-file={os.path.join(self.dir, 'log', 'client.log')}",
             f"{GLUSTER_HOST}:/{self.name}", self.mnt])

    def brick_pids(self):
        pids = []
        for root, _, files in os.walk(self.run_dir):
            for f in files:
                if f.endswith(".pid"):
                    try:
                        with open(os.path.join(root, f)) as fh:
                            pids.append(int(fh.read().strip() or 0))
                    except (OSError, ValueError):
                        pass
        return [p for p in pids if p > 0 and alive(p)]

    def stop_volume(self):
        """The server side goes away: the brick process stops, the client stays."""
        self.cli("volume", "stop", self.name, "force")

    def start_volume(self):
        """The volume back; the client reconnects by itself, in a few seconds."""
        self.cli("volume", "start", self.name, "force")

        def serves():
            try:
                os.listdir(self.mnt)
                return True
            except OSError:
                return False
        wait_until(serves, "the GlusterFS client to reconnect")

    def stop(self):
        unmount(self.mnt)
        if self.glusterd.poll() is None:
            self.cli("volume", "stop", self.name, "force", check=False)
            self.cli("volume", "delete", self.name, check=False)
        for pid in self.brick_pids():
            os.kill(pid, signal.SIGKILL)
        if self.glusterd.poll() is None:
            self.glusterd.terminate()
            try:
                self.glusterd.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.glusterd.kill()
                self.glusterd.wait()


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Sshfs:
    """sshd on 127.0.0.1:<free port> and sshfs of remote (a tmpfs of remote_mb) at mnt."""

    def __init__(self, case, top, mnt, remote_mb):
        self.case, self.mnt = case, mnt
        self.dir = os.path.join(top, "sshd")
        self.remote = os.path.join(top, "ssh-remote")
        os.makedirs(self.dir)
        tmpfs(case, self.remote, remote_mb)
        key, host_key = os.path.join(self.dir, "id"), os.path.join(self.dir, "host")
        for k in (key, host_key):
            run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", k])
        os.rename(key + ".pub", os.path.join(self.dir, "authorized_keys"))
        self.key, self.port = key, free_port()
        conf = os.path.join(self.dir, "sshd_config")
        with open(conf, "w") as f:
            f.write(f"Port {self.port}\nListenAddress 127.0.0.1\nHostKey {host_key}\n"
                    f"AuthorizedKeysFile {self.dir}/authorized_keys\n"
                    "PermitRootLogin prohibit-password\nPasswordAuthentication no\n"
                    "KbdInteractiveAuthentication no\nUsePAM no\nStrictModes no\n"
                    f"PidFile {self.dir}/sshd.pid\nSubsystem sftp internal-sftp\n")
        # sshd insists on its privilege separation directory, which the system's
        # init script makes; make it if missing, remove it again if we made it.
        if not os.path.isdir("/run/sshd"):
            os.mkdir("/run/sshd", 0o755)
            case.addCleanup(lambda: os.path.isdir("/run/sshd") and os.rmdir("/run/sshd"))
        self.log, self.conf = os.path.join(self.dir, "sshd.log"), conf
        self.start_sshd()
        case.addCleanup(self.stop)
        self.mount()

    def start_sshd(self):
        with open(self.log, "a") as log:
            self.sshd = subprocess.Popen(["/usr/sbin/sshd", "-D", "-e", "-f", self.conf],
                                         stdout=log, stderr=subprocess.STDOUT)
        wait_until(self.listening, "sshd to listen")

    def restart(self):
        """After kill_server(): a new sshd on the same port, sshfs mounted anew."""
        unmount(self.mnt)
        self.start_sshd()
        self.mount()

    def listening(self):
        if self.sshd.poll() is not None:
            with open(self.log) as f:
                raise AssertionError(f"sshd exited {self.sshd.returncode}: {f.read()}")
        s = socket.socket()
        try:
            s.connect(("127.0.0.1", self.port))
            return True
        except OSError:
            return False
        finally:
            s.close()

    def mount(self):
        os.makedirs(self.mnt, exist_ok=True)
        run(["sshfs", "-p", str(self.port), "-o",
             f"IdentityFile={self.key},StrictHostKeyChecking=no,UserKnownHostsFile=/dev/null,"
             "BatchMode=yes,LogLevel=ERROR", f"root@127.0.0.1:{self.remote}", self.mnt])

    def sessions(self):
        """sshd's per-connection children (sshfs's session among them)."""
        out = []
        for tid in os.listdir(f"/proc/{self.sshd.pid}/task"):
            try:
                with open(f"/proc/{self.sshd.pid}/task/{tid}/children") as f:
                    out += [int(p) for p in f.read().split()]
            except OSError:
                pass
        return out

    def end_server(self, sig):
        """sshd and every session it serves get sig (sessions first collected)."""
        pids = self.sessions()
        self.sshd.send_signal(sig)
        self.sshd.wait()
        for p in pids:
            try:
                os.kill(p, sig)
            except ProcessLookupError:
                pass

    def kill_server(self):
        """The server goes away: sshd and every session it serves are killed."""
        self.end_server(signal.SIGKILL)

    def stop(self):
        unmount(self.mnt)
        if self.sshd.poll() is None:
            self.end_server(signal.SIGTERM)
