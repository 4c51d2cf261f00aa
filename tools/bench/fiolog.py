#!/usr/bin/env python3
"""fiolog.py: what a guest saw during a live migration, from fio's per-I/O logs.

Shared by mig-bench.sh (vdsfs) and qemu-mirror-bench.sh (QEMU's mirror) so that both
compute the same numbers the same way. fio runs with write_lat_log and log_avg_msec=0,
so its _lat.1.log has one line per completed I/O: "msec, latency ns, direction, bs,
...". With log_unix_epoch=1 the msec are wall-clock time and line up exactly with the
clock times given here (fio's start, the migration's start and end, from
`date +%s.%N`); without it they count from fio's job start, taken as FIO_START.

Prints one line, "gap_ms iops_before iops_during": the largest gap between two
consecutive completions whose later one falls in the migration window (its start to
one second after its end, so a stall at the switch counts), the guest's IOPS before
the migration (completions from fio's second second on, ramp-up left out, to the
migration's start, over that time) and during it (completions inside the window over
its length). With --png, draws IOPS per second and the
per-I/O latency over time with the migration's start, end and any --mark lines.

usage: fiolog.py LOG_PREFIX FIO_START MIG_START MIG_END [--png FILE --title T]
       [--mark LABEL=EPOCH_SECONDS ...] [--end-label switch] [--gaps FILE]
"""
import argparse
import subprocess
import sys


def load(prefix, fio_start):
    """completion times in ms since fio_start, latencies in ms"""
    t, lat = [], []
    with open(prefix + "_lat.1.log") as f:
        for line in f:
            fields = line.split(",", 2)
            t.append(int(fields[0]))
            lat.append(int(fields[1]) / 1e6)  # ns -> ms
    if t and t[0] > 1e12:  # log_unix_epoch=1: epoch ms, exact against our clock
        base = round(fio_start * 1000)
        t = [x - base for x in t]
    return t, lat


def analyze(t, ms, me):
    """largest gap (ms) in the window, IOPS before, IOPS during, per-second counts"""
    gap = max((b - a for a, b in zip(t, t[1:]) if ms <= b <= me + 1000), default=0)
    secs = {}
    for x in t:
        secs[x // 1000] = secs.get(x // 1000, 0) + 1
    # completions per second over each window, so a migration shorter than a second
    # still gets a rate
    before = sum(1 for x in t if 1000 <= x < ms)
    during = sum(1 for x in t if ms <= x < me)
    ib = before / ((ms - 1000) / 1000) if ms > 1000 else float("nan")
    idur = during / ((me - ms) / 1000) if me > ms else float("nan")
    return gap, ib, idur, secs


def largest_gaps(t, ms, me, marks, n=3):
    """the n largest gaps in the window as (gap ms, its end in ms after the migration's
    start, the phase it ends in: the last mark at or before it)"""
    gaps = sorted(((b - a, b) for a, b in zip(t, t[1:]) if ms <= b <= me + 1000), reverse=True)[:n]
    out = []
    for g, b in gaps:
        phase = "start"
        for name, at in sorted(marks, key=lambda x: x[1]):
            if at <= b:
                phase = name
        if b > me:
            phase = "after end"
        out.append((g, b - ms, phase))
    return out


def gaps_by_phase(t, ms, me, marks):
    """the largest gap ending in each phase: [(phase, gap ms)], phases from the marks
    in time order, then "after end" (one second past the migration's end)"""
    bounds = sorted(marks, key=lambda x: x[1]) + [("after end", me), ("", me + 1000)]
    out = []
    for (name, lo), (_, hi) in zip(bounds, bounds[1:]):
        g = max((b - a for a, b in zip(t, t[1:]) if lo <= b < hi), default=0)
        out.append((name, g))
    return out


def plot(prefix, png, title, t, lat, secs, ms, me, marks, end_label):
    dat, lat_dat = prefix + ".iops.dat", prefix + ".lat.dat"
    with open(dat, "w") as f:
        for s in sorted(secs):
            f.write(f"{s} {secs[s]}\n")
    with open(lat_dat, "w") as f:
        step = max(1, len(t) // 20000)
        for i in range(0, len(t), step):
            f.write(f"{t[i] / 1000:.3f} {lat[i]:.3f}\n")
    lines = [("migrate", ms, "blue", 0.95), (end_label, me, "red", 0.9)]
    lines += [(name, at, "dark-green", 0.85 - 0.05 * i) for i, (name, at) in enumerate(marks)]
    arrows = "".join(
        f"set arrow from {at / 1000:.2f}, graph 0 to {at / 1000:.2f}, graph 1 nohead lc rgb '{c}'\n"
        f"set label '{name}' at {at / 1000:.2f}, graph {y:.2f} tc rgb '{c}'\n"
        for name, at, c, y in lines)
    gp = f"""set terminal pngcairo size 1000,500
set output '{png}'
set title '{title}'
set xlabel 'seconds'; set ylabel 'IOPS'; set y2label 'latency ms'; set y2tics; set ytics nomirror
{arrows}plot '{dat}' using 1:2 with steps title 'IOPS', '{lat_dat}' using 1:2 axes x1y2 with dots title 'latency'
"""
    subprocess.run(["gnuplot"], input=gp, text=True, check=False)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("prefix")
    ap.add_argument("fio_start", type=float)
    ap.add_argument("mig_start", type=float)
    ap.add_argument("mig_end", type=float)
    ap.add_argument("--png")
    ap.add_argument("--title", default="live migration")
    ap.add_argument("--mark", action="append", default=[])
    ap.add_argument("--end-label", default="switch")
    ap.add_argument("--gaps", help="write the 3 largest gaps, where they end (ms after the "
                    "migration's start) and the phase they end in (after which --mark), to this file")
    a = ap.parse_args()
    ms, me = (a.mig_start - a.fio_start) * 1000, (a.mig_end - a.fio_start) * 1000
    t, lat = load(a.prefix, a.fio_start)
    gap, ib, idur, secs = analyze(t, ms, me)
    print(f"{gap:.0f} {ib:.0f} {idur:.0f}")
    marks = []
    for m in a.mark:
        name, at = m.split("=", 1)
        marks.append((name, (float(at) - a.fio_start) * 1000))
    if a.gaps:
        with open(a.gaps, "w") as f:
            for g, at, phase in largest_gaps(t, ms, me, [("migrate", ms)] + marks):
                f.write(f"{g:.0f} ms ending {at / 1000:.3f} s after the start, in {phase}\n")
            f.write("largest gap per phase: " + ", ".join(
                f"{name} {g:.0f} ms" for name, g in gaps_by_phase(t, ms, me, [("migrate", ms)] + marks)) + "\n")
    if a.png:
        plot(a.prefix, a.png, a.title, t, lat, secs, ms, me, marks, a.end_label)


if __name__ == "__main__":
    sys.exit(main())
