#!/usr/bin/env python3
"""Metrics as Prometheus reads them: `vdsctl metrics` and the -o metrics= file,
parsed by python3-prometheus-client's text parser (Debian's), checked against what
the test did: the bytes it wrote and read with O_DIRECT (so each byte crosses the
daemon once), its fsyncs, its files, and its migrations: a held one (phase, bytes,
datastores in use) and finished ones (counters, switch pauses). The file is
replaced whole (never a .tmp left, never half a text) and written a last time at
exit."""
import mmap
import os
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from vdsfs_fixture import Ctl, Mount, main  # noqa: E402

try:
    from prometheus_client.parser import text_string_to_metric_families
except ImportError:     # a failure, not a skip: tools/deps.sh test installs it
    sys.exit("it-metrics needs python3-prometheus-client (tools/deps.sh test installs it)")

MiB = 1 << 20


def parse(text):
    """{(sample name, ((label, value), ...)): value}, and {family: type}; the
    parser raises on anything that is not the exposition format."""
    samples, types = {}, {}
    for fam in text_string_to_metric_families(text):
        types[fam.name] = fam.type
        for s in fam.samples:
            key = (s.name, tuple(sorted(s.labels.items())))
            assert key not in samples, f"sample twice: {key}"
            samples[key] = s.value
    return samples, types


def val(samples, name, **labels):
    return samples[(name, tuple(sorted(labels.items())))]


def direct_write(path, chunks, size):
    """chunks writes of size bytes each with O_DIRECT, then one fsync."""
    buf = mmap.mmap(-1, size)
    buf.write(os.urandom(size))
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_DIRECT, 0o644)
    try:
        for i in range(chunks):
            assert os.pwritev(fd, [buf], i * size) == size
        os.fsync(fd)
    finally:
        os.close(fd)


def direct_read(path, size):
    buf = mmap.mmap(-1, size)
    fd = os.open(path, os.O_RDONLY | os.O_DIRECT)
    try:
        total = 0
        while True:
            n = os.preadv(fd, [buf], total)
            if n <= 0:
                return total
            total += n
    finally:
        os.close(fd)


def daemon_pid(m):
    with open(os.path.join(m.paths[0], ".vdsfs", "lock")) as f:
        return int(f.read())


def wait_pid_gone(pid, timeout=120):
    end = time.time() + timeout
    while os.path.exists(f"/proc/{pid}"):
        if time.time() > end:
            raise AssertionError(f"daemon {pid} is still running")
        time.sleep(0.05)


class Metrics(unittest.TestCase):
    def setUp(self):
        self.m = Mount(self, n=2, opts=None)
        self.prom = os.path.join(self.m.top, "vdsfs.prom")
        self.m.opts += f",metrics={self.prom},metrics_interval=0.2"
        self.c = Ctl(self.m)

    def ctl_metrics(self):
        return parse(self.c.run("metrics").stdout)

    def file_metrics(self):
        with open(self.prom) as f:
            return parse(f.read())

    def test_io_counters_and_a_finished_migration(self):
        self.m.start()
        self.assertTrue(os.path.exists(self.prom), "written before the mount is used")
        path = self.m.path("disk.img")
        direct_write(path, 4, MiB)
        self.assertEqual(direct_read(path, MiB), 4 * MiB)
        s, types = self.ctl_metrics()
        for i, ds in enumerate(("ds0", "ds1")):
            [(labels, v)] = [(dict(k[1]), v) for k, v in s.items()
                             if k[0] == "vdsfs_datastore_info" and ("datastore", ds) in k[1]]
            self.assertEqual((labels["path"], v), (self.m.paths[i], 1))
            self.assertTrue(labels["fs"] and labels["fs"] != "?", labels)
        self.assertEqual(val(s, "vdsfs_write_bytes_total", datastore="ds0"), 4 * MiB)
        self.assertEqual(val(s, "vdsfs_read_bytes_total", datastore="ds0"), 4 * MiB)
        self.assertEqual(val(s, "vdsfs_write_bytes_total", datastore="ds1"), 0)
        self.assertGreaterEqual(val(s, "vdsfs_write_duration_seconds_count", datastore="ds0"), 4)
        self.assertEqual(val(s, "vdsfs_write_duration_seconds_bucket", datastore="ds0", le="+Inf"),
                         val(s, "vdsfs_write_duration_seconds_count", datastore="ds0"))
        self.assertGreater(val(s, "vdsfs_write_duration_seconds_sum", datastore="ds0"), 0)
        self.assertEqual(val(s, "vdsfs_flush_duration_seconds_count", datastore="ds0"), 1)
        self.assertEqual(val(s, "vdsfs_write_errors_total", datastore="ds0"), 0)
        self.assertEqual(val(s, "vdsfs_datastore_files", datastore="ds0"), 1)
        self.assertEqual(val(s, "vdsfs_datastore_held_bytes", datastore="ds0"), 4 * MiB)
        st = os.statvfs(self.m.paths[0])
        self.assertEqual(val(s, "vdsfs_datastore_size_bytes", datastore="ds0"), st.f_blocks * st.f_frsize)
        self.assertEqual(types["vdsfs_write_duration_seconds"], "histogram")
        self.assertEqual(types["vdsfs_read_bytes"], "counter")      # the parser drops _total
        self.assertEqual(val(s, "vdsfs_migrations_total", result="done"), 0)

        # Two migrations there and back: two pauses, two done.
        for to in ("ds1", "ds0"):
            self.c.run("migrate", "--wait", path, "--to", to)
        s, _ = self.ctl_metrics()
        self.assertEqual(val(s, "vdsfs_migrations_total", result="done"), 2)
        self.assertEqual(val(s, "vdsfs_migrations_total", result="failed"), 0)
        self.assertEqual(val(s, "vdsfs_migrations_registered_total"), 2)
        self.assertEqual(val(s, "vdsfs_migrations_active"), 0)
        self.assertEqual(val(s, "vdsfs_switch_pause_seconds_count"), 2)
        self.assertGreater(val(s, "vdsfs_switch_pause_seconds_sum"), 0)
        pauses = [json_pause / 1000 for json_pause in
                  (x["pause_ms"] for x in self.c.status() if x["phase"] == "done")]
        self.assertAlmostEqual(val(s, "vdsfs_switch_pause_seconds_sum"), sum(pauses), places=5)
        self.assertFalse([k for k in s if k[0] == "vdsfs_migration_phase"],
                         "finished migrations get no series of their own")

        # The file catches up within a few rounds, and is never half a text.
        end = time.time() + 60
        while True:
            f, _ = self.file_metrics()
            if val(f, "vdsfs_migrations_total", result="done") == 2 or time.time() > end:
                break
            time.sleep(0.1)
        self.assertEqual(val(f, "vdsfs_migrations_total", result="done"), 2)
        self.assertEqual(val(f, "vdsfs_write_bytes_total", datastore="ds0"), 4 * MiB)

        # Written a last time at exit, with the writes of the last moment in it.
        direct_write(self.m.path("late.img"), 1, MiB)
        pid = daemon_pid(self.m)
        self.m.stop()
        wait_pid_gone(pid)
        f, _ = self.file_metrics()
        self.assertEqual(val(f, "vdsfs_write_bytes_total", datastore="ds0"), 5 * MiB)
        self.assertEqual(val(f, "vdsfs_datastore_files", datastore="ds0"), 2)
        self.assertFalse(os.path.exists(self.prom + ".tmp"))

    def test_maintenance_and_a_removed_datastore(self):
        self.m.start()
        s, _ = self.ctl_metrics()
        self.assertEqual(val(s, "vdsfs_datastore_maintenance", datastore="ds1"), 0)
        self.c.run("datastore", "maintenance", "ds1", "on")
        s, _ = self.ctl_metrics()
        self.assertEqual(val(s, "vdsfs_datastore_maintenance", datastore="ds1"), 1)
        self.assertEqual(val(s, "vdsfs_datastore_maintenance", datastore="ds0"), 0)
        self.c.run("datastore", "maintenance", "ds1", "off")
        self.c.run("datastore", "remove", "ds1")
        s, _ = self.ctl_metrics()
        self.assertEqual([k for k in s if ("datastore", "ds1") in k[1]], [],
                         "a removed datastore leaves every family")
        self.assertEqual(val(s, "vdsfs_datastore_maintenance", datastore="ds0"), 0)

    def test_held_migration_phase_and_bytes(self):
        self.m.start(env={"VDSFS_TEST_HOLD": "copied"})
        path = self.m.path("vm/disk.img")
        os.mkdir(self.m.path("vm"))
        direct_write(path, 3, MiB)
        [mid] = self.c.migrate(path, "--to", "ds1")
        self.c.wait_held(mid, "copied")
        s, _ = self.ctl_metrics()
        labels = dict(id=str(mid), path="vm/disk.img", **{"from": "ds0"}, to="ds1")
        phases = {p: val(s, "vdsfs_migration_phase", phase=p, **labels)
                  for p in ("queued", "preparing", "copying", "converging", "switching", "cancelling")}
        self.assertEqual(phases.pop("copying"), 1)
        self.assertEqual(set(phases.values()), {0})
        self.assertEqual(val(s, "vdsfs_migration_copied_bytes", **labels), 3 * MiB)
        self.assertEqual(val(s, "vdsfs_migration_size_bytes", **labels), 3 * MiB)
        self.assertIn(("vdsfs_migration_rate_bytes_per_second", tuple(sorted(labels.items()))), s)
        self.assertEqual(val(s, "vdsfs_migrations_active"), 1)
        self.assertEqual(val(s, "vdsfs_datastore_migrations", datastore="ds0"), 1)
        self.assertEqual(val(s, "vdsfs_datastore_migrations", datastore="ds1"), 1)
        # The same text in the file, a round later.
        end = time.time() + 60
        while time.time() < end:
            f, _ = self.file_metrics()
            # Every phase has its series (0 or 1): wait for copying's to be 1, as a
            # round written while the migration was still preparing has it at 0.
            key = ("vdsfs_migration_phase", tuple(sorted(dict(phase="copying", **labels).items())))
            if f.get(key) == 1:
                break
            time.sleep(0.1)
        self.assertEqual(val(f, "vdsfs_migration_phase", phase="copying", **labels), 1)
        self.c.release()
        self.c.wait_phase(mid, "done")
        s, _ = self.ctl_metrics()
        self.assertEqual(val(s, "vdsfs_migrations_total", result="done"), 1)
        self.assertEqual(val(s, "vdsfs_datastore_files", datastore="ds1"), 1)
        self.assertEqual(val(s, "vdsfs_datastore_files", datastore="ds0"), 0)

    def test_unwritable_path_refused_before_mount(self):
        self.m.opts = self.m.opts.replace(self.prom, "/nonexistent-dir/vdsfs.prom")
        from vdsfs_fixture import VDSFS, mounted, run
        p = run([VDSFS, self.m.spec, self.m.mnt, "-o", self.m.opts], check=False)
        self.assertEqual(p.returncode, 1)
        self.assertIn("metrics=/nonexistent-dir/vdsfs.prom: cannot write", p.stderr)
        self.assertFalse(mounted(self.m.mnt))


if __name__ == "__main__":
    main()
