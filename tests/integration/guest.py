"""A real guest for the VM tests (test_guest.py, test_libvirt.py): Debian's kernel,
a busybox initramfs this module builds, and guestio.c as the guest's only program.

The kernel is the one tools/deps.sh unpacks from linux-image-amd64's .deb into
/var/cache/vdsfs/guest-kernel (VDSFS_GUEST_KERNEL_DIR): vmlinuz and the virtio and
block drivers, nothing installed into the host. The initramfs holds busybox-static,
the driver modules virtio-blk needs (in dependency order, read from each module's
.modinfo), guestio built with `gcc -static`, and an /init that loads them, runs
guestio on /dev/vda, prints the disk's md5 and powers off. Everything the guest says
comes out of its first serial port; Console collects it line by line.
"""
import glob
import os
import re
import shutil
import subprocess
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
KERNEL_DIR = os.environ.get("VDSFS_GUEST_KERNEL_DIR", "/var/cache/vdsfs/guest-kernel")
BUSYBOX = "/bin/busybox"
# What /dev/vda needs on Debian's kernel, which builds these as modules.
WANTED_MODULES = ("virtio_pci", "virtio_blk")

INIT = """#!/bin/busybox sh
/bin/busybox mkdir -p /proc /sys /dev /tmp
/bin/busybox --install -s /bin
export PATH=/bin
mount -t devtmpfs devtmpfs /dev
mount -t proc proc /proc
mount -t sysfs sysfs /sys
for m in $(cat /modules); do insmod /lib/modules/$m || echo "guest: insmod $m failed"; done
i=0
while [ ! -b /dev/vda ] && [ $i -lt 300 ]; do sleep 0.1; i=$((i + 1)); done
echo "guest: up, vda has $(cat /sys/block/vda/size 2>/dev/null) sectors"
/guestio /dev/vda
echo "guest: guestio exited $?"
sync
echo "guest: md5 $(md5sum /dev/vda | cut -d' ' -f1)"
echo "guest: poweroff"
poweroff -f
"""


def kernel():
    """The guest's vmlinuz, with a message naming deps.sh when it is missing."""
    found = sorted(glob.glob(os.path.join(KERNEL_DIR, "vmlinuz-*")))
    if not found:
        raise AssertionError(f"no guest kernel in {KERNEL_DIR}: tools/deps.sh test unpacks it")
    return found[-1]


def module_depends(path):
    """The modules a .ko needs, from its .modinfo "depends=" string."""
    with open(path, "rb") as f:
        m = re.search(rb"(?:^|\0)depends=([^\0]*)\0", f.read())
    return [d for d in (m.group(1).decode().split(",") if m else []) if d]


def module_order():
    """The .ko files of WANTED_MODULES and what they depend on, each after its
    dependencies: [(name, path)]."""
    ver = os.path.basename(kernel())[len("vmlinuz-"):]
    paths = {}
    for p in glob.glob(os.path.join(KERNEL_DIR, "lib/modules", ver, "**/*.ko"), recursive=True):
        paths[os.path.basename(p)[:-3].replace("-", "_")] = p
    order = []

    def visit(name):
        name = name.replace("-", "_")
        if name in (n for n, _ in order):
            return
        if name not in paths:
            raise AssertionError(f"guest module {name} is not in {KERNEL_DIR}")
        for dep in module_depends(paths[name]):
            visit(dep)
        order.append((name, paths[name]))

    for name in WANTED_MODULES:
        visit(name)
    return order


def build_guestio(out):
    """guestio.c as a static binary at out."""
    p = subprocess.run(["gcc", "-static", "-O2", "-Wall", "-o", out,
                        os.path.join(HERE, "guestio.c")],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if p.returncode:
        raise AssertionError(f"gcc -static guestio.c failed:\n{p.stdout}")
    return out


def build_initramfs(workdir):
    """A gzipped newc cpio at workdir/initramfs.gz: busybox, modules, guestio, /init."""
    root = os.path.join(workdir, "initramfs")
    for d in ("bin", "dev", "lib/modules", "proc", "sys"):
        os.makedirs(os.path.join(root, d))
    shutil.copy(BUSYBOX, os.path.join(root, "bin/busybox"))
    build_guestio(os.path.join(root, "guestio"))
    names = []
    for name, path in module_order():
        shutil.copy(path, os.path.join(root, "lib/modules", name + ".ko"))
        names.append(name + ".ko")
    with open(os.path.join(root, "modules"), "w") as f:
        f.write("\n".join(names) + "\n")
    with open(os.path.join(root, "init"), "w") as f:
        f.write(INIT)
    os.chmod(os.path.join(root, "init"), 0o755)
    # The kernel opens /dev/console for init before init runs: it must be there.
    os.mknod(os.path.join(root, "dev/console"), 0o600 | 0o020000, os.makedev(5, 1))
    out = os.path.join(workdir, "initramfs.gz")
    files = subprocess.run(["find", "."], cwd=root, stdout=subprocess.PIPE, check=True).stdout
    with open(out, "wb") as f:
        cpio = subprocess.Popen(["cpio", "-o", "-H", "newc", "--quiet"], cwd=root,
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        gz = subprocess.Popen(["gzip", "-1"], stdin=cpio.stdout, stdout=f)
        cpio.stdout.close()
        cpio.communicate(files)
        if cpio.wait() or gz.wait():
            raise AssertionError("building the initramfs failed")
    return out


def accel():
    """kvm where the machine has it, else TCG (software emulation)."""
    return "kvm" if os.access("/dev/kvm", os.R_OK | os.W_OK) else "tcg"


KERNEL_CMDLINE = "console=ttyS0 rdinit=/init panic=-1 loglevel=4"


class Console:
    """Lines a guest prints, read from a stream by a thread; also kept in a log file.
    wait_for() is bounded and fails with the console's tail."""

    def __init__(self, stream, log_path):
        self.lines = []
        self.cond = threading.Condition()
        self.closed = False
        self.log_path = log_path
        self.thread = threading.Thread(target=self._read, args=(stream,), daemon=True)
        self.thread.start()

    def _read(self, stream):
        with open(self.log_path, "a") as log:
            for raw in iter(stream.readline, b""):
                line = raw.decode(errors="replace").rstrip("\r\n")
                log.write(line + "\n")
                log.flush()
                with self.cond:
                    self.lines.append(line)
                    self.cond.notify_all()
        with self.cond:
            self.closed = True
            self.cond.notify_all()

    def tail(self, n=40):
        with self.cond:
            return "\n".join(self.lines[-n:])

    def find(self, pattern):
        rx = re.compile(pattern)
        with self.cond:
            return [m for m in (rx.search(line) for line in self.lines) if m]

    def wait_for(self, pattern, what, timeout=600, start=0):
        """The first match of pattern in a line from index start on."""
        rx = re.compile(pattern)
        end = time.time() + timeout
        with self.cond:
            while True:
                for line in self.lines[start:]:
                    m = rx.search(line)
                    if m:
                        return m
                if self.closed:
                    raise AssertionError(f"the guest's console closed before {what}:\n"
                                         f"{self.tail()}")
                left = end - time.time()
                if left <= 0:
                    raise AssertionError(f"gave up waiting for {what}:\n{self.tail()}")
                self.cond.wait(min(left, 1))

    def passes(self):
        """The guest's last completed pass number (0 before the first)."""
        done = self.find(r"guestio: pass (\d+) ")
        return int(done[-1].group(1)) if done else 0

    def wait_passes(self, n, what, timeout=600):
        self.wait_for(r"guestio: pass %d " % n, what, timeout)

    def errors(self):
        return [m.string for m in self.find(r"guestio: ERROR")]
