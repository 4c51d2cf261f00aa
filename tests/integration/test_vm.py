#!/usr/bin/env python3
"""The mount as a VM storage path: qemu-img and qemu-io with cache=none (O_DIRECT) and
io_uring, and fio direct I/O with crc32c verification on three engines."""
import errno
import mmap
import os
import unittest

from vdsfs_fixture import Mount, main, run

FIO_SIZE = "64m"


class VmStorage(unittest.TestCase):
    def setUp(self):
        self.m = Mount(self, n=3).start()
        os.makedirs(self.m.path("vm1"))

    def test_qemu_img_create_raw_and_qcow2(self):
        for fmt in ("raw", "qcow2"):
            img = self.m.path(f"vm1/disk.{fmt}")
            run(["qemu-img", "create", "-f", fmt, img, "256M"])
            info = run(["qemu-img", "info", img]).stdout
            self.assertIn(f"file format: {fmt}", info)
            self.assertIn("virtual size: 256 MiB", info)
        run(["qemu-img", "check", self.m.path("vm1/disk.qcow2")])

    def qemu_io(self, img, fmt, cmds):
        args = ["qemu-io", "-f", fmt, "-t", "none", "-i", "io_uring"]
        for c in cmds:
            args += ["-c", c]
        out = run(args + [img])
        self.assertNotIn("Pattern verification failed", out.stdout + out.stderr)
        return out.stdout

    def test_qemu_io_patterns_raw_and_qcow2(self):
        for fmt in ("raw", "qcow2"):
            img = self.m.path(f"vm1/p.{fmt}")
            run(["qemu-img", "create", "-f", fmt, img, "128M"])
            self.qemu_io(img, fmt, ["write -P 0xa5 0 4M", "write -P 0x5a 10M 64k",
                                    "write -P 0x33 100M 1M", "flush"])
            out = self.qemu_io(img, fmt, ["read -P 0xa5 0 4M", "read -P 0x5a 10M 64k",
                                          "read -P 0x33 100M 1M", "read -P 0 20M 1M"])
            self.assertEqual(out.count("read "), 4)
            if fmt == "qcow2":
                run(["qemu-img", "check", img])

    def test_qemu_io_wrong_pattern_is_detected(self):
        # Guard: the pattern check above really compares data.
        img = self.m.path("vm1/g.raw")
        run(["qemu-img", "create", "-f", "raw", img, "8M"])
        self.qemu_io(img, "raw", ["write -P 0x11 0 1M"])
        p = run(["qemu-io", "-f", "raw", "-t", "none", "-c", "read -P 0x22 0 1M", img], check=False)
        self.assertIn("Pattern verification failed", p.stdout + p.stderr)

    def fio(self, engine, rw, bs, extra=()):
        args = ["fio", "--name=t", f"--filename={self.m.path('vm1/fio-' + engine)}",
                f"--size={FIO_SIZE}", "--direct=1", f"--ioengine={engine}", f"--rw={rw}",
                f"--bs={bs}", "--iodepth=16", "--verify=crc32c", "--do_verify=1",
                "--verify_fatal=1", "--exitall_on_error=1", "--verify_state_save=0",
                "--output-format=terse"]
        p = run(args + list(extra), check=False)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertNotIn("verify", p.stderr.lower())

    def test_fio_io_uring_verify(self):
        self.fio("io_uring", "randwrite", "4k")
        self.fio("io_uring", "write", "1m")

    def test_fio_libaio_verify(self):
        self.fio("libaio", "randwrite", "16k")

    def test_fio_psync_verify(self):
        self.fio("psync", "randwrite", "8k", ["--numjobs=1"])

    def daemon_fd_flags(self, backing):
        """open(2) flags of the daemon's fds on a backing file."""
        pids = run(["pgrep", "-f", f"vdsfs {self.m.spec}"]).stdout.split()
        out = []
        for pid in pids:
            for fd in os.listdir(f"/proc/{pid}/fd"):
                try:
                    if os.readlink(f"/proc/{pid}/fd/{fd}") == backing:
                        info = open(f"/proc/{pid}/fdinfo/{fd}").read()
                        flags = int(info.split("flags:")[1].split()[0], 8)
                        if not flags & 0o10000000:  # O_PATH: the node's handle
                            out.append(flags)
                except OSError:
                    pass
        return out

    def test_o_direct_keeps_its_meaning(self):
        path = self.m.path("vm1/direct")
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_DIRECT, 0o644)
        try:
            buf = mmap.mmap(-1, 8192)  # page-aligned
            buf.write(b"\x42" * 8192)
            self.assertEqual(os.pwritev(fd, [buf], 4096), 8192)
            # An unaligned O_DIRECT access to written data is refused, as on ext4.
            with self.assertRaises(OSError) as cm:
                os.pread(fd, 100, 4099)
            self.assertEqual(cm.exception.errno, errno.EINVAL)
            rd = mmap.mmap(-1, 8192)
            self.assertEqual(os.preadv(fd, [rd], 4096), 8192)
            self.assertEqual(rd[:], b"\x42" * 8192)
            backing = self.m.backing(self.m.where("vm1/direct")[0], "vm1/direct")
            flags = self.daemon_fd_flags(backing)
            self.assertTrue(flags and all(f & os.O_DIRECT for f in flags), flags)
        finally:
            os.close(fd)
        # A buffered open of the same file gets a buffered backing fd.
        fd = os.open(path, os.O_RDONLY)
        try:
            flags = self.daemon_fd_flags(backing)
            self.assertTrue(any(not f & os.O_DIRECT for f in flags), flags)
        finally:
            os.close(fd)

if __name__ == "__main__":
    main()
