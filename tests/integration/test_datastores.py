#!/usr/bin/env python3
"""Datastore operations on a real mount: evacuate, rebalance, add, remove,
maintenance (README "Datastore operations").

- A datastore holding a VM folder of six disks under fio (crc32c, writers during the
  evacuation and a verify pass after), small files, a symlink, a fifo, an empty
  folder and a hard-linked pair is evacuated onto two others: the plan, the
  scheduler's rule (never two running copies on one datastore, at most four),
  every byte, every piece of metadata, and an empty datastore that is then removed
  while the mount goes on being used.
- A dry run changes nothing; an evacuation that does not fit is refused whole.
- datastore add: the files already in it appear, create=mfs places new files on it,
  every bad input of the mount command line is refused with the mount's own words,
  and the slot bound is a message, not a silent limit.
- Maintenance: new files and migrations go elsewhere or are refused.
- Rebalance: tmpfs datastores from 95% to under 80%.
- kill -9 mid-evacuation: after the remount every file is whole on exactly one
  datastore, and the same evacuate command finishes the job."""
import hashlib
import json
import os
import stat
import subprocess
import tempfile
import unittest

from vdsfs_fixture import VDSFS, VDSCTL, Ctl, Mount, main, mounted, run, state_files, wait_dead
from test_migrate import MB, fio_args, make_file

DISKS = [f"vm/disk{i}" for i in range(1, 7)]


def digest(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(MB), b""):
            h.update(chunk)
    return h.hexdigest()


def meta(path):
    """What users see of a non-folder, its inode number and ctime aside (a moved
    object is a new inode; ctime cannot be set)."""
    st = os.lstat(path)
    out = (stat.S_IFMT(st.st_mode), stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid,
           st.st_nlink, st.st_mtime_ns)
    if stat.S_ISLNK(st.st_mode):
        return out + (os.readlink(path),)
    if stat.S_ISREG(st.st_mode):
        return out + (st.st_size, digest(path))
    return out


def held(m, i):
    """Everything on datastore i but its .vdsfs/."""
    out = []
    for top, dirs, files in os.walk(m.paths[i]):
        if top == m.paths[i]:
            dirs[:] = [d for d in dirs if d != ".vdsfs"]
        out += [os.path.relpath(os.path.join(top, x), m.paths[i]) for x in dirs + files]
    return sorted(out)


class Base(unittest.TestCase):
    def vdsctl(self, *args):
        return run([VDSCTL, "-s", self.m.sock, "-m", self.m.mnt] + list(args), check=False)

    def ok(self, *args):
        p = self.vdsctl(*args)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        return p.stdout

    def refused(self, *args, expect):
        p = self.vdsctl(*args)
        self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
        self.assertIn(expect, p.stderr)
        return p

    def datastores(self):
        return {d["name"]: d for d in json.loads(self.ok("datastores", "--json"))["datastores"]}


class EvacuateVmFolder(Base):
    def setUp(self):
        self.m = Mount(self, n=4, tmpfs_mb=[256, 256, 256, 256])
        b = lambda rel: self.m.backing(0, rel)
        for d in DISKS:
            make_file(b(d), 16)
        for i in range(3):
            make_file(b(f"vm/small{i}"), 0, fill=False)
            with open(b(f"vm/small{i}"), "wb") as f:
                f.write(os.urandom(1000 + i))
        os.chmod(b("vm/small1"), 0o640)
        os.symlink("disk1", b("vm/current"))
        os.mkfifo(b("vm/fifo"), 0o620)
        os.makedirs(b("vm/empty"), 0o750)
        os.makedirs(b("other"))
        with open(b("vm/linked"), "wb") as f:
            f.write(os.urandom(5000))
        os.link(b("vm/linked"), b("other/linked-too"))
        for rel in ("vm/current", "vm/fifo", "vm/small2"):
            os.utime(b(rel), ns=(1_500_000_000_000_000_000, 1_500_000_000_000_000_000),
                     follow_symlinks=False)
        self.m.start()
        self.c = Ctl(self.m)

    def objects(self):
        out = {}
        for top, dirs, files in os.walk(self.m.mnt):
            for x in files + [d for d in dirs if os.path.islink(os.path.join(top, d))]:
                p = os.path.join(top, x)
                out[os.path.relpath(p, self.m.mnt)] = meta(p)
            for d in dirs:
                p = os.path.join(top, d)
                st = os.lstat(p)
                out[os.path.relpath(p, self.m.mnt) + "/"] = (stat.S_IMODE(st.st_mode), st.st_uid)
        return out

    def test_evacuate_onto_two_under_fio_then_remove(self):
        p = self.m.path
        for d in DISKS:     # fio's verify headers on every disk
            run(fio_args(p(d), "16m", ["--rw=write", "--bs=64k"]))
        before = self.objects()
        writers = [subprocess.Popen(fio_args(p(d), "16m", ["--verify_backlog=256"]),
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE)
                   for d in DISKS]
        try:
            rep = json.loads(self.ok("evacuate", "ds0", "--to", "ds1", "--to", "ds2", "--json"))
        finally:
            for w in writers:
                out, err = w.communicate()
                self.assertEqual(w.returncode, 0, out + err)
        plan = {e["path"]: e for e in rep["plan"]}
        group, = [e for e in rep["plan"] if e["type"] == "hardlinks"]
        self.assertIn(group["path"], ("vm/linked", "other/linked-too"))  # the first found
        self.assertEqual(group["links"], 2)
        self.assertEqual(sorted(plan), sorted(DISKS + ["vm/small0", "vm/small1", "vm/small2",
                                                       "vm/current", "vm/fifo", group["path"]]))
        self.assertEqual({plan[d]["to"] for d in DISKS}, {"ds1", "ds2"})   # spread
        self.assertTrue(all(e["to"] in ("ds1", "ds2") and "error" not in e for e in plan.values()))
        self.assertEqual(sum(1 for e in plan.values() if e["type"] == "file"), 9)
        self.assertTrue(self.datastores()["ds0"]["maintenance"])
        with open(p("vm/during"), "wb") as f:    # a file made meanwhile goes elsewhere
            f.write(b"made during the evacuation")
        self.assertEqual(self.m.where("vm/during"), [3])     # the most room, ds0 aside
        os.unlink(p("vm/during"))
        # The same command with --wait follows the migrations and finishes the job.
        out = self.ok("evacuate", "ds0", "--to", "ds1", "--to", "ds2", "--wait")
        self.assertIn("evacuate ds0: done", out)
        self.assertEqual(held(self.m, 0), [])
        self.assertEqual(held(self.m, 3), ["vm"])   # the folder of the file made meanwhile
        for d in DISKS:
            r = run(fio_args(p(d), "16m", ["--verify_only"]), check=False)
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        after = self.objects()
        for k, v in before.items():     # the disks were rewritten by fio: bytes differ
            if k in DISKS:
                self.assertEqual(after[k][:5], v[:5], k)
            else:
                self.assertEqual(after[k], v, k)
        self.assertEqual(sorted(after), sorted(before))
        self.assertEqual(os.stat(p("vm/linked")).st_ino, os.stat(p("other/linked-too")).st_ino)
        self.assertEqual(state_files(self.m), [])
        self.check_scheduler_rule()
        # Empty now: it can go, and the mount goes on.
        self.ok("datastore", "remove", "ds0")
        self.assertEqual(self.ok("datastores", "--names").split(), ["ds1", "ds2", "ds3"])
        self.assertEqual(sorted(os.listdir(self.m.mnt)), ["other", "vm"])
        with open(p("vm/new"), "wb") as f:
            f.write(b"after the removal")
        with open(p("vm/new"), "rb") as f:
            self.assertEqual(f.read(), b"after the removal")
        self.ok("migrate", "--wait", p("vm/disk1") + "=ds3")
        self.assertEqual(self.m.where("vm/disk1"), [3])
        self.refused("migrate", p("vm/disk2") + "=ds0", expect="unknown datastore")

    def check_scheduler_rule(self):
        """No two migrations ran at once on a shared datastore, four at most."""
        ev = self.c.events()
        running, peak = {}, 0
        for e in ev:
            if e["event"] == "started":
                for other in running.values():
                    self.assertFalse({e["from"], e["to"]} & {other["from"], other["to"]},
                                     (e, other))
                running[e["id"]] = e
                peak = max(peak, len(running))
            elif e["event"] in ("finished", "failed", "cancelled"):
                running.pop(e["id"], None)
        self.assertLessEqual(peak, 4)
        self.assertEqual(sum(1 for e in ev if e["event"] == "started"), 9)


class DryRunAndNoRoom(Base):
    def setUp(self):
        self.m = Mount(self, n=3, tmpfs_mb=[100, 64, 64])
        for i in range(3):
            make_file(self.m.backing(0, f"vm/d{i}"), 20)
        os.symlink("d0", self.m.backing(0, "vm/link"))
        self.m.start()
        self.c = Ctl(self.m)

    def unchanged(self):
        self.assertEqual([self.m.where(f"vm/d{i}") for i in range(3)], [[0]] * 3)
        self.assertEqual(self.m.where("vm/link"), [0])
        self.assertEqual(self.c.status(), [])
        self.assertFalse(self.datastores()["ds0"]["maintenance"])

    def test_dry_run_changes_nothing(self):
        out = self.ok("evacuate", "ds0", "--dry-run")
        self.assertIn("dry run", out)
        for i in range(3):
            self.assertIn(f"vm/d{i}", out)
        rep = json.loads(self.ok("evacuate", "ds0", "--dry-run", "--json"))
        self.assertEqual(len(rep["plan"]), 4)
        self.assertTrue(all("id" not in e for e in rep["plan"]))
        self.unchanged()

    def test_no_room_is_refused_whole(self):
        # 60 MiB onto one 64 MiB datastore: past 90%.
        p = self.refused("evacuate", "ds0", "--to", "ds1", expect="does not fit")
        self.assertIn("(no room)", p.stdout)
        self.unchanged()
        p = self.vdsctl("evacuate", "ds0", "--max-fill", "30", "--json")
        self.assertEqual(p.returncode, 1)
        rep = json.loads(p.stdout)
        self.assertFalse(rep["ok"])
        self.assertGreater(rep["shortfall"], 0)
        self.assertTrue(any(e["to"] is None for e in rep["plan"]))
        self.unchanged()
        for bad in (["--max-fill", "0"], ["--max-fill", "101"], ["--max-fill", "x"]):
            self.assertEqual(self.vdsctl("evacuate", "ds0", *bad).returncode, 2)
        self.refused("evacuate", "ds0", "--to", "ds0", expect="being evacuated")
        self.refused("evacuate", "nope", expect="unknown datastore")
        self.unchanged()


class Add(Base):
    def setUp(self):
        self.m = Mount(self, n=2, tmpfs_mb=[32, 32])
        make_file(self.m.backing(0, "vm/disk"), 1)
        self.m.start()
        self.c = Ctl(self.m)
        self.new = os.path.join(self.m.top, "new")
        os.mkdir(self.new)
        run(["mount", "-t", "tmpfs", "-o", "size=128m", "tmpfs", self.new])
        self.addCleanup(run, ["umount", "-l", self.new], check=False)

    def test_add_shows_its_files_and_takes_new_ones(self):
        os.makedirs(os.path.join(self.new, "vm"))
        with open(os.path.join(self.new, "vm", "old"), "wb") as f:
            f.write(b"already there")
        self.ok("datastore", "add", "new=" + self.new)
        self.assertEqual(self.ok("datastores", "--names").split(), ["ds0", "ds1", "new"])
        self.assertEqual(sorted(os.listdir(self.m.path("vm"))), ["disk", "old"])
        with open(self.m.path("vm/old"), "rb") as f:
            self.assertEqual(f.read(), b"already there")
        with open(self.m.path("fresh"), "wb") as f:   # create=mfs: the most room
            f.write(b"x")
        self.assertEqual(self.m.where("fresh"), [])   # not on ds0/ds1 ...
        self.assertTrue(os.path.exists(os.path.join(self.new, "fresh")))
        spec = self.ok("datastores", "--spec").strip()
        self.assertEqual(spec, self.m.spec + ":new=" + self.new)
        self.ok("migrate", "--wait", self.m.path("vm/disk") + "=new")
        self.assertTrue(os.path.exists(os.path.join(self.new, "vm", "disk")))

    def mount_says(self, spec):
        """vdsfs's own refusal of spec, with vdsctl's prefix. Its mountpoint is
        outside every datastore, as the running mount's is."""
        mnt = tempfile.mkdtemp(prefix="vdsfs-it-")
        self.addCleanup(os.rmdir, mnt)
        p = run([VDSFS, spec, mnt], check=False)
        if mounted(mnt):
            run(["fusermount3", "-u", mnt])
        self.assertEqual(p.returncode, 1, p.stderr)
        return p.stderr.strip().replace("vdsfs: ", "vdsctl: ", 1)

    def test_bad_input_refused_as_the_mount_refuses_it(self):
        afile = os.path.join(self.m.top, "afile")
        open(afile, "w").close()
        inside = self.m.backing(0, "vm")
        other = Mount(self, n=1)
        other.start()
        cases = [
            "x=" + os.path.join(self.m.top, "missing"),
            "x=" + afile,
            "x=" + inside,
            "x=" + self.m.paths[1],
            "bad name=" + self.new,
            "ds1=" + self.new,
            "x",
        ]
        for case in cases:
            with self.subTest(case=case):
                p = self.vdsctl("datastore", "add", case)
                self.assertEqual(p.returncode, 1, p.stdout)
                self.assertEqual(p.stderr.strip(), self.mount_says(self.m.spec + ":" + case))
        # Served by another vdsfs: the mount would say it of that datastore alone.
        p = self.vdsctl("datastore", "add", "x=" + other.paths[0])
        self.assertEqual(p.stderr.strip(), self.mount_says("x=" + other.paths[0]))
        self.assertIn("already served by another vdsfs", p.stderr)
        # The mountpoint rule, against this mount's own mountpoint.
        p = self.vdsctl("datastore", "add", "x=" + self.m.path("vm"))
        self.assertEqual(p.returncode, 1)
        self.assertIn("is inside the mountpoint " + self.m.mnt, p.stderr)
        p = self.vdsctl("datastore", "add", "x=" + self.m.top)
        self.assertEqual(p.returncode, 1)
        self.assertIn(f"mountpoint {self.m.mnt} is inside datastore x", p.stderr)
        self.assertEqual(self.ok("datastores", "--names").split(), ["ds0", "ds1"])
        self.assertEqual(os.listdir(self.new), [])   # not even a .vdsfs/ made

    def test_the_slot_bound_is_a_message(self):
        n = 2
        while True:
            d = os.path.join(self.m.top, f"slot{n}")
            os.mkdir(d)
            p = self.vdsctl("datastore", "add", f"s{n}={d}")
            if p.returncode:
                break
            n += 1
            if n % 8 == 0:      # removed ones keep their slot
                self.ok("datastore", "remove", f"s{n - 1}")
        self.assertEqual(n, 64)
        self.assertIn("at most 64 datastore slots", p.stderr)
        self.assertIn("remount", p.stderr)


class Maintenance(Base):
    def setUp(self):
        self.m = Mount(self, n=3, tmpfs_mb=[32, 128, 64])
        make_file(self.m.backing(0, "vm/disk"), 1)
        self.m.start()
        self.c = Ctl(self.m)

    def test_nothing_new_lands_on_it(self):
        self.ok("datastore", "maintenance", "ds1", "on")
        self.assertTrue(self.datastores()["ds1"]["maintenance"])
        self.assertIn("maint", self.ok("datastores").splitlines()[2])
        for i in range(5):
            with open(self.m.path(f"f{i}"), "wb") as f:
                f.write(b"x")
            self.assertEqual(self.m.where(f"f{i}"), [2])   # ds1 has the most room
        os.mkdir(self.m.path("newdir"))
        self.assertEqual(self.m.where("newdir"), [2])
        with open(self.m.path("vm/more"), "wb") as f:
            f.write(b"y")
        self.assertEqual(self.m.where("vm/more"), [2])
        self.refused("migrate", self.m.path("vm/disk") + "=ds1", expect="is in maintenance")
        self.assertEqual(self.m.where("vm/disk"), [0])
        with open(self.m.path("vm/disk"), "rb") as f:   # what is on it is still served
            self.assertEqual(len(f.read()), MB)
        self.ok("datastore", "maintenance", "ds1", "off")
        self.assertFalse(self.datastores()["ds1"]["maintenance"])
        with open(self.m.path("g"), "wb") as f:
            f.write(b"x")
        self.assertEqual(self.m.where("g"), [1])
        self.refused("datastore", "maintenance", "nope", "on", expect="unknown datastore")
        self.assertEqual(self.vdsctl("datastore", "maintenance", "ds1", "maybe").returncode, 2)
        self.refused("datastore", "remove", "ds1", expect="run 'vdsctl evacuate ds1' first")


class Rebalance(Base):
    def setUp(self):
        self.m = Mount(self, n=3, tmpfs_mb=[40, 40, 40])
        # 95% of 40 MiB: 38 MiB
        sizes = {"vm/a": 16, "vm/b": 8, "vm/c": 8, "vm/d": 2, "vm/e": 2, "vm/f": 2}
        for rel, mb in sizes.items():
            make_file(self.m.backing(0, rel), mb)
        self.sums = {rel: digest(self.m.backing(0, rel)) for rel in sizes}
        self.m.start()
        self.c = Ctl(self.m)

    def fill(self, name):
        d = self.datastores()[name]
        return (d["size"] - d["free"]) / d["size"]

    def test_from_95_to_under_80(self):
        self.assertGreaterEqual(self.fill("ds0"), 0.94)
        out = self.ok("rebalance", "--dry-run")
        self.assertIn("dry run", out)
        self.assertEqual(self.c.status(), [])
        self.assertGreaterEqual(self.fill("ds0"), 0.94)
        rep = json.loads(self.ok("rebalance", "--threshold", "80", "--json", "--wait"))
        self.assertEqual(rep["still_over"], 0)
        self.assertTrue(rep["plan"])
        self.assertTrue(all(m["phase"] == "done" for m in rep["migrations"]), rep)
        for name in ("ds0", "ds1", "ds2"):
            self.assertLess(self.fill(name), 0.80, name)
        for rel, s in self.sums.items():
            self.assertEqual(digest(self.m.path(rel)), s, rel)
            self.assertEqual(len(self.m.where(rel)), 1, rel)
        moved = sum(e["bytes"] for e in rep["plan"])
        self.assertLessEqual(moved, 8 * MB + 64 * 1024)     # one 8 MiB file is enough
        self.assertIn("0 migrations", self.ok("rebalance"))     # nothing left to do


class CancelEvacuation(Base):
    def test_cancel_stops_queued_and_running_moves(self):
        self.m = Mount(self, n=3)
        for i in range(3):
            make_file(self.m.backing(0, f"vm/d{i}"), 4)
        sums = {f"vm/d{i}": digest(self.m.backing(0, f"vm/d{i}")) for i in range(3)}
        self.m.start(env={"VDSFS_TEST_HOLD": "copied"})
        self.c = Ctl(self.m)
        rep = json.loads(self.ok("evacuate", "ds0", "--json"))
        ids = [e["id"] for e in rep["plan"]]
        self.c.wait(lambda: any(self.c.one(i).get("held_at") == "copied" for i in ids), "a hold")
        self.assertIn("3 migrations cancelled", self.ok("evacuate", "ds0", "--cancel"))
        self.c.release()
        self.c.wait(lambda: all(self.c.one(i)["phase"] in ("done", "failed", "cancelled")
                                for i in ids), "the cancels")
        self.assertEqual({self.c.one(i)["phase"] for i in ids}, {"cancelled"})
        for rel, s in sums.items():
            self.assertEqual(self.m.where(rel), [0], rel)
            self.assertEqual(digest(self.m.path(rel)), s, rel)
        self.assertEqual(state_files(self.m), [])
        self.assertTrue(self.datastores()["ds0"]["maintenance"])   # stays: say so, not undo


class CrashMidEvacuation(Base):
    def test_kill_9_then_evacuate_again(self):
        self.m = Mount(self, n=3)
        for i in range(4):
            make_file(self.m.backing(0, f"vm/d{i}"), 8)
        os.symlink("d0", self.m.backing(0, "vm/link"))
        os.mkfifo(self.m.backing(0, "vm/fifo"))
        sums = {f"vm/d{i}": digest(self.m.backing(0, f"vm/d{i}")) for i in range(4)}
        # The first migration holds once copied (the evacuate request has long
        # answered), then the daemon kills itself (SIGKILL) just before its flip.
        self.m.start(env={"VDSFS_TEST_HOLD": "copied", "VDSFS_TEST_CRASH": "before-flip"})
        self.c = Ctl(self.m)
        rep = json.loads(self.ok("evacuate", "ds0", "--json"))
        ids = [e["id"] for e in rep["plan"] if "id" in e]
        self.assertEqual(len(ids), 4)
        self.c.wait(lambda: any(self.c.one(i).get("held_at") == "copied" for i in ids),
                    "a migration to hold")
        self.c.release()
        wait_dead(self.m)
        run(["fusermount3", "-uz", self.m.mnt], check=False)
        self.m.start()
        for rel, s in sums.items():
            self.assertEqual(len(self.m.where(rel)), 1, rel)
            self.assertEqual(digest(self.m.path(rel)), s, rel)
        for rel in ("vm/link", "vm/fifo"):
            self.assertEqual(len(self.m.where(rel)), 1, rel)
        self.assertFalse(self.datastores()["ds0"]["maintenance"])   # not persisted
        self.c.wait(lambda: all(m["phase"] in ("done", "failed", "cancelled")
                                for m in self.c.status()), "recovery to end")
        out = self.ok("evacuate", "ds0", "--wait")
        self.assertIn("evacuate ds0: done", out)
        self.assertIn("all: 3 of 3 ended", out)    # progress as a whole, besides each file's
        self.assertEqual(held(self.m, 0), [])
        for rel, s in sums.items():
            self.assertEqual(digest(self.m.path(rel)), s, rel)
        self.assertEqual(os.readlink(self.m.path("vm/link")), "d0")
        self.assertEqual(state_files(self.m), [])


if __name__ == "__main__":
    main()
