#!/usr/bin/env python3
"""The I/O path: backing reads and writes are asynchronous, so more of them are in
flight on the backing file than there are worker threads, on each transport.

The daemon counts (fs/fuse/aio.c): the most backing ops in flight at once, written
at exit to VDSFS_TEST_IO_STATS with the transport in use (test builds only). The
completion thread holds its first completion until THREADS + 1 ops are in flight
(VDSFS_TEST_AIO_GATHER), so the count, not the speed of the disk, decides: with one
backing op per worker at a time it could never get past THREADS.
"""
import os
import time
import unittest

from vdsfs_fixture import Mount, main, run, uring_param

THREADS = 4
DEPTH = 32


class InFlight(unittest.TestCase):
    def run_fio(self, m, rw):
        path = m.path("disk")
        p = run(["fio", "--name=q", f"--filename={path}", "--size=16m", "--direct=1",
                 "--ioengine=io_uring", f"--rw={rw}", "--bs=4k", f"--iodepth={DEPTH}",
                 "--number_ios=2048", "--norandommap", "--output-format=terse"],
                check=False)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)

    def stats_after(self, m, stats):
        m.stop()
        for _ in range(200):    # the daemon writes them on its way out
            if os.path.exists(stats):
                break
            time.sleep(0.05)
        with open(stats) as f:
            return dict(line.split() for line in f)

    def in_flight(self, transport):
        m = Mount(self, n=2, opts=f"threads={THREADS},io_uring={transport}")
        stats = os.path.join(m.top, "io-stats")
        m.start(env={"VDSFS_TEST_IO_STATS": stats,
                     "VDSFS_TEST_AIO_GATHER": str(THREADS + 1)})
        with open(m.path("disk"), "wb") as f:
            f.truncate(16 << 20)
        self.run_fio(m, "randread")
        self.run_fio(m, "randwrite")
        s = self.stats_after(m, stats)
        self.assertEqual(s["transport"], "io_uring" if transport == "on" else "dev")
        self.assertGreater(int(s["max_inflight"]), THREADS, s)

    def test_dev_fuse(self):
        self.in_flight("off")

    def test_fuse_over_io_uring(self):
        old = uring_param("Y")
        if old is None:
            self.skipTest("this kernel has no FUSE over io_uring")
        self.addCleanup(uring_param, old)
        self.in_flight("on")


if __name__ == "__main__":
    main()
