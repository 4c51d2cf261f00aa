#!/usr/bin/env python3
"""Command line and mount conventions: bad input is refused with one clear line and
exit status 1, leaving nothing mounted; good input mounts via vdsfs itself, via
mount -t fuse.vdsfs (mount.fuse3's calling convention) and unmounts on SIGTERM."""
import json
import os
import signal
import stat
import subprocess
import time
import unittest

from vdsfs_fixture import (VDSCTL, VDSFS, Mount, main, mounted, peer_request, run,
                           wait_gone)


class BadInput(unittest.TestCase):
    def setUp(self):
        self.m = Mount(self, n=2)

    def refuse(self, args, expect):
        p = run([VDSFS] + args, check=False)
        self.assertEqual(p.returncode, 1, p.stderr)
        lines = p.stderr.strip().splitlines()
        self.assertEqual(len(lines), 1, p.stderr)
        self.assertIn(expect, lines[0])
        self.assertFalse(mounted(self.m.mnt))

    def test_missing_datastore(self):
        self.refuse([f"a={self.m.top}/nope", self.m.mnt], "No such file")

    def test_datastore_not_a_directory(self):
        f = os.path.join(self.m.top, "file")
        open(f, "w").close()
        self.refuse([f"a={f}", self.m.mnt], "not a directory")

    def test_duplicate_names(self):
        self.refuse([f"a={self.m.paths[0]}:a={self.m.paths[1]}", self.m.mnt], "given twice")

    def test_same_directory_twice(self):
        self.refuse([f"a={self.m.paths[0]}:b={self.m.paths[0]}/.", self.m.mnt], "same directory")

    def test_nested_datastores(self):
        inner = os.path.join(self.m.paths[0], "sub")
        os.mkdir(inner)
        self.refuse([f"a={self.m.paths[0]}:b={inner}", self.m.mnt], "inside datastore")

    def test_datastore_inside_mountpoint(self):
        inner = os.path.join(self.m.mnt, "sub")
        os.mkdir(inner)
        self.refuse([f"a={inner}", self.m.mnt], "inside the mountpoint")

    def test_mountpoint_inside_datastore(self):
        inner = os.path.join(self.m.paths[0], "mnt")
        os.mkdir(inner)
        self.refuse([f"a={self.m.paths[0]}", inner], "inside datastore")

    def test_no_mountpoint(self):
        self.refuse([self.m.spec], "no mountpoint")

    def test_no_arguments(self):
        self.refuse([], "no datastores")

    def test_bad_spec(self):
        self.refuse([f"{self.m.paths[0]}", self.m.mnt], "NAME=PATH")

    def test_unknown_flag(self):
        self.refuse(["--bogus", self.m.spec, self.m.mnt], "unknown option")

    def test_unknown_mount_option(self):
        self.refuse([self.m.spec, self.m.mnt, "-o", "no_such_option"], "unknown option")

    def test_create_names_no_datastore(self):
        self.refuse([self.m.spec, self.m.mnt, "-o", "create=zzz"], "names no datastore")

    def test_second_instance_refused(self):
        self.m.start()
        other = os.path.join(self.m.top, "mnt2")
        os.mkdir(other)
        p = run([VDSFS, self.m.spec, other], check=False)
        self.assertEqual(p.returncode, 1)
        self.assertIn("already served by another vdsfs", p.stderr)
        self.assertFalse(mounted(other))
        self.assertTrue(mounted(self.m.mnt))

    def test_second_instance_on_the_same_mountpoint_refused(self):
        self.m.start()
        other = os.path.join(self.m.top, "other")
        os.mkdir(other)
        p = run([VDSFS, f"x={other}", self.m.mnt, "-o", f"control={self.m.top}/c2.sock"],
                check=False)
        self.assertEqual(p.returncode, 1, p.stderr)
        self.assertIn("is already a vdsfs mount", p.stderr)
        with open("/proc/self/mountinfo") as f:
            self.assertEqual(sum(line.split()[4] == self.m.mnt for line in f), 1)


class GoodInput(unittest.TestCase):
    def test_help_and_version(self):
        self.assertIn("usage:", run([VDSFS, "--help"]).stdout)
        self.assertIn("vdsfs", run([VDSFS, "--version"]).stdout)

    def test_datastores_as_separate_arguments(self):
        m = Mount(self, n=3)
        self.addCleanup(m.stop)
        joined = f"{m.names[1]}={m.paths[1]}:{m.names[2]}={m.paths[2]}"
        run([VDSFS, f"{m.names[0]}={m.paths[0]}", joined, m.mnt, "-o", m.opts])
        self.assertTrue(mounted(m.mnt))
        out = json.loads(run([VDSCTL, "-s", m.sock, "datastores", "--json"]).stdout)
        self.assertEqual([(d["name"], d["path"]) for d in out["datastores"]],
                         list(zip(m.names, m.paths)))

    def test_state_folder_created_and_hidden(self):
        m = Mount(self, n=2).start()
        for p in m.paths:
            self.assertTrue(os.path.isdir(os.path.join(p, ".vdsfs")))
        self.assertNotIn(".vdsfs", os.listdir(m.mnt))
        self.assertFalse(os.path.exists(m.path(".vdsfs")))
        with self.assertRaises(PermissionError):
            os.mkdir(m.path(".vdsfs"))

    def test_mount_fuse3_convention(self):
        m = Mount(self, n=2)
        self.addCleanup(m.stop)
        # mount(8) resets PATH, so name the uninstalled binary through the PROG#SOURCE
        # form; mount.fuse3 then runs `PROG SOURCE MOUNTPOINT -o OPTS` exactly as it
        # runs an installed vdsfs for -t fuse.vdsfs and fstab lines.
        prog = os.path.abspath(VDSFS)
        run(["mount", "-t", "fuse", f"{prog}#{m.spec}", m.mnt, "-o", "allow_other,create=ff,nofail"])
        self.assertTrue(mounted(m.mnt))
        with open(m.path("f"), "w") as f:
            f.write("x")
        self.assertEqual(m.where("f"), [0])
        fstype = [l.split(" - ")[1].split()[0] for l in open("/proc/self/mountinfo")
                  if l.split()[4] == m.mnt]
        self.assertEqual(fstype, ["fuse.vdsfs"])

    def foreground(self):
        """A vdsfs in the foreground, mounted, as a Popen."""
        m = Mount(self, n=2)
        self.addCleanup(m.stop)
        p = subprocess.Popen([VDSFS, "-f", m.spec, m.mnt])
        self.addCleanup(p.kill)
        for _ in range(100):
            if mounted(m.mnt):
                break
            time.sleep(0.05)
        self.assertTrue(mounted(m.mnt))
        return m, p

    def test_sigterm_unmounts(self):
        m, p = self.foreground()
        p.send_signal(signal.SIGTERM)
        self.assertEqual(p.wait(timeout=20), 0)
        self.assertFalse(mounted(m.mnt))

    def test_fusermount_unmount_ends_daemon(self):
        m, p = self.foreground()
        run(["fusermount3", "-u", m.mnt])
        self.assertEqual(p.wait(timeout=20), 0)


class DefaultSocket(unittest.TestCase):
    """Without control= each mount gets /run/vdsfs/<systemd-escape --path>.sock: two
    mountpoints that differ only in '-' against '/' get two sockets, and vdsctl -m
    reaches each mount's own daemon. systemd-escape is the oracle for the name."""

    def test_vm_dash_a_and_vm_slash_a(self):
        a = Mount(self, n=1, names=["a"], control=False, mnt="vm-a")
        b = Mount(self, n=1, names=["b"], control=False, mnt=os.path.join(a.top, "vm", "a"))
        a.start()
        b.start()
        socks = [a.sock, b.sock]
        self.assertNotEqual(socks[0], socks[1])
        for m, sock in zip((a, b), socks):
            self.assertTrue(stat.S_ISSOCK(os.stat(sock).st_mode), sock)
            out = json.loads(run([VDSCTL, "-m", m.mnt, "datastores", "--json"]).stdout)
            self.assertEqual([d["name"] for d in out["datastores"]], m.names)
        a.stop()
        b.stop()
        for sock in socks:
            wait_gone(sock)     # the daemon removes it after the unmount


class ControlGroup(unittest.TestCase):
    """-o control_group=G lets members of G (primary or supplementary) use the
    control socket besides root; everyone else is still refused."""
    GID = 4242   # numeric, so the test needs no entry in /etc/group

    def status_as(self, m, *setpriv):
        return peer_request(m.sock, '{"cmd":"status"}', ["--reuid=65534"] + list(setpriv))

    def test_members_allowed_others_refused(self):
        m = Mount(self, n=2, opts=f"control_group={self.GID}")
        os.chmod(m.top, 0o711)
        m.start()
        st = os.stat(m.sock)
        self.assertEqual((st.st_mode & 0o777, st.st_gid), (0o660, self.GID))
        primary = self.status_as(m, f"--regid={self.GID}", "--clear-groups")
        self.assertIn('"ok":true', primary)
        supplementary = self.status_as(m, "--regid=65534", f"--groups={self.GID}")
        self.assertIn('"ok":true', supplementary)
        stranger = ("--regid=65534", "--clear-groups")
        self.assertEqual(self.status_as(m, *stranger).strip(), "connect: EACCES")
        os.chmod(m.sock, 0o666)   # past the socket's mode, SO_PEERCRED still refuses
        self.assertIn("permission denied", self.status_as(m, *stranger))

    def test_unknown_group_refused(self):
        m = Mount(self, n=2, opts="control_group=no-such-group-vdsfs")
        p = run([VDSFS, m.spec, m.mnt, "-o", m.opts], check=False)
        self.assertEqual(p.returncode, 1, p.stderr)
        self.assertIn("control_group=no-such-group-vdsfs: no such group", p.stderr)
        self.assertFalse(mounted(m.mnt))

    def test_group_that_cannot_reach_the_socket_refused(self):
        m = Mount(self, n=2, opts=f"control_group={self.GID}")  # m.top is 0700
        p = run([VDSFS, m.spec, m.mnt, "-o", m.opts], check=False)
        self.assertEqual(p.returncode, 1, p.stderr)
        self.assertIn(f"group {self.GID} cannot search {m.top}", p.stderr)
        self.assertFalse(mounted(m.mnt))
        self.assertFalse(os.path.exists(m.sock))


if __name__ == "__main__":
    main()
