#!/usr/bin/env python3
"""The registry layer cache on a fresh CI runner, timed.

A project (the Debian rootfs in three layers, its files given new mtimes
as a checkout gives them) is built and pushed once with --cache-repo, as
the first runner would. Each timed case then starts from a fresh copy of
it in another directory (new inodes and mtimes) with an empty
$HOIST_CACHE, and builds and pushes to the same repository under a new
tag, reading the cache repository on the loopback registry, or through
benches/latency_proxy.py as if 20 ms away. The baseline is the cold build
and push of the same copy with no cache at all.

compare.py runs these cases with the others; alone, this script writes
benches/results/<date>-registry-cache.md and .json:

    python3 benches/registry_cache.py --hoist target/release/hoist \\
        --rootfs "$(fixtures/debian-rootfs.sh)" [--runs N] [--warmups N]
"""

import datetime
import json
import os
import sys
import time

from harness import (RTT_MS, Case, LatencyProxy, Registry, case_summary, log, remove, run,
                     run_rounds)
from report import (loadavg, standalone_arguments, standalone_report, targets_table,
                    write_results)

EPOCH = 1700000000

COLD = "registry cache: cold build and push, no cache"
COLD_RECORDING = "registry cache: cold build and push, recording (--cache-repo)"
FRESH = "registry cache: fresh runner, unchanged inputs"
CHANGED = "registry cache: fresh runner, one file changed"
OVER = f"over {RTT_MS} ms RTT"
COLD_OVER = f"registry cache {OVER}: cold build and push, no cache"
FRESH_OVER = f"registry cache {OVER}: fresh runner, unchanged inputs"
CHANGED_OVER = f"registry cache {OVER}: fresh runner, one file changed"

# Limits the runs are checked against: (name, case, baseline, limit).
RATIOS = (
    ("fresh runner, unchanged inputs / cold build and push, wall", FRESH, COLD, 0.15),
    (f"fresh runner, unchanged inputs / cold build and push {OVER}, wall", FRESH_OVER,
     COLD_OVER, 0.15),
)


def write_spec(path):
    """Three layers of the project beside the spec: the system, /usr/lib
    and /usr/share; owners and modes as they are, as for a root
    filesystem."""
    layers = [
        ("system", "project", "/", ["usr/lib", "usr/share"]),
        ("lib", "project/usr/lib", "/usr/lib", []),
        ("share", "project/usr/share", "/usr/share", []),
    ]
    lines = ["[[image]]", 'name = "cached"', f"source-date-epoch = {EPOCH}"]
    for name, source, target, exclude in layers:
        lines += ["", "[[image.layer]]", f'name = "{name}"', f'source = "{source}"',
                  f'target = "{target}"', 'owner = "preserve"', 'permissions = "preserve"']
        if exclude:
            lines.append("exclude = [" + ", ".join(f'"{e}"' for e in exclude) + "]")
    with open(path, "w") as out:
        out.write("\n".join(lines) + "\n")


def checkout(source, runner):
    """`runner`/project as a fresh checkout of `source`: new inodes, new
    mtimes, the same contents, owners and modes; the spec beside it."""
    remove(runner)
    os.makedirs(runner)
    run(["cp", "-a", "--no-preserve=timestamps", source, os.path.join(runner, "project")])
    write_spec(os.path.join(runner, "hoist.toml"))


def first_file(root, under):
    # compare.py's, imported here so that compare.py can import this module.
    from compare import first_file as first
    return first(root, under)


def what_moved(figures):
    """From the run's --json events: layers compressed, layers taken from
    the registry cache, layer blobs uploaded (the config is not a layer)."""
    built, from_registry, layers = 0, 0, set()
    uploaded = []
    for line in figures[-1]["stdout"].splitlines():
        event = json.loads(line)
        if event.get("event") == "layer-done":
            layers.add(event["digest"])
            if event["from_registry"]:
                from_registry += 1
            elif not event["cached"]:
                built += 1
        elif event.get("event") == "blob" and event.get("outcome") == "uploaded":
            uploaded.append(event["digest"])
    return {
        "layers_built": built,
        "layers_from_registry": from_registry,
        "layers_uploaded": len([digest for digest in uploaded if digest in layers]),
    }


def cases(hoist, rootfs, work, registry, proxy):
    """The registry cache cases over `rootfs`."""
    scratch = os.path.join(work, "scratch", "registry-cache")
    project = os.path.join(scratch, "project")
    if not os.path.exists(project + ".complete"):
        log(f"making the project {project} from {rootfs}")
        remove(project)
        os.makedirs(scratch, exist_ok=True)
        run(["cp", "-a", "--no-preserve=timestamps", rootfs, project])
        open(project + ".complete", "w").close()
    laptop = os.path.join(scratch, "first-runner")
    runner = os.path.join(scratch, "fresh-runner")
    counter = {"n": 0}

    def tag():
        counter["n"] += 1
        return f"run-{counter['n']}"

    def build(directory, host, cache_repo):
        command = [hoist, "build", "--json", "-f", os.path.join(directory, "hoist.toml"),
                   "-o", f"docker://{host}/bench/cached-app:{tag()}"]
        if cache_repo:
            command += ["--cache-repo", f"{host}/bench/layer-cache"]
        return command

    def environment(directory):
        return {"HOIST_CACHE": os.path.join(directory, "cache")}

    def cold(name, host, cache_repo):
        case = Case(name, "registry-cache", [None], registry=registry, check=what_moved)

        def setup():
            registry.reset()
            checkout(project, runner)
            case.steps = [build(runner, host, cache_repo)]

        case.setup = setup
        case.env = environment(runner)
        return case

    def fresh(name, host, change):
        case = Case(name, "registry-cache", [None], registry=registry, check=what_moved)

        def setup():
            # The first runner built and pushed with the cache; this one
            # starts from a new checkout and an empty local cache.
            registry.reset()
            checkout(project, laptop)
            run(build(laptop, registry.host, True), env=environment(laptop))
            checkout(project, runner)
            if change:
                with open(first_file(os.path.join(runner, "project"), "usr/share"), "ab") as f:
                    f.write(b"changed\n")
            case.steps = [build(runner, host, True)]

        case.setup = setup
        case.env = environment(runner)
        return case

    return [
        cold(COLD, registry.host, False),
        cold(COLD_RECORDING, registry.host, True),
        fresh(FRESH, registry.host, False),
        fresh(CHANGED, registry.host, True),
        cold(COLD_OVER, proxy.host, False),
        fresh(FRESH_OVER, proxy.host, False),
        fresh(CHANGED_OVER, proxy.host, True),
    ]


def targets(summaries):
    """Each limit with its measured ratio, and what moved in the changed cases."""
    checks = []
    for name, case, baseline, limit in RATIOS:
        if case in summaries and baseline in summaries:
            value = summaries[case]["wall"]["median"] / summaries[baseline]["wall"]["median"]
            checks.append({"target": name, "value": round(value, 3), "limit": limit,
                           "met": value <= limit})
    for case, expected in ((FRESH, 0), (CHANGED, 1), (FRESH_OVER, 0), (CHANGED_OVER, 1)):
        summary = summaries.get(case)
        if summary and "layers_built" in summary:
            worst = max(max(summary["layers_built"]), max(summary["layers_uploaded"]))
            checks.append({"target": f"{case}: layers compressed and uploaded",
                           "value": worst, "limit": expected, "met": worst <= expected})
    return checks


def markdown(report):
    lines = [f"# Registry layer cache, {report['date']}", "",
             f"Machine: {report['machine']['cpu']}, {report['machine']['cores']} cores, "
             f"load average {report['load_before'][0]} before, {report['load_after'][0]} after. "
             f"{report['runs']} runs per case after {report['warmups']} warm-up rounds, alternated; "
             "medians (min–max).", "",
             f"Input: {report['input']} in three layers (system, /usr/lib, /usr/share), gzip at the default level.", "",
             "| case | wall s | CPU s | registry CPU s | layers built / from the cache / uploaded |",
             "| --- | --- | --- | --- | --- |"]
    for name, summary in report["cases"].items():
        wall = summary["wall"]
        moved = "/".join(str(max(summary.get(key, [0])))
                         for key in ("layers_built", "layers_from_registry", "layers_uploaded"))
        registry_cpu = summary.get("registry_cpu", {}).get("median", 0)
        lines.append(f"| {name} | {wall['median']:.2f} ({wall['min']:.2f}–{wall['max']:.2f}) | "
                     f"{summary['cpu']['median']:.2f} | {registry_cpu:.2f} | {moved} |")
    lines += targets_table(report["targets"])
    return "\n".join(lines) + "\n"


def main():
    arguments = standalone_arguments(__doc__, runs=3)
    work = os.environ.get("HOIST_BENCH_WORK", "/var/tmp/hoist-bench")
    os.makedirs(work, exist_ok=True)
    load_before = loadavg()
    registry = Registry(work)
    registry.start()
    proxy = LatencyProxy(registry, RTT_MS)
    proxy.start()
    try:
        measured = cases(arguments.hoist, arguments.rootfs, work, registry, proxy)
        run_rounds(measured, arguments.warmups, arguments.runs)
    finally:
        proxy.stop()
        registry.stop()
    summaries = {case.name: case_summary(case) for case in measured}
    for case in measured:
        for key in ("layers_from_registry", "layers_uploaded"):
            summaries[case.name][key] = [run[key] for run in case.runs if key in run]
    now = datetime.datetime.now(datetime.timezone.utc)
    report = standalone_report(arguments, now, load_before, cases=summaries,
                               targets=targets(summaries))
    write_results(arguments.results, now, "registry-cache", report, markdown(report))
    return 0 if all(check["met"] for check in report["targets"]) else 1


if __name__ == "__main__":
    sys.exit(main())
