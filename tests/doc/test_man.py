#!/usr/bin/env python3
"""Each man page against the program it describes.

A page renders through man(1) and groff with no warning, and holds every option and
command that its program's --help prints: the help texts are the oracle, parsed here,
so nothing is listed by hand and a new option without its page fails. A command's
options must be in that command's subsection. The JSON fields that vds-copy --json
and vds-diff info --json really print (run here on temporary files) must be in the
page's JSON OUTPUT section. tests/integration/test_docs.py does the same for vdsctl's
JSON, which needs a running daemon. No root needed."""
import json
import os
import re
import shutil
import subprocess
import tempfile
import unittest

PAGES = dict((os.path.basename(p), p) for p in os.environ.get("MAN_PAGES", "").split(os.pathsep) if p)
PROGRAMS = {"vdsfs.8": os.environ.get("VDSFS", "vdsfs"), "vdsctl.8": os.environ.get("VDSCTL", "vdsctl"),
            "vds-copy.1": os.environ.get("VDS_COPY", "vds-copy"),
            "vds-diff.1": os.environ.get("VDS_DIFF", "vds-diff")}
ENV = dict(os.environ, LC_ALL="C.UTF-8", MANWIDTH="80")

# An option as help texts write them: -x or --long-name, not the middle of a word.
OPTION = re.compile(r"(?<![\w-])(--?[A-Za-z][A-Za-z0-9-]*)")


def run(cmd, check=True, **kw):
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                       env=ENV, **kw)
    if check and p.returncode != 0:
        raise AssertionError(f"{cmd} exited {p.returncode}\n{p.stdout}\n{p.stderr}")
    return p


def render(case, page):
    """The page as man(1) prints it to a pipe; a warning from man or groff fails."""
    p = run(["man", "--warnings", "-l", page])
    case.assertEqual(p.stderr, "", f"man warns about {page}")
    g = run(["groff", "-man", "-ww", "-z", "-Tutf8", page])
    case.assertEqual(g.stderr, "", f"groff warns about {page}")
    case.assertGreater(len(p.stdout.splitlines()), 20, page)
    return p.stdout


def flat(text):
    """Lines joined: a word hyphenated at a line end made whole again (U+2010 is
    groff's hyphenation mark, '-' a break after a real hyphen), space collapsed."""
    text = re.sub(r"\u2010\n\s*", "", text)
    text = re.sub(r"-\n\s*", "-", text)
    return " " + re.sub(r"\s+", " ", text) + " "


def sections(text):
    """{SECTION: {subsection heading ('' before the first): text}} of a rendered page."""
    out, sh, ss = {}, None, ""
    for line in text.splitlines():
        if re.match(r"^[A-Z][A-Z ]+$", line):
            sh, ss = line.strip(), ""
            out[sh] = {"": ""}
        elif sh and re.match(r"^   \S", line):
            ss = line.strip()
            out[sh][ss] = ""
        elif sh:
            out[sh][ss] += line + "\n"
    return out


def subsection(case, secs, sh, first_word):
    """Heading and text of every subsection of section sh whose heading starts with
    first_word, joined."""
    case.assertIn(sh, secs)
    parts = [h + "\n" + t for h, t in secs[sh].items() if h.split(" ")[0] == first_word]
    case.assertTrue(parts, f"no subsection '{first_word}' in {sh}")
    return flat("\n".join(parts))


def has_word(text, word):
    """word in text, not as a part of a longer name ("create=" may be followed by
    its value)."""
    tail = r"(?![\w])" if re.match(r".*\w$", word) else ""
    return re.search(r"(?<![\w-])" + re.escape(word) + tail, text) is not None


def help_of(*cmd):
    p = run(list(cmd) + ["--help"])
    return p.stdout


def commands_block(help_text):
    """{command: the text of its entry} from the 'commands:' block of a help text;
    an entry is the line that names it and the more indented lines after it."""
    lines = help_text.split("commands:\n", 1)[1].split("\n\n", 1)[0].splitlines()
    out, cur = {}, None
    for line in lines:
        m = re.match(r"^  ([a-z][a-z-]*)\b(.*)", line)
        if m:
            cur = m.group(1)
            out[cur] = out.get(cur, "") + m.group(2) + "\n"
        elif cur:
            out[cur] += line + "\n"
    return out


class Pages(unittest.TestCase):
    def test_every_page_is_built(self):
        self.assertEqual(sorted(PAGES), sorted(PROGRAMS))

    def check_options(self, page, help_text, where=None):
        """Every option in help_text is in the page (or in where, a part of it)."""
        text = where if where is not None else flat(render(self, PAGES[page]))
        opts = set(OPTION.findall(help_text))
        self.assertTrue(opts or where is not None, f"no option found in the help for {page}")
        missing = sorted(o for o in opts if not has_word(text, o))
        self.assertEqual(missing, [], f"{page} lacks options its --help prints")
        return opts

    def test_vdsfs(self):
        help_text = help_of(PROGRAMS["vdsfs.8"])
        opts = self.check_options("vdsfs.8", help_text)
        self.assertTrue({"-f", "-d", "-o", "--help", "--version"} <= opts, opts)
        # The -o block: each option line's key, with its literal values (create=mfs|ff|NAME).
        lines = help_text.splitlines()
        start = next(i for i, l in enumerate(lines) if l.strip().startswith("-o "))
        indent = len(lines[start]) - len(lines[start].lstrip())
        keys = set()
        for line in lines[start + 1:]:
            if len(line) - len(line.lstrip()) <= indent:
                break
            first = line.split()[0]
            items = line.strip().split(",") if first.endswith(",") else [first]
            for item in items:
                m = re.fullmatch(r"([a-z][a-z_]*)(=(\S*))?", item.strip())
                if not m:
                    continue
                key = m.group(1) + ("=" if m.group(2) else "")
                keys.add(key)
                keys.update(key + v for v in (m.group(3) or "").split("|") if v.islower())
        self.assertTrue({"create=", "create=mfs", "control=", "control_group=", "threads=",
                         "timeout=", "allow_other"} <= keys, keys)
        mount_opts = flat("\n".join(sections(render(self, PAGES["vdsfs.8"]))["MOUNT OPTIONS"].values()))
        missing = sorted(k for k in keys if not has_word(mount_opts, k))
        self.assertEqual(missing, [], "vdsfs.8's MOUNT OPTIONS lacks what --help lists under -o")

    def test_vdsctl(self):
        help_text = help_of(PROGRAMS["vdsctl.8"])
        self.check_options("vdsctl.8", help_text)
        secs = sections(render(self, PAGES["vdsctl.8"]))
        cmds = commands_block(help_text)
        self.assertTrue({"datastores", "where", "migrate", "status", "cancel", "events"} <= set(cmds))
        for cmd, entry in cmds.items():
            with self.subTest(command=cmd):
                self.check_options("vdsctl.8", entry, subsection(self, secs, "COMMANDS", cmd))

    def test_vds_copy(self):
        opts = self.check_options("vds-copy.1", help_of(PROGRAMS["vds-copy.1"]))
        self.assertTrue({"--parallel", "--bwlimit", "--verify", "--json", "--chunk-size"} <= opts)

    def test_vds_diff(self):
        exe = PROGRAMS["vds-diff.1"]
        help_text = help_of(exe)
        self.check_options("vds-diff.1", help_text)
        secs = sections(render(self, PAGES["vds-diff.1"]))
        cmds = commands_block(help_text)
        self.assertEqual(sorted(cmds), ["check", "create", "info", "merge"])
        for cmd in cmds:
            with self.subTest(command=cmd):
                sub = help_of(exe, cmd)
                self.assertTrue(sub.startswith(f"usage: vds-diff {cmd}"), sub)
                self.check_options("vds-diff.1", sub, subsection(self, secs, "COMMANDS", cmd))


class JsonFields(unittest.TestCase):
    """The fields the tools print, run for real, are each in JSON OUTPUT."""

    def setUp(self):
        self.top = tempfile.mkdtemp(prefix="vds-man-")
        self.addCleanup(shutil.rmtree, self.top, True)

    def json_section(self, page):
        return flat("\n".join(sections(render(self, PAGES[page]))["JSON OUTPUT"].values()))

    def assert_documented(self, page, names):
        text = self.json_section(page)
        missing = sorted(n for n in names if not has_word(text, n))
        self.assertEqual(missing, [], f"{page}'s JSON OUTPUT lacks what the tool prints")

    def test_vds_copy(self):
        exe = PROGRAMS["vds-copy.1"]
        for ds in ("a", "b"):
            os.mkdir(os.path.join(self.top, ds))
        with open(os.path.join(self.top, "a", "f"), "wb") as f:
            f.write(os.urandom(3 << 20))
        spec = [f"A={self.top}/a", f"B={self.top}/b", "A:f=B"]
        events = [json.loads(l) for l in run([exe, "--json"] + spec).stdout.splitlines()]
        # A failed copy adds errno and error.
        p = run([exe, "--json", "--force", "--space-margin", "1000T"] + spec, check=False)
        self.assertEqual(p.returncode, 1, p.stderr)
        events += [json.loads(l) for l in p.stdout.splitlines()]
        kinds = {e["event"] for e in events}
        self.assertTrue({"queued", "started", "finished", "failed"} <= kinds, kinds)
        self.assert_documented("vds-copy.1", {k for e in events for k in e} | kinds)

    def test_vds_diff_info(self):
        exe = PROGRAMS["vds-diff.1"]
        base, diff = os.path.join(self.top, "base"), os.path.join(self.top, "diff")
        with open(base, "wb") as f:
            f.truncate(1 << 20)
        run([exe, "create", "--uuid", "u1", base, diff])
        info = json.loads(run([exe, "info", "--json", diff]).stdout)
        self.assertEqual(info["base_uuid"], "u1")
        self.assert_documented("vds-diff.1", set(info))


if __name__ == "__main__":
    unittest.main(verbosity=2)
