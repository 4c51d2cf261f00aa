#!/usr/bin/env python3
"""Datastores on network filesystems (issue 16, point 5): a GlusterFS volume (single
brick, loopback) and an sshfs mount (a loopback sshd) next to a local tmpfs, all
started and torn down by each test itself (netfs.py).

- placement: create=mfs, create=ff and create=NAME put new files where they say,
  and the bytes are on the network filesystem's server side;
- df: the mount's statvfs is the sum over the datastores' filesystems, each counted
  once (two datastores share the GlusterFS volume), the oracle being statvfs itself;
- a disk migrated local -> network -> local under fio verify=crc32c;
- a crash (VDSFS_TEST_CRASH) mid-migration to each network datastore, rolled back
  or rolled forward by the next mount as fs/MIGRATION.md says;
- the network datastore going away mid-migration (the gluster volume stopped, the
  ssh server killed): the migration fails and rolls back, the local source serves
  on, nothing written is lost;
- what each filesystem offers a datastore (fsprobe.py), checked against the table
  in README.md.
"""
import os
import unittest

import fsprobe
from netfs import Gluster, Sshfs, tmpfs, unmount
from test_crash import crash_mid_migration
from test_migrate import MB, fio_args, make_file, qemu_io
from vdsfs_fixture import Ctl, Mount, main, run, state_files

HERE = os.path.dirname(os.path.abspath(__file__))
README = os.path.join(HERE, "..", "..", "README.md")
# Sizes differ so that create=mfs has one answer and each filesystem's share of df
# is its own: gluster's brick 512 MiB, sshfs's remote 384 MiB, local 256 MiB.
LOCAL_MB, GLUSTER_MB, SSHFS_MB = 256, 512, 384


class NetMount:
    """A vdsfs mount over local (tmpfs), gluster and sshfs datastores, plus a second
    datastore "gluster2" on the same GlusterFS volume."""

    NAMES = ["local", "gluster", "sshfs", "gluster2"]

    def __init__(self, case, opts=None, hold=None, crash=None, names=None):
        self.case = case
        names = names or self.NAMES
        m = Mount(case, names=names, opts=opts)
        self.m = m
        tmpfs(case, m.paths[0], LOCAL_MB)
        gl_mnt, ss_mnt = os.path.join(m.top, "gluster-mnt"), os.path.join(m.top, "sshfs-mnt")
        self.gluster = Gluster(case, m.top, gl_mnt, GLUSTER_MB) if "gluster" in names else None
        self.sshfs = Sshfs(case, m.top, ss_mnt, SSHFS_MB) if "sshfs" in names else None
        where = {"local": m.paths[0], "gluster": os.path.join(gl_mnt, "vds-a"),
                 "gluster2": os.path.join(gl_mnt, "vds-b"), "sshfs": os.path.join(ss_mnt, "vds")}
        # the datastores of the network filesystems live in folders on their mounts
        m.paths = [where[n] for n in names]
        for p in m.paths:
            os.makedirs(p, exist_ok=True)
        m.spec = ":".join(f"{n}={p}" for n, p in zip(names, m.paths))
        self.env = {k: v for k, v in (("VDSFS_TEST_HOLD", hold), ("VDSFS_TEST_CRASH", crash)) if v}

    def start(self):
        self.m.start(env=self.env)
        self.c = Ctl(self.m)
        return self

    def ds(self, name):
        return self.m.names.index(name)

    def server_side(self, name, rel):
        """rel as the server of a network datastore holds it (brick, remote dir)."""
        if name.startswith("gluster"):
            sub = "vds-a" if name == "gluster" else "vds-b"
            return os.path.join(self.gluster.brick, sub, rel)
        if name == "sshfs":
            return os.path.join(self.sshfs.remote, "vds", rel)
        return self.m.backing(self.ds(name), rel)


def expected_statfs(paths):
    """What vdsfs's statfs should answer, from statvfs of each datastore: every
    filesystem (st_dev) once, in 4 KiB blocks, as fs/ops_fs.c sums them."""
    seen, out = set(), dict(blocks=0, bfree=0, bavail=0, files=0, ffree=0)
    for p in paths:
        dev = os.stat(p).st_dev
        if dev in seen:
            continue
        seen.add(dev)
        sv = os.statvfs(p)
        out["blocks"] += sv.f_blocks * sv.f_frsize // 4096
        out["bfree"] += sv.f_bfree * sv.f_frsize // 4096
        out["bavail"] += sv.f_bavail * sv.f_frsize // 4096
        out["files"] += sv.f_files
        out["ffree"] += sv.f_ffree
    return out, len(seen)


def statfs_of(path):
    sv = os.statvfs(path)
    k = sv.f_frsize / 4096
    return dict(blocks=int(sv.f_blocks * k), bfree=int(sv.f_bfree * k),
                bavail=int(sv.f_bavail * k), files=sv.f_files, ffree=sv.f_ffree)


class Placement(unittest.TestCase):
    def test_create_policies_and_df(self):
        n = NetMount(self).start()
        m = n.m
        # create=mfs (the default): the datastore with the most free space, the
        # GlusterFS volume; its two datastores share it, the first one takes it
        with open(m.path("mfs.bin"), "wb") as f:
            f.write(b"\x61" * MB)
        self.assertEqual(m.where("mfs.bin"), [n.ds("gluster")])
        with open(n.server_side("gluster", "mfs.bin"), "rb") as f:
            self.assertEqual(f.read(), b"\x61" * MB)

        # df: each filesystem once (3 of 4 datastores), the sum of their statvfs
        want, filesystems = expected_statfs(m.paths)
        self.assertEqual(filesystems, 3)
        self.assertEqual(statfs_of(m.mnt), want)
        self.assertEqual(want["blocks"], (LOCAL_MB + GLUSTER_MB + SSHFS_MB) * 256,
                         "each tmpfs behind a datastore counts once, whole")
        df = run(["df", "-B4096", "--output=size,avail", m.mnt]).stdout.split()
        self.assertEqual([int(x) for x in df[-2:]], [want["blocks"], want["bavail"]])

        # create=NAME and create=ff, each on a new mount of the same datastores
        for opt, name in (("create=sshfs", "sshfs"), ("create=gluster2", "gluster2"),
                          ("create=ff", "local")):
            m.stop()
            m.opts = ",".join(o for o in (f"control={m.sock}", opt))
            m.start()
            rel = f"vm-{name}/disk.raw"
            os.mkdir(m.path(f"vm-{name}"))
            run(["qemu-img", "create", "-f", "raw", m.path(rel), "16M"])
            qemu_io(m.path(rel), "write -P 0x3c 1M 64k", "flush")
            self.assertEqual(m.where(rel), [n.ds(name)], opt)
            with open(n.server_side(name, rel), "rb") as f:
                f.seek(MB)
                self.assertEqual(f.read(65536), b"\x3c" * 65536, opt)
        self.assertEqual(m.where("mfs.bin"), [n.ds("gluster")])
        want, _ = expected_statfs(m.paths)
        self.assertEqual(statfs_of(m.mnt), want)


class Migrate(unittest.TestCase):
    """local -> network -> local, held at "copied" while fio writes the whole disk
    with crc32c headers, then fio verifies every block after each switch."""

    def move(self, n, img, rel, to, fio_dir):
        mid, = n.c.migrate(img, "--to", to)
        n.c.wait_held(mid, "copied")
        w = run(fio_args(img, "32m", ["--verify_backlog=256"]), check=False, cwd=fio_dir)
        self.assertEqual(w.returncode, 0, w.stdout + w.stderr)
        self.assertGreater(n.c.one(mid)["diff_bytes"], 0)
        n.c.release()
        st = n.c.wait_phase(mid, "done", "failed", "cancelled")
        self.assertEqual(st["phase"], "done", st)
        self.assertEqual(n.m.where(rel), [n.ds(to)])
        v = run(fio_args(img, "32m", ["--verify_only"]), check=False, cwd=fio_dir)
        self.assertEqual(v.returncode, 0, v.stdout + v.stderr)

    def roundtrip(self, net):
        n = NetMount(self, hold="copied", names=["local", net]).start()
        rel = "vm/disk"
        make_file(n.m.backing(0, rel), 32)
        img = n.m.path(rel)
        run(fio_args(img, "32m", ["--rw=write", "--bs=64k"]), cwd=n.m.top)
        self.move(n, img, rel, net, n.m.top)
        # on the server: the file, whole, and fio's blocks verify through the mount
        self.assertEqual(os.path.getsize(n.server_side(net, rel)), 32 * MB)
        self.move(n, img, rel, "local", n.m.top)
        self.assertEqual(state_files(n.m), [])

    def test_gluster_roundtrip_under_fio_verify(self):
        self.roundtrip("gluster")

    def test_sshfs_roundtrip_under_fio_verify(self):
        self.roundtrip("sshfs")


class Crash(unittest.TestCase):
    """The daemon dies mid-migration to a network datastore: the next mount resumes
    a converging migration and ends it on the network datastore, and rolls forward
    one that had flipped; every flushed write (qemu-io, fio O_DSYNC) reads back."""

    def crash(self, net, point, outcome):
        n = NetMount(self, hold="copied", crash=point, names=["local", net])
        make_file(n.m.backing(0, "vm/disk"), 32)
        n.start()
        crash_mid_migration(self, n.m, net, "copied", outcome)
        self.assertEqual(n.m.where("vm/disk"), [n.ds(net if outcome == "done" else "local")])
        self.assertEqual(state_files(n.m), [])

    def test_gluster_crash_mid_converge_resumes(self):
        self.crash("gluster", "mid-converge", "done")

    def test_gluster_crash_after_flip_rolls_forward(self):
        self.crash("gluster", "after-flip", "done")

    def test_sshfs_crash_mid_converge_resumes(self):
        self.crash("sshfs", "mid-converge", "done")

    def test_sshfs_crash_after_flip_rolls_forward(self):
        self.crash("sshfs", "after-flip", "done")


class Gone(unittest.TestCase):
    """The network datastore goes away while a migration to it is held at "copied":
    the migration fails and rolls back, the local source keeps serving, and nothing
    written before, during or after is lost (a reference image gets every write)."""

    def gone(self, net, kill):
        n = NetMount(self, hold="copied", names=["local", net])
        make_file(n.m.backing(0, "vm/disk"), 32)
        n.start()
        m, c, img = n.m, n.c, n.m.path("vm/disk")
        ref = os.path.join(m.top, "ref.raw")
        run(["cp", m.backing(0, "vm/disk"), ref])

        def write(*cmds):
            for target in (img, ref):
                qemu_io(target, *cmds, "flush")

        write("write -P 0x71 0 1M")
        mid, = c.migrate(img, "--to", net)
        c.wait_held(mid, "copied")
        write("write -P 0x72 4M 1M")
        kill(n)
        write("write -P 0x73 8M 1M")            # the source still takes writes
        c.release()
        st = c.wait_phase(mid, "done", "failed", "cancelled")
        self.assertEqual(st["phase"], "failed", st)
        self.assertEqual(m.where("vm/disk"), [0])
        self.assertFalse(os.path.exists(m.backing(0, f".vdsfs/mig-{mid}.diff")),
                         "rolled back: the differencing file is merged and gone")
        write("write -P 0x74 12M 1M")
        qemu_io(img, "read -P 0x71 0 1M", "read -P 0x72 4M 1M", "read -P 0x73 8M 1M",
                "read -P 0x74 12M 1M")
        run(["qemu-img", "compare", "-f", "raw", "-F", "raw", img, ref])
        print(f"{net} gone: {st['error']}", flush=True)
        self.n, self.mid, self.ref = n, mid, ref
        return st

    def leftovers(self, net):
        """The failed migration's files: its journal on local, its copy on net."""
        n = self.n
        copy = n.server_side(net, f".vdsfs/mig-{self.mid}.copy")
        return state_files(n.m)[:1] + ([copy] if os.path.exists(copy) else [])

    def remount_recovers(self, net):
        """The next mount, with the datastore back, removes what the failure left."""
        n = self.n
        n.m.stop()
        n.m.start()
        st = n.c.one(self.mid)
        self.assertTrue(st["recovered"], st)
        self.assertEqual(self.leftovers(net), [])
        self.assertEqual(n.m.where("vm/disk"), [0])
        run(["qemu-img", "compare", "-f", "raw", "-F", "raw", n.m.path("vm/disk"), self.ref])
        # and the disk moves there now
        mid, = n.c.migrate(n.m.path("vm/disk"), "--to", net)     # no hold point now
        st = n.c.wait_phase(mid, "done", "failed", "cancelled")
        self.assertEqual(st["phase"], "done", st)
        self.assertEqual(n.m.where("vm/disk"), [1])
        run(["qemu-img", "compare", "-f", "raw", "-F", "raw", n.m.path("vm/disk"), self.ref])

    def test_gluster_volume_stopped_mid_migration(self):
        """The GlusterFS client reconnects by itself once the volume is back: the
        failed migration's cleanup, retried with backoff, then removes its journal
        and the copy without a remount."""
        self.gone("gluster", lambda n: n.gluster.stop_volume())
        self.assertNotEqual(self.leftovers("gluster"), [])
        self.n.gluster.start_volume()
        self.n.c.wait(lambda: self.leftovers("gluster") == [],
                      "the failed migration's journal and copy to be removed", timeout=120)
        self.n.m.stop()
        self.n.m.start()
        self.assertEqual(self.n.m.where("vm/disk"), [0])
        run(["qemu-img", "compare", "-f", "raw", "-F", "raw", self.n.m.path("vm/disk"), self.ref])

    def test_sshfs_server_killed_mid_migration(self):
        self.gone("sshfs", lambda n: n.sshfs.kill_server())
        # sshfs does not come back by itself: a new server, a new sshfs mount
        self.n.m.stop()
        self.n.sshfs.restart()
        self.remount_recovers("sshfs")


def readme_limits():
    """The README's table of filesystems tested as datastores: {column: {row: cell}}."""
    with open(README) as f:
        text = f.read()
    sec = text.split("## Filesystems tested as datastores", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in sec.splitlines() if line.startswith("|")]
    cols = [c.strip() for c in rows[0].strip("|").split("|")]
    out = {c: {} for c in cols[1:]}
    for line in rows[2:]:
        cells = [c.strip() for c in line.strip("|").split("|")]
        for c, v in zip(cols[1:], cells[1:]):
            out[c][cells[0]] = v
    return out


class Limits(unittest.TestCase):
    """fsprobe.py on each filesystem, and on vdsfs over it alone, must give what the
    README's table says (a changed limit makes this fail: update the table)."""

    def test_probed_limits_match_readme(self):
        n = NetMount(self, names=["local", "gluster", "sshfs"])
        ext4 = os.path.join(n.m.top, "ext4")
        img = os.path.join(n.m.top, "ext4.img")
        os.mkdir(ext4)
        run(["truncate", "-s", "128M", img])
        run(["mkfs.ext4", "-q", img])
        run(["mount", "-o", "loop", img, ext4])
        self.addCleanup(unmount, ext4)
        probed = {"ext4": fsprobe.probe(ext4), "tmpfs": fsprobe.probe(n.m.paths[0]),
                  "GlusterFS": fsprobe.probe(n.m.paths[1]), "sshfs": fsprobe.probe(n.m.paths[2])}
        # vdsfs over each alone: what a file on that datastore gets through the mount
        for name, path in (("ext4", ext4), ("GlusterFS", n.m.paths[1]), ("sshfs", n.m.paths[2])):
            v = Mount(self, names=["one"])
            v.paths, v.spec = [path], f"one={path}"
            v.start()
            probed[f"vdsfs on {name}"] = fsprobe.probe(v.mnt)
            v.stop()
        print(fsprobe.table(probed), flush=True)
        readme = readme_limits()
        self.assertEqual(sorted(probed), sorted(readme))
        for fs, rows in probed.items():
            for row, got in rows.items():
                want = readme[fs][row]
                if row == "rename over a file" and want.startswith("not atomic"):
                    # a race: a run may miss the anomaly, never show a new one
                    seen = set(got.split(": a reader saw ")[-1].split(", "))
                    if got == "yes" or seen <= set(want.split(": a reader saw ")[1].split(", ")):
                        continue
                self.assertEqual(got, want, f"{fs}, {row}: README.md says {want!r}")


if __name__ == "__main__":
    main()
