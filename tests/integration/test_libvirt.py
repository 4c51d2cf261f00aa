#!/usr/bin/env python3
"""The mount as libvirt's storage (issue 16, point 4): a libvirtd of the test's own
(its sockets in the test's temp dir, started and stopped here, no systemd needed:
PID 1 on the test machines is no init system), a `dir` storage pool whose target is
on the mount, a volume made by `virsh vol-create-as`, a domain defined on it with
cache='none' and io='io_uring' (type qemu: software emulation) that boots the same
kernel and initramfs as it-guest (guest.py), and its disk migrated with vdsctl to
the other datastore and back while guestio verifies it in the guest.

qemu runs as libvirt's default user (libvirt-qemu), so the mount is made with
allow_other, and libvirt's own chown of the disk goes through the mount; the owner
must survive the migrations. `virsh pool-info` must report what statvfs of the mount
says (libvirt reads f_blocks, f_bfree and f_frsize): the datastores are tmpfs of
fixed sizes, so those numbers do not move under the test.
"""
import os
import pwd
import shutil
import socket
import subprocess
import unittest

import guest
from netfs import wait_until
from test_guest import md5
from vdsfs_fixture import VDSCTL, Ctl, Mount, main, run, state_files

DISK_MB = 64
QEMU_USER = "libvirt-qemu"      # Debian's qemu.conf default


class Libvirtd:
    """virtlogd and libvirtd in the foreground, children of the test: libvirtd's
    sockets in dir (virsh -c qemu:///system?socket=...). virtlogd has a fixed
    socket (/run/libvirt/virtlogd-sock); the qemu driver needs it for the domain's
    console log."""

    def __init__(self, case, top):
        self.dir = os.path.join(top, "libvirt")
        os.makedirs(os.path.join(self.dir, "sock"))
        conf = os.path.join(self.dir, "libvirtd.conf")
        self.log = os.path.join(self.dir, "libvirtd.log")
        with open(conf, "w") as f:
            f.write(f'unix_sock_dir = "{self.dir}/sock"\n'
                    'unix_sock_rw_perms = "0700"\nauth_unix_rw = "none"\nauth_unix_ro = "none"\n'
                    f'log_outputs = "3:file:{self.log}"\n')
        self.uri = f"qemu:///system?socket={self.dir}/sock/libvirt-sock"
        self.procs = []
        case.addCleanup(self.stop)
        self.procs.append(self.spawn(["/usr/sbin/virtlogd"], "virtlogd.out"))
        wait_until(lambda: os.path.exists("/run/libvirt/virtlogd-sock"), "virtlogd's socket")
        self.procs.append(self.spawn(["/usr/sbin/libvirtd", "-f", conf, "-p",
                                      os.path.join(self.dir, "libvirtd.pid")], "libvirtd.out"))
        wait_until(lambda: self.virsh("version", check=False).returncode == 0,
                   "libvirtd to answer", timeout=120)

    def spawn(self, cmd, out):
        with open(os.path.join(self.dir, out), "w") as f:
            return subprocess.Popen(cmd, stdout=f, stderr=subprocess.STDOUT)

    def virsh(self, *args, check=True):
        return run(["virsh", "-c", self.uri] + list(args), check=check)

    def stop(self):
        for p in reversed(self.procs):
            if p.poll() is None:
                p.terminate()
                try:
                    p.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()


DOMAIN = """<domain type='qemu'>
  <name>{name}</name>
  <memory unit='MiB'>256</memory>
  <vcpu>1</vcpu>
  <os>
    <type arch='x86_64' machine='pc'>hvm</type>
    <kernel>{kernel}</kernel>
    <initrd>{initrd}</initrd>
    <cmdline>{cmdline}</cmdline>
  </os>
  <on_poweroff>destroy</on_poweroff>
  <on_reboot>destroy</on_reboot>
  <on_crash>destroy</on_crash>
  <devices>
    <emulator>/usr/bin/qemu-system-x86_64</emulator>
    <disk type='volume' device='disk'>
      <driver name='qemu' type='raw' cache='none' io='io_uring' discard='unmap'/>
      <source pool='{pool}' volume='disk.raw'/>
      <target dev='vda' bus='virtio'/>
    </disk>
    <serial type='unix'>
      <source mode='bind' path='{console}'/>
      <target port='0'/>
    </serial>
    <memballoon model='none'/>
  </devices>
</domain>
"""


class Libvirt(unittest.TestCase):
    def test_pool_volume_domain_on_the_mount_while_its_disk_migrates(self):
        m = Mount(self, n=2, tmpfs_mb=[256, 384], opts="allow_other")
        # qemu (libvirt-qemu) must reach the kernel, the initramfs and the console
        # socket's folder: the test's temp dir is 0700 by default
        os.chmod(m.top, 0o755)
        kernel_dir = os.path.join(m.top, "boot")
        os.mkdir(kernel_dir)
        kernel = shutil.copy(guest.kernel(), kernel_dir)
        initrd = guest.build_initramfs(kernel_dir)
        cons_dir = os.path.join(m.top, "console")
        os.mkdir(cons_dir)
        qemu_uid = pwd.getpwnam(QEMU_USER).pw_uid
        os.chown(cons_dir, qemu_uid, -1)
        m.start(env={"VDSFS_TEST_HOLD": "copied"})
        c = Ctl(m)
        lv = Libvirtd(self, m.top)
        pool, name = f"vdsfs-it-{os.getpid()}", f"vdsfs-it-{os.getpid()}"
        target = m.path("pool")
        os.mkdir(target)
        # a transient pool: nothing stays in /etc/libvirt/storage
        lv.virsh("pool-create-as", pool, "dir", "--target", target)
        self.addCleanup(lv.virsh, "pool-destroy", pool, check=False)
        lv.virsh("vol-create-as", pool, "disk.raw", f"{DISK_MB}M", "--format", "raw")
        img = os.path.join(target, "disk.raw")
        self.assertEqual(os.stat(img).st_size, DISK_MB << 20)
        self.assertEqual(m.where("pool/disk.raw"), [1], "create=mfs: the larger datastore")
        self.pool_info_is_statvfs(lv, pool, m)

        xml = os.path.join(m.top, "domain.xml")
        console = os.path.join(cons_dir, "serial.sock")
        with open(xml, "w") as f:
            f.write(DOMAIN.format(name=name, kernel=kernel, initrd=initrd, pool=pool,
                                  cmdline=guest.KERNEL_CMDLINE, console=console))
        lv.virsh("define", xml)
        self.addCleanup(lv.virsh, "undefine", name, check=False)
        lv.virsh("start", name)
        self.addCleanup(lv.virsh, "destroy", name, check=False)
        s = socket.socket(socket.AF_UNIX)
        wait_until(lambda: os.path.exists(console), "the domain's console socket")
        s.connect(console)
        self.addCleanup(s.close)
        con = guest.Console(s.makefile("rb"), os.path.join(m.top, "console.log"))
        # qemu runs as libvirt's user; libvirt chowned the disk through the mount
        self.assertEqual(os.stat(img).st_uid, qemu_uid)
        con.wait_passes(1, "the guest's first pass", timeout=600)

        for n, to in enumerate(("ds0", "ds1"), 1):
            mig = subprocess.Popen([VDSCTL, "-s", m.sock, "-m", m.mnt, "migrate", "--wait",
                                    img, "--to", to], stdout=subprocess.PIPE,
                                   stderr=subprocess.STDOUT, text=True)
            self.addCleanup(lambda p=mig: p.poll() is None and p.kill())
            held = c.wait(lambda: [x for x in c.status() if x.get("held_at") == "copied"],
                          f"migration {n} to hold at copied")
            mid = held[0]["id"]
            con.wait_passes(con.passes() + 2, f"two guest passes while migration {n} is held")
            self.assertGreater(c.one(mid)["diff_bytes"], 0)
            c.release()
            out = mig.communicate(timeout=600)[0]
            self.assertEqual(mig.returncode, 0, out)
            self.assertEqual(m.where("pool/disk.raw"), [m.names.index(to)])
            self.assertEqual(os.stat(img).st_uid, qemu_uid, "the owner moved with the file")
            con.wait_passes(con.passes() + 1, f"a guest pass after migration {n}")
            self.assertEqual(con.errors(), [], con.tail())
            self.assertEqual(lv.virsh("domstate", name).stdout.strip(), "running")
        lv.virsh("pool-refresh", pool)
        self.pool_info_is_statvfs(lv, pool, m)
        vol = lv.virsh("vol-info", "--bytes", "--pool", pool, "disk.raw").stdout
        self.assertRegex(vol, rf"Capacity:\s+{DISK_MB << 20} bytes")

        s.sendall(b"stop\n")
        final = con.wait_for(r"guestio: final errors=(\d+)", "the guest's final verify")
        digest = con.wait_for(r"guest: md5 ([0-9a-f]{32})", "the guest's md5 of its disk")
        con.wait_for(r"guest: poweroff", "the guest to finish")
        # The guest's work is done and synced; libvirt runs qemu with -no-shutdown,
        # so end the domain as an admin would rather than wait on the ACPI power-off.
        lv.virsh("destroy", name)
        self.assertEqual(lv.virsh("domstate", name).stdout.strip(), "shut off")
        self.assertEqual(final.group(1), "0", con.tail())
        self.assertEqual(digest.group(1), md5(img))
        self.assertEqual(os.stat(img).st_uid, 0, "libvirt gave the disk back to root")
        self.assertEqual(state_files(m), [])

    def pool_info_is_statvfs(self, lv, pool, m):
        """libvirt's capacity, allocation and available are statvfs of the target:
        f_blocks, f_blocks - f_bfree and f_bfree, in f_frsize units; and those are
        the datastores' tmpfs summed (fs/ops_fs.c)."""
        info = {}
        for line in lv.virsh("pool-info", "--bytes", pool).stdout.splitlines():
            k, _, v = line.partition(":")
            info[k.strip()] = v.strip()
        sv = os.statvfs(m.path("pool"))
        self.assertEqual(int(info["Capacity"].split()[0]), sv.f_blocks * sv.f_frsize)
        self.assertEqual(int(info["Allocation"].split()[0]),
                         (sv.f_blocks - sv.f_bfree) * sv.f_frsize)
        self.assertEqual(int(info["Available"].split()[0]), sv.f_bfree * sv.f_frsize)
        self.assertEqual(sv.f_blocks * sv.f_frsize, (256 + 384) << 20)
        used = sum(os.statvfs(p).f_blocks - os.statvfs(p).f_bfree for p in m.paths)
        self.assertEqual(sv.f_blocks - sv.f_bfree, used)


if __name__ == "__main__":
    main()
