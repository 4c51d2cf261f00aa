#!/usr/bin/env python3
"""Sizes real users reach, past bounds vdsfs once had (issue 10): a folder of
5000 files migrated by one request. Every file is tiny, so each migration costs
what its fixed steps cost (journal records, a copier ring, a thread): about 10 ms
on tmpfs, one after another since all share one datastore pair."""
import os
import unittest

from vdsfs_fixture import Ctl, Mount, main, state_files

FILES = 5000


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
        self.assertEqual([s for s in c.status() if s["phase"] != "done"], [])
        self.assertEqual(state_files(self.m), [])


if __name__ == "__main__":
    main()
