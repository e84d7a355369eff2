#!/usr/bin/env python3
"""Time estimates against measured wall times for every committed experiment.

For each config in experiments/ the estimate comes from `experiment --estimate`. The measured
time is the whole process (`experiment --quiet CONFIG --out TMP`, wall clock) for configs whose
estimate is below --run-below seconds; for longer ones it is read from the newest committed run
in results/: a single run's phase timings (`timings_s` in report.json, which leave out the
process start and the writing of the outputs, under a second here) or a sweep's per-point wall
times (`wall_s` in sweep.json). Prints a Markdown table; run from the repository root after
`cargo build --release`. Nothing else should run on the machine meanwhile.

    python3 benches/estimate_table.py --run-below 200
"""
import argparse, glob, json, os, re, subprocess, tempfile, time

BIN = os.environ.get("EXPERIMENT_BIN", "target/release/experiment")


def estimate(cfg):
    out = subprocess.run([BIN, "--estimate", cfg], capture_output=True, text=True, check=True).stdout
    total = re.search(r"^total: .*", out, re.M)
    seconds = [float(x) for x in re.findall(r"^\s+\S.*?\s([\d.]+) s$", out, re.M)]
    return sum(seconds)


def measured_run(cfg):
    with tempfile.TemporaryDirectory() as tmp:
        t = time.monotonic()
        subprocess.run([BIN, "--quiet", cfg, "--out", os.path.join(tmp, "run")], check=True,
                       stdout=subprocess.DEVNULL)
        return time.monotonic() - t


def recorded(name):
    dirs = sorted(d for d in glob.glob(f"results/{name}/*") if os.path.isdir(d))
    for d in reversed(dirs):
        sj = os.path.join(d, "sweep.json")
        if os.path.exists(sj):
            rows = json.load(open(sj)).get("points", [])
            walls = [r.get("wall_s") for r in rows if r.get("wall_s") is not None]
            if walls:
                return sum(walls), f"recorded ({os.path.basename(d)}, sum of points' wall_s)"
        rj = os.path.join(d, "report.json")
        if os.path.exists(rj):
            t = json.load(open(rj)).get("timings_s", {})
            total = sum(v for k, v in t.items() if k != "empirical_ntk_init")
            return total, f"recorded ({os.path.basename(d)}, phase timings)"
    return None, "no record"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--run-below", type=float, default=200.0)
    args = ap.parse_args()
    print("| experiment | estimate | measured | measured / estimate | how measured |")
    print("|---|---|---|---|---|")
    for cfg in sorted(glob.glob("experiments/*.toml")):
        name = os.path.splitext(os.path.basename(cfg))[0]
        est = estimate(cfg)
        if est < args.run_below:
            meas, how = measured_run(cfg), "whole process, this sitting"
        else:
            meas, how = recorded(name)
        ratio = f"{meas / est:.2f}" if meas else "—"
        meas_s = f"{meas:.1f} s" if meas else "—"
        print(f"| `{name}` | {est:.1f} s | {meas_s} | {ratio} | {how} |", flush=True)


if __name__ == "__main__":
    main()
