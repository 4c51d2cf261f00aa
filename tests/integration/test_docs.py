#!/usr/bin/env python3
"""vdsctl(8) documents every field that vdsctl's JSON output really carries: a real
mount, a migration parked at a test hold point and then let finish, and every
--json command run against it. Each key (and each phase and event name seen) must
be in the page's JSON OUTPUT section, under that command's subsection, so a field
added to the daemon without its line in the page fails here. The page rendering
and the --help checks are tests/doc/test_man.py's, shared from there."""
import json
import os
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "doc"))
from test_man import PAGES, flat, has_word, render, sections  # noqa: E402

from vdsfs_fixture import VDSCTL, Ctl, Mount, main, run  # noqa: E402

FILES = ["vm/a.raw", "vm/b.raw"]


def keys(obj, out=None):
    """Every key of obj and of the objects nested in it."""
    out = set() if out is None else out
    if isinstance(obj, dict):
        for k, v in obj.items():
            out.add(k)
            keys(v, out)
    elif isinstance(obj, list):
        for v in obj:
            keys(v, out)
    return out


class JsonFields(unittest.TestCase):
    def setUp(self):
        if "vdsctl.8" not in PAGES:
            self.skipTest("built without man pages (-Dman=disabled)")
        self.m = Mount(self, names=["fast", "bulk"])
        for rel in FILES:
            os.makedirs(os.path.dirname(self.m.backing(0, rel)), exist_ok=True)
            with open(self.m.backing(0, rel), "wb") as f:
                f.write(os.urandom(1 << 20))
        self.m.start(env={"VDSFS_TEST_HOLD": "copied"})
        self.c = Ctl(self.m)
        self.secs = sections(render(self, PAGES["vdsctl.8"]))["JSON OUTPUT"]

    def documented(self, command, names):
        text = flat("\n".join(t for h, t in self.secs.items() if h.split(" ")[0] == command))
        self.assertTrue(text.strip(), f"no subsection '{command}' in JSON OUTPUT")
        missing = sorted(n for n in names if not has_word(text, n))
        self.assertEqual(missing, [], f"vdsctl(8) JSON OUTPUT '{command}' lacks fields vdsctl prints")

    def test_every_field_is_documented(self):
        mid, = self.c.migrate("vm/a.raw=bulk")
        self.c.wait_held(mid, "copied")
        held = self.c.one(mid)
        # -s alone: the daemon answers for a path that names nothing (vdsctl with -m
        # would refuse it first), so the error entry is there too.
        where = json.loads(run([VDSCTL, "-s", self.m.sock, "where", "--json", "vm/a.raw",
                                "vm/b.raw", "vm", "nope"], check=False).stdout)
        self.assertEqual([("error" in e, e.get("migration")) for e in where["where"]],
                         [(False, mid), (False, None), (False, None), (True, None)])
        self.documented("where", keys(where) | {e["type"] for e in where["where"] if "type" in e})
        ds = self.c.json("datastores", "--json")
        self.assertEqual([d["name"] for d in ds["datastores"]], ["fast", "bulk"])
        self.documented("datastores", keys(ds))
        self.c.release()
        done = self.c.wait_phase(mid, "done", "failed", "cancelled")
        self.assertEqual(done["phase"], "done")
        status = self.c.status()
        self.documented("status", keys(status) | keys(held) | {held["phase"], done["phase"]})
        self.assertIn("held_at", held)
        events = self.c.json("events")
        self.assertEqual([e["event"] for e in events["events"]], ["queued", "started", "finished"])
        self.documented("events", keys(events) | {e["event"] for e in events["events"]})


if __name__ == "__main__":
    main()
