#!/usr/bin/env python3
"""fs-bench: the same fio jobs on a datastore directory itself, on vdsfs over it and on
mergerfs over it, side by side in one run, on a tmpfs backing and an ext4 backing.

Jobs (direct=1, io_uring, one 1 GiB file): 1M sequential write and read at iodepth 16,
4k random read and write at iodepth 32, the same at iodepth 1 (one request at a time:
pure per-request latency), and 4k random read and write from 4 jobs at iodepth 8 each
(concurrency; fio's group_reporting sums their IOPS and merges their latencies).
Targets run interleaved (job by job, run by run) so machine noise hits them alike; each
cell is the median of --runs runs. Prints MiB/s, IOPS, p50 and p99 completion latency
for every row and the ratios vdsfs/native and vdsfs/mergerfs.
A target that fails a job (mergerfs 2.33 refuses O_DIRECT writes with EINVAL) is
shown as FAIL with its error, not dropped.

Usage: tools/bench/fs-bench.py [--runtime S] [--runs N] [--size 1g] [--backing tmpfs,ext4]
       [--build DIR | --vdsfs PATH] [--jobs seqwrite,seqread,...] [--vdsfs-opts O]
       [--variant NAME=OPTS ...]
  --build (or VDSFS_BUILD): the build directory whose fs/vdsfs is measured, default
  build/ of this tree; --jobs: any of the job names in the table's first column.
  --variant (repeatable): measure several vdsfs mounts side by side, each with its own
  -o options (say io_uring=off vs io_uring=on, async_io=off), each a row of the
  table; without it there is one, "vdsfs", with --vdsfs-opts. A variant with
  io_uring=on turns /sys/module/fuse/parameters/enable_uring on for the run and puts
  it back after.
Needs root, fio, mergerfs (tools/deps.sh bench installs them).
"""
import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

JOBS = {
    "seqwrite": dict(rw="write", bs="1M", iodepth=16),
    "seqread": dict(rw="read", bs="1M", iodepth=16),
    "randread": dict(rw="randread", bs="4k", iodepth=32),
    "randwrite": dict(rw="randwrite", bs="4k", iodepth=32),
    "randread-qd1": dict(rw="randread", bs="4k", iodepth=1),
    "randwrite-qd1": dict(rw="randwrite", bs="4k", iodepth=1),
    "randread-4x8": dict(rw="randread", bs="4k", iodepth=8, numjobs=4),
    "randwrite-4x8": dict(rw="randwrite", bs="4k", iodepth=8, numjobs=4),
}


def sh(cmd, check=True):
    return subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, check=check)


def is_mounted(path):
    with open("/proc/self/mountinfo") as f:
        return any(line.split()[4] == path for line in f)


def wait_mounted(path):
    for _ in range(200):
        if is_mounted(path):
            return
        time.sleep(0.05)
    raise RuntimeError(f"{path} did not mount")


def unmount(path):
    if is_mounted(path):
        if sh(["fusermount3", "-u", path], check=False).returncode:
            sh(["umount", "-l", path], check=False)


def fio(path, job, runtime, size):
    j = JOBS[job]
    cmd = ["fio", "--name=b", f"--filename={path}", f"--size={size}", "--direct=1",
           "--ioengine=io_uring", f"--rw={j['rw']}", f"--bs={j['bs']}",
           f"--iodepth={j['iodepth']}", "--time_based", f"--runtime={runtime}",
           "--ramp_time=1", "--randrepeat=0", "--norandommap", "--output-format=json",
           f"--numjobs={j.get('numjobs', 1)}", "--group_reporting"]
    p = sh(cmd, check=False)
    if p.returncode:
        err = (p.stderr.strip().splitlines() or ["exit %d" % p.returncode])[-1]
        return None, err
    d = json.loads(p.stdout[p.stdout.index("{"):])["jobs"][0]
    side = d["read"] if j["rw"] in ("read", "randread") else d["write"]
    pct = side["clat_ns"].get("percentile", {})
    return dict(mibs=side["bw"] / 1024.0, iops=side["iops"], p50=pct.get("50.000000", 0) / 1000.0,
                p99=pct.get("99.000000", 0) / 1000.0), None


class Backing:
    def __init__(self, kind, top, size):
        self.kind = kind
        self.ds = os.path.join(top, f"{kind}-ds")
        os.mkdir(self.ds)
        if kind == "tmpfs":
            gib = int(size.rstrip("gG")) + 1 if size[-1] in "gG" else 2
            sh(["mount", "-t", "tmpfs", "-o", f"size={gib}g", "tmpfs", self.ds])
        self.file = "bench.img"
        # One fully written file, laid out once through the native path.
        sh(["fio", "--name=layout", f"--filename={os.path.join(self.ds, self.file)}",
            f"--size={size}", "--rw=write", "--bs=1M", "--direct=0", "--ioengine=psync"])

    def close(self):
        if self.kind == "tmpfs":
            sh(["umount", "-l", self.ds], check=False)


def start_targets(b, top, vdsfs, variants, targets):
    """Mounts each vdsfs variant and mergerfs over b, adding them to targets as they
    come up (so that the caller unmounts whatever did)."""
    targets["native"] = b.ds
    for name, opts in variants:
        # A datastore has one daemon at a time: each variant gets its own folder,
        # holding a hard link to the one file, so all measure the same data.
        ds = os.path.join(b.ds, f"v-{name}")
        os.mkdir(ds)
        os.link(os.path.join(b.ds, b.file), os.path.join(ds, b.file))
        mv = os.path.join(top, f"{b.kind}-{name}")
        os.mkdir(mv)
        cmd = [vdsfs, f"ds={ds}", mv, "-o", ",".join(o for o in (f"control={mv}.sock", opts) if o)]
        sh(cmd)
        wait_mounted(mv)
        targets[name] = mv
    mm = os.path.join(top, f"{b.kind}-mergerfs")
    os.mkdir(mm)
    sh(["mergerfs", "-o", "cache.files=off,category.create=mfs,fsname=mergerfs", b.ds, mm])
    wait_mounted(mm)
    targets["mergerfs"] = mm


def fmt_cell(r):
    if r is None:
        return "FAIL"
    return f"{r['mibs']:9.1f} {r['iops']:9.0f} {r['p50']:7.0f} {r['p99']:8.0f}"


def ratio(a, b, key):
    if a is None or b is None or not b[key]:
        return "  n/a"
    return f"{a[key] / b[key]:5.2f}x"


def median_result(rs):
    rs = [r for r in rs if r]
    if not rs:
        return None
    return {k: statistics.median(r[k] for r in rs) for k in ("mibs", "iops", "p50", "p99")}


def run_backing(kind, args, top):
    b = Backing(kind, top, args.size)
    targets = {}
    try:
        start_targets(b, top, args.vdsfs, args.variants, targets)
        results = {}
        for job in args.jobs:
            runs = {t: [] for t in targets}
            errs = {}
            for _ in range(args.runs):
                for t, mnt in targets.items():
                    r, err = fio(os.path.join(mnt, b.file), job, args.runtime, args.size)
                    runs[t].append(r)
                    if err:
                        errs[t] = err
            results[job] = ({t: median_result(v) for t, v in runs.items()}, errs)
        return results
    finally:
        for t, mnt in targets.items():
            if t != "native":
                unmount(mnt)
        b.close()


def report(kind, results, variants):
    print(f"\n## {kind} backing (median of runs; MiB/s, IOPS, p50 and p99 completion latency usec)")
    print("| job | target | MiB/s IOPS p50 p99 | /native | /mergerfs | p99/native p99 |")
    print("|---|---|---|---|---|---|")
    for job, (res, errs) in results.items():
        key = "mibs" if job.startswith("seq") else "iops"
        for t in ["native"] + [n for n, _ in variants] + ["mergerfs"]:
            r = res[t]
            tail = ("| | |" if t == "native" else
                    f"| {ratio(r, res['native'], key)} | {ratio(r, res['mergerfs'], key)} "
                    f"| {ratio(r, res['native'], 'p99')} |")
            print(f"| {job} | {t} | {fmt_cell(r)} {tail}")
        for t, e in errs.items():
            print(f"|  | {t} failed: {e} | | | | |")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runtime", type=int, default=10)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--size", default="1g")
    ap.add_argument("--backing", default="tmpfs,ext4")
    ap.add_argument("--jobs", default=",".join(JOBS))
    ap.add_argument("--build", default=os.environ.get("VDSFS_BUILD", "build"))
    ap.add_argument("--vdsfs", help="the vdsfs binary (default: BUILD/fs/vdsfs)")
    ap.add_argument("--vdsfs-opts", default="")
    ap.add_argument("--variant", action="append", default=[],
                    help="NAME=OPTS: a vdsfs mount with these -o options (repeatable)")
    ap.add_argument("--dir", default="/var/tmp", help="where the ext4 backing lives")
    args = ap.parse_args()
    args.jobs = args.jobs.split(",")
    args.variants = [tuple(v.split("=", 1)) if "=" in v else (v, "") for v in args.variant] or \
        [("vdsfs", args.vdsfs_opts)]
    if len({n for n, _ in args.variants} | {"native", "mergerfs"}) != len(args.variants) + 2:
        sys.exit("fs-bench: variant names must be distinct and not native or mergerfs")
    unknown = [j for j in args.jobs if j not in JOBS]
    if unknown:
        sys.exit(f"fs-bench: unknown job {','.join(unknown)}; jobs: {','.join(JOBS)}")
    if not args.vdsfs:
        top = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "../.."))
        args.vdsfs = os.path.join(top, args.build, "fs/vdsfs")
    if not os.access(args.vdsfs, os.X_OK):
        sys.exit(f"fs-bench: no vdsfs at {args.vdsfs} (build it, or --build DIR / --vdsfs PATH)")
    # SIGTERM ends the run like Ctrl-C, through the finally blocks that unmount
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    if os.geteuid():
        sys.exit("fs-bench: needs root")
    for tool in ("fio", "mergerfs"):
        if not shutil.which(tool):
            sys.exit(f"fs-bench: {tool} missing (tools/deps.sh bench)")
    uring_old = None
    if any("io_uring=on" in o.split(",") for _, o in args.variants):
        param = "/sys/module/fuse/parameters/enable_uring"
        with open(param) as f:
            uring_old = f.read().strip()
        with open(param, "w") as f:
            f.write("Y")
    top = tempfile.mkdtemp(prefix="vdsfs-bench-", dir=args.dir)
    print(f"# fs-bench: runtime {args.runtime}s x {args.runs} runs, file {args.size}, "
          f"kernel {os.uname().release}, {os.cpu_count()} cpus")
    for n, o in args.variants:
        print(f"# {n}: -o {o or '(defaults)'}")
    try:
        for kind in args.backing.split(","):
            report(kind, run_backing(kind, args, top), args.variants)
    finally:
        shutil.rmtree(top, ignore_errors=True)
        if uring_old is not None:
            with open(param, "w") as f:
                f.write(uring_old)


if __name__ == "__main__":
    main()
