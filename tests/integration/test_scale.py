#!/usr/bin/env python3
"""Sizes real users reach, past bounds vdsfs once had (issue 10): a folder of
5000 files migrated by one request, and more finished migrations than status keeps. Every file is tiny, so each migration costs
what its fixed steps cost (journal records, a copier ring, a thread): about 10 ms
on tmpfs, one after another since all share one datastore pair."""
import os
import unittest

from vdsfs_fixture import Ctl, Mount, main, state_files

FILES = 5000
KEEP = 1000     # MIG_KEEP_FINISHED


class Scale(unittest.TestCase):
    def setUp(self):
        self.m = Mount(self, n=2, tmpfs_mb=[128, 128])

    def make_folder(self, name, count):
        os.makedirs(self.m.backing(0, name))
        for i in range(count):
            with open(self.m.backing(0, f"{name}/f{i:05d}"), "wb") as f:
                f.write(b"%05d" % i)

    def migrate_all(self, name):
        """Migrate folder name to ds1 by one raw request; wait for the last id."""
        c = Ctl(self.m)
        reply = c.request({"cmd": "migrate", "moves": [{"path": name, "to": "ds1"}]})
        self.assertTrue(reply["ok"], reply)
        ids = reply["ids"]
        # One datastore pair: the migrations run one after another, in order.
        c.wait(lambda: c.one(ids[-1])["phase"] in ("done", "failed", "cancelled"),
               "the last migration to end", timeout=1800)
        return c, ids

    def test_folder_of_5000_files_moves_whole(self):
        self.make_folder("many", FILES)
        self.m.start()
        c, ids = self.migrate_all("many")
        self.assertEqual(len(ids), FILES)
        self.assertEqual(len(set(ids)), FILES)
        self.assertEqual(sorted(os.listdir(self.m.backing(1, "many"))),
                         [f"f{i:05d}" for i in range(FILES)])
        self.assertEqual(os.listdir(self.m.backing(0, "many")), [])
        for i in (0, 4095, 4096, FILES - 1):
            with open(self.m.path(f"many/f{i:05d}"), "rb") as f:
                self.assertEqual(f.read(), b"%05d" % i)
        st = c.request({"cmd": "status"})
        self.assertEqual(st["dropped"], FILES - KEEP, st["dropped"])
        self.assertEqual([m["id"] for m in st["migrations"]], ids[-KEEP:])
        self.assertEqual([m for m in st["migrations"] if m["phase"] != "done"], [])
        self.assertEqual(state_files(self.m), [])

    def test_status_keeps_the_last_1000_finished(self):
        """status lists every active migration and the most recent KEEP finished
        ones; older records are freed, and the reply says how many were dropped."""
        self.make_folder("old", 1100)
        self.make_folder("new", 1)
        self.m.start(env={"VDSFS_TEST_HOLD": "copied"})
        c = Ctl(self.m)
        reply = c.request({"cmd": "migrate", "moves": [{"path": "old", "to": "ds1"}]})
        ids = reply["ids"]
        for _ in ids:
            c.release()
        c.wait(lambda: c.one(ids[-1])["phase"] == "done", "the last migration to end",
               timeout=1800)
        held, = c.migrate(self.m.path("new"), "--to", "ds1")    # active: always listed
        c.wait_held(held, "copied")
        st = c.request({"cmd": "status"})
        self.assertEqual((st["dropped"], st["keep_finished"]), (1100 - KEEP, KEEP))
        self.assertEqual([m["id"] for m in st["migrations"]], ids[-KEEP:] + [held])
        self.assertEqual({m["phase"] for m in st["migrations"][:-1]}, {"done"})
        gone = c.request({"cmd": "status", "id": ids[0]})
        self.assertFalse(gone["ok"])
        self.assertIn("most recently finished are kept", gone["error"])
        ev = c.request({"cmd": "events"})
        self.assertEqual(ev["dropped"], 1100 - KEEP)
        self.assertEqual(sorted({e["id"] for e in ev["events"]}), ids[-KEEP:] + [held])
        self.assertEqual(len(ev["events"]), 3 * KEEP + 2)      # queued, started, finished
        self.assertEqual([e["seq"] for e in ev["events"]], sorted(e["seq"] for e in ev["events"]))
        c.release()
        c.wait_phase(held, "done")
        st = c.request({"cmd": "status"})
        self.assertEqual(st["dropped"], 1100 - KEEP + 1)
        self.assertEqual([m["id"] for m in st["migrations"]], ids[-KEEP + 1:] + [held])


if __name__ == "__main__":
    main()
