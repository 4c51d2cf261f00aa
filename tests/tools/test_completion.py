#!/usr/bin/env python3
"""vdsctl's bash completion, driven as bash drives it: a line is split into
COMP_WORDS the way readline splits it (at blanks, '=' and ':'), _vdsctl is called
with COMP_CWORD and the current word, and COMPREPLY is read back. No terminal.

Options and commands expected are parsed from vdsctl --help, so the completion
has to follow the program. Paths are completed inside a plain directory given as
-m, since vdsctl's path rule needs only the mountpoint; datastore names and
migration ids need a daemon: tests/integration/test_completion.py."""
import os
import re
import shutil
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "doc"))
from test_man import OPTION, commands_block  # noqa: E402

VDSCTL = os.environ.get("VDSCTL", "vdsctl")
SCRIPT = os.environ["VDSCTL_COMPLETION"]
BREAKS = "=:"


def comp_words(line):
    """COMP_WORDS, COMP_CWORD and the current word of line (cursor at its end) as
    bash makes them: '=' and ':' are words of their own, and after one of them the
    word being completed is empty."""
    words = []
    for w in line.split():
        words += [t for t in re.split(f"([{BREAKS}])", w) if t]
    if not line or line[-1].isspace():
        words.append("")
    cur = "" if words[-1] in BREAKS else words[-1]
    return words, len(words) - 1, cur


def complete(line, cwd="/", exe=VDSCTL, script=SCRIPT, setup=""):
    """(sorted COMPREPLY, compopt arguments, stderr) for line, vdsctl being exe.
    compopt only works in a completion bash runs itself: here it is a function
    that logs its arguments."""
    words, cword, cur = comp_words(line)
    words[0] = exe
    with tempfile.NamedTemporaryFile("r", prefix="compopt-") as log:
        prog = (f"{setup}\nsource {sh(script)}\n"
                f"compopt() {{ printf '%s\\n' \"$*\" >> {sh(log.name)}; }}\n"
                f"COMP_WORDS=({' '.join(sh(w) for w in words)}); COMP_CWORD={cword}\n"
                f"COMP_LINE={sh(line)}; COMP_POINT={len(line)}\n"
                f"_vdsctl vdsctl {sh(cur)} {sh(words[cword - 1])}\n"
                "printf '%s\\n' \"${COMPREPLY[@]}\"\n")
        p = subprocess.run(["bash", "--norc", "--noprofile", "-c", prog], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True, cwd=cwd)
        opts = log.read().splitlines()
    if p.returncode:
        raise AssertionError(f"bash exited {p.returncode} on {line!r}: {p.stderr}")
    return sorted(l for l in p.stdout.splitlines() if l), opts, p.stderr


def sh(s):
    return "'" + s.replace("'", "'\\''") + "'"


def help_text():
    return subprocess.run([VDSCTL, "--help"], stdout=subprocess.PIPE, text=True, check=True).stdout


class Words(unittest.TestCase):
    def test_split_as_bash_does(self):
        self.assertEqual(comp_words("vdsctl -m /x migrate a=b"),
                         (["vdsctl", "-m", "/x", "migrate", "a", "=", "b"], 6, "b"))
        self.assertEqual(comp_words("vdsctl migrate a="), (["vdsctl", "migrate", "a", "="], 3, ""))
        self.assertEqual(comp_words("vdsctl "), (["vdsctl", ""], 1, ""))


class OptionsAndCommands(unittest.TestCase):
    def setUp(self):
        self.help = help_text()
        self.commands = commands_block(self.help)

    def test_global_options(self):
        # The option column of the lines that list vdsctl's own options.
        table = [re.split(r"\s{2,}", l.strip())[0] for l in self.help.split("commands:")[0].splitlines()
                 if l.startswith("  -")]
        want = set(OPTION.findall("\n".join(table)))
        self.assertTrue({"-m", "--mount", "-s", "--socket", "--help", "--version"} <= want, want)
        got, _, err = complete("vdsctl -")
        self.assertEqual((sorted(got), err), (sorted(want), ""))
        got, _, _ = complete("vdsctl --m")
        self.assertEqual(got, ["--mount"])

    def test_commands(self):
        for line in ("vdsctl ", "vdsctl -m /srv/x ", "vdsctl --socket=/run/x.sock ",
                     "vdsctl -s /x -m /y "):
            got, _, err = complete(line)
            self.assertEqual((sorted(got), err), (sorted(self.commands), ""), line)
        self.assertEqual(complete("vdsctl -s /x mi")[0], ["migrate"])
        self.assertEqual(complete("vdsctl -s /x d")[0], ["datastores"])

    def test_each_commands_options(self):
        for cmd, entry in self.commands.items():
            with self.subTest(command=cmd):
                got, _, err = complete(f"vdsctl -s /nonexistent {cmd} -")
                self.assertEqual((sorted(got), err), (sorted(set(OPTION.findall(entry))), ""))
        self.assertEqual(complete("vdsctl -s /x migrate --sp")[0], ["--space-margin"])

    def test_nothing_after_help_or_a_value_option(self):
        self.assertEqual(complete("vdsctl --help ")[0], [])
        self.assertEqual(complete("vdsctl -s /x migrate --bwlimit ")[0], [])
        self.assertEqual(complete("vdsctl -s /x cancel 3 ")[0], [])


class Paths(unittest.TestCase):
    """Paths by vdsctl's rule, in a directory standing in for the mount."""

    def setUp(self):
        self.top = tempfile.mkdtemp(prefix="vdsctl-comp-")
        self.addCleanup(shutil.rmtree, self.top, True)
        self.root = os.path.join(self.top, "mnt")
        for d in ("vm1", "vm2"):
            os.makedirs(os.path.join(self.root, d))
        for f in ("vm1/disk1.raw", "vm1/disk2.raw", "iso.img", "my disk.raw"):
            open(os.path.join(self.root, f), "w").close()

    def test_from_outside_the_mount_paths_are_from_its_root(self):
        got, opts, _ = complete(f"vdsctl -m {self.root} where v")
        self.assertEqual((got, opts), (["vm1/", "vm2/"], ["-o nospace"]))
        got, opts, _ = complete(f"vdsctl -m {self.root} where vm1/d")
        self.assertEqual((got, opts), (["vm1/disk1.raw", "vm1/disk2.raw"], []))
        self.assertEqual(complete(f"vdsctl --mount={self.root} where i")[0], ["iso.img"])
        self.assertEqual(complete(f"vdsctl -m {self.root} where my")[0], ["my\\ disk.raw"])

    def test_inside_the_mount_paths_are_from_the_current_directory(self):
        got, _, _ = complete(f"vdsctl -m {self.root} where d", cwd=os.path.join(self.root, "vm1"))
        self.assertEqual(got, ["disk1.raw", "disk2.raw"])
        got, _, _ = complete(f"vdsctl -m {self.root} where vm", cwd=self.root)
        self.assertEqual(got, ["vm1/", "vm2/"])

    def test_absolute_paths(self):
        got, _, _ = complete(f"vdsctl -m {self.root} where {self.root}/vm1/disk1")
        self.assertEqual(got, [f"{self.root}/vm1/disk1.raw"])

    def test_migrate_leaves_room_for_a_destination(self):
        got, opts, _ = complete(f"vdsctl -m {self.root} migrate --wait vm1/disk2")
        self.assertEqual((got, opts), (["vm1/disk2.raw"], ["-o nospace"]))

    def test_no_mount_no_paths(self):
        self.assertEqual(complete("vdsctl -s /nonexistent where v", cwd=self.root)[0], [])

    def test_mountpoint_and_socket_arguments(self):
        got, opts, _ = complete("vdsctl -m v", cwd=self.root)
        self.assertEqual((got, opts), (["vm1", "vm2"], ["-o filenames"]))
        got, _, _ = complete("vdsctl --socket i", cwd=self.root)
        self.assertEqual(got, ["iso.img"])


class NoDaemon(unittest.TestCase):
    """Without a daemon to ask, names and ids complete to nothing, silently."""

    def test_quiet_and_empty(self):
        for line in ("vdsctl -s /nonexistent migrate --to ", "vdsctl -s /nonexistent migrate a=",
                     "vdsctl -s /nonexistent status ", "vdsctl -s /nonexistent cancel ",
                     "vdsctl migrate --to "):
            self.assertEqual(complete(line)[::2], ([], ""), line)


if __name__ == "__main__":
    unittest.main(verbosity=2)
