#!/usr/bin/env python3
"""`meson install --destdir` into a temporary folder, as any user: the programs, the
four man pages and vdsctl's bash completion land where the system looks for them.
`man -M` then finds each page by name, as `man vdsfs` does after a real install,
and bash-completion's own loader, pointed at the folder through XDG_DATA_DIRS,
loads the installed completion for vdsctl and completes with it."""
import json
import os
import shutil
import subprocess
import tempfile
import unittest

BUILD = os.environ["BUILD_ROOT"]
MESON = os.environ.get("MESON", "meson")
BASH_COMPLETION = "/usr/share/bash-completion/bash_completion"
PAGES = {"vdsfs": "8", "vdsctl": "8", "vds-copy": "1", "vds-diff": "1"}


def run(cmd, **kw):
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)
    if p.returncode:
        raise AssertionError(f"{cmd} exited {p.returncode}\n{p.stdout}\n{p.stderr}")
    return p


class Install(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dest = tempfile.mkdtemp(prefix="vdsfs-install-")
        run([MESON, "install", "-C", BUILD, "--no-rebuild", "--quiet", "--destdir", cls.dest])
        opts = json.loads(run([MESON, "introspect", BUILD, "--buildoptions"]).stdout)
        o = {x["name"]: x["value"] for x in opts}
        root = cls.dest + o["prefix"]
        cls.dirs = {k: os.path.join(root, o[k]) for k in ("bindir", "sbindir", "mandir", "datadir")}

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.dest, ignore_errors=True)

    def test_programs(self):
        version = os.environ["VDS_VERSION"]
        for d, prog in (("sbindir", "vdsfs"), ("bindir", "vdsctl"), ("bindir", "vds-copy"),
                        ("bindir", "vds-diff")):
            exe = os.path.join(self.dirs[d], prog)
            self.assertTrue(os.access(exe, os.X_OK), exe)
            self.assertTrue(run([exe, "--version"]).stdout.startswith(f"{prog} {version}"), prog)

    def test_man_finds_each_page_by_name(self):
        for name, section in PAGES.items():
            page = os.path.join(self.dirs["mandir"], f"man{section}", f"{name}.{section}")
            self.assertTrue(os.path.isfile(page), page)
            p = run(["man", "-M", self.dirs["mandir"], name],
                    env=dict(os.environ, LC_ALL="C.UTF-8", MANWIDTH="80"))
            self.assertIn(f"{name}({section})", p.stdout.splitlines()[0])
            self.assertIn("NAME", p.stdout)

    def test_bash_completion_loads_the_installed_completion(self):
        comp = os.path.join(self.dirs["datadir"], "bash-completion", "completions", "vdsctl")
        self.assertTrue(os.path.isfile(comp), comp)
        if not os.path.exists(BASH_COMPLETION):
            self.skipTest("bash-completion is not installed")
        # Sourcing bash_completion registers its loader; completing vdsctl the first
        # time makes it look for completions/vdsctl under XDG_DATA_DIRS.
        prog = (f"source {BASH_COMPLETION}\n"
                "__load_completion vdsctl || exit 3\n"
                "complete -p vdsctl\n"
                "shopt -s extdebug; declare -F _vdsctl\n"
                "COMP_WORDS=(vdsctl mig); COMP_CWORD=1; _vdsctl vdsctl mig vdsctl\n"
                "printf 'reply %s\\n' \"${COMPREPLY[@]}\"\n")
        p = run(["bash", "--norc", "--noprofile", "-c", prog],
                env=dict(os.environ, XDG_DATA_DIRS=self.dirs["datadir"],
                         BASH_COMPLETION_USER_DIR=os.path.join(self.dest, "none")))
        lines = p.stdout.splitlines()
        self.assertEqual(lines[0], "complete -F _vdsctl vdsctl")
        self.assertTrue(lines[1].endswith(comp), lines[1])     # "_vdsctl LINE FILE"
        self.assertEqual(lines[2:], ["reply migrate"])


if __name__ == "__main__":
    unittest.main(verbosity=2)
