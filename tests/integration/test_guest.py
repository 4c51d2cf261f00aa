#!/usr/bin/env python3
"""A real guest on the mount (issue 16, point 4): qemu-system-x86_64 boots Debian's
kernel with a busybox initramfs built here (guest.py); its disk is a raw file on the
mount opened as the users open theirs, cache=none,aio=io_uring on virtio-blk. In the
guest, guestio (guestio.c) writes stamped patterns with O_DIRECT, zeroes ranges,
flushes and verifies the whole disk pass after pass, reporting on the serial console.
Meanwhile the host moves the disk to the other datastore and back, four times, with
`vdsctl migrate --wait`.

Each migration is held at "copied" (VDSFS_TEST_HOLD) until the guest has completed
a whole pass with the overlay on, so every migration really carries guest writes in
its differencing file into the converge and the switch; nothing depends on timing.
The guest must report zero errors in every pass and in a last verify, and the md5
of /dev/vda as the guest reads it must be the md5 of the file as the host reads it.
"""
import hashlib
import os
import subprocess
import unittest

import guest
from vdsfs_fixture import VDSCTL, Ctl, Mount, main, run, state_files

DISK_MB = 64
MIGRATIONS = ("ds1", "ds0", "ds1", "ds0")
BOOT_TIMEOUT = 600      # TCG on two busy cores: the kernel alone takes a while


def md5(path):
    h = hashlib.md5()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


class Qemu:
    """qemu-system-x86_64 with the guest kernel and initramfs and one virtio-blk disk;
    killed by the test's cleanup whatever happens."""

    def __init__(self, case, workdir, kernel, initramfs, disk):
        cmd = ["qemu-system-x86_64", "-nodefaults", "-no-user-config",
               "-machine", f"pc,accel={guest.accel()}", "-m", "256", "-smp", "1",
               "-display", "none", "-no-reboot",
               "-kernel", kernel, "-initrd", initramfs, "-append", guest.KERNEL_CMDLINE,
               "-chardev", "stdio,id=con,signal=off", "-serial", "chardev:con",
               "-drive", f"file={disk},format=raw,if=none,id=disk0,cache=none,"
                         "aio=io_uring,discard=unmap",
               "-device", "virtio-blk-pci,drive=disk0"]
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT)
        case.addCleanup(self.kill)
        self.console = guest.Console(self.proc.stdout, os.path.join(workdir, "console.log"))

    def send(self, line):
        self.proc.stdin.write(line.encode() + b"\n")
        self.proc.stdin.flush()

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()


class Guest(unittest.TestCase):
    def test_guest_disk_migrates_back_and_forth_without_errors(self):
        m = Mount(self, n=2)
        kernel = guest.kernel()
        initramfs = guest.build_initramfs(m.top)
        m.start(env={"VDSFS_TEST_HOLD": "copied"})
        c = Ctl(m)
        os.mkdir(m.path("vm"))
        img = m.path("vm/disk.raw")
        run(["qemu-img", "create", "-f", "raw", img, f"{DISK_MB}M"])
        self.assertEqual(m.where("vm/disk.raw"), [0])

        vm = Qemu(self, m.top, kernel, initramfs, img)
        con = vm.console
        con.wait_for(r"guest: up, vda has %d sectors" % (DISK_MB * 2048), "the guest to boot",
                     BOOT_TIMEOUT)
        con.wait_passes(1, "the guest's first pass")

        for n, to in enumerate(MIGRATIONS, 1):
            log = open(os.path.join(m.top, f"migrate-{n}.log"), "w+")
            self.addCleanup(log.close)
            mig = subprocess.Popen([VDSCTL, "-s", m.sock, "-m", m.mnt, "migrate", "--wait",
                                    img, "--to", to], stdout=log, stderr=subprocess.STDOUT)
            self.addCleanup(lambda p=mig: p.poll() is None and p.kill())
            held = c.wait(lambda: [s for s in c.status() if s.get("held_at") == "copied"],
                          f"migration {n} to hold at copied")
            mid = held[0]["id"]
            # A whole pass begun and ended with the overlay on: writes, zeroes, a
            # flush and a full verify all went through the differencing file.
            first = con.passes() + 1
            con.wait_passes(first + 1, f"two guest passes while migration {n} is held")
            self.assertGreater(c.one(mid)["diff_bytes"], 0, c.one(mid))
            c.release()
            rc = mig.wait(timeout=600)
            log.seek(0)
            self.assertEqual(rc, 0, f"vdsctl migrate --wait: {log.read()}")
            st = c.one(mid)
            self.assertEqual(st["phase"], "done", st)
            self.assertEqual(m.where("vm/disk.raw"), [m.names.index(to)])
            print(f"migration {n} to {to}: {st['diff_bytes']} differencing bytes, "
                  f"pause {st.get('pause_ms')} ms, guest at pass {con.passes()}", flush=True)
            # the guest goes on, verified, on the new datastore
            con.wait_passes(con.passes() + 1, f"a guest pass after migration {n}")
            self.assertEqual(con.errors(), [], con.tail())

        vm.send("stop")
        final = con.wait_for(r"guestio: final errors=(\d+)", "the guest's final verify")
        digest = con.wait_for(r"guest: md5 ([0-9a-f]{32})", "the guest's md5 of its disk")
        self.assertEqual(vm.proc.wait(timeout=300), 0, con.tail())
        self.assertEqual(con.errors(), [], con.tail())
        self.assertEqual(final.group(1), "0", con.tail())
        self.assertEqual(digest.group(1), md5(img))
        self.assertEqual(os.stat(img).st_size, DISK_MB << 20)
        self.assertEqual(m.where("vm/disk.raw"), [0])
        self.assertEqual([s["phase"] for s in c.status()], ["done"] * len(MIGRATIONS))
        self.assertEqual(state_files(m), [])

    def test_guest_check_detects_stale_and_misplaced_sectors(self):
        # Guard: the comparison the guest makes can fail (guestio.c, --self-test).
        m = Mount(self, n=1).start()
        exe = guest.build_guestio(os.path.join(m.top, "guestio"))
        disk = m.path("selftest.raw")
        run(["qemu-img", "create", "-f", "raw", disk, "4M"])
        p = run([exe, "--self-test", disk], check=False)
        self.assertEqual(p.returncode, 0, p.stdout)
        self.assertIn("self-test found 2 errors", p.stdout)
        self.assertEqual(len([x for x in p.stdout.splitlines() if "ERROR" in x]), 2, p.stdout)


if __name__ == "__main__":
    main()
