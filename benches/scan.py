#!/usr/bin/env python3
"""`hoist scan` of the Debian fixture against 100,000 OSV records, timed.

The export is generated (benches/osv_export.py: one all.zip per ecosystem,
a share of the records on the fixture's packages) and the fixture is built
into an OCI layout with hoist, as the tests build it. Each case is one
`hoist scan --json` with its own $HOIST_CACHE:

- index cold: the export read, parsed, indexed and cached, then matched;
- index cached: the cached index opened, then matched;
- a 16-record database (tests/data/scan/osv): cataloging with next to no
  matching, what a scan costs before the database counts;

each for the image and for the root filesystem as a directory (no layer
to read). Indexing is the cold case less the cached one; matching once
indexed is the cached case less cataloging alone, whose target is under a
second, as is the whole cached scan of the directory. Writes
benches/results/<date>-scan.md and .json:

    python3 benches/scan.py --hoist target/release/hoist [--rootfs DIR] [--runs N] [--warmups N]

--rootfs defaults to the fixture fixtures/debian-rootfs.sh builds (or has
cached), as the tests get it.
"""

import datetime
import json
import os
import sys

import osv_export
from harness import ROOT, Case, case_summary, log, remove, run, run_rounds
from report import (loadavg, standalone_arguments, standalone_report, targets_table,
                    write_results)

EPOCH = 1700000000
IMAGE_COLD = "scan image, index cold (read, index, cache, match)"
IMAGE_CACHED = "scan image, index cached (match)"
IMAGE_SMALL = "scan image, 16-record database (cataloging alone)"
ROOTFS_COLD = "scan rootfs directory, index cold"
ROOTFS_CACHED = "scan rootfs directory, index cached"
ROOTFS_SMALL = "scan rootfs directory, 16-record database (cataloging alone)"
# Matching once indexed: what the 100,000 records add to a scan whose index
# is cached (opening the index, matching, the findings in the report).
LIMIT_SECONDS = 1.0

def build_image(hoist, rootfs, work):
    """The fixture as a one-layer image in an OCI layout, built once."""
    layout = os.path.join(work, "scan", "image")
    if os.path.exists(layout + ".complete"):
        return layout
    remove(layout)
    spec = os.path.join(work, "scan", "hoist.toml")
    with open(spec, "w") as out:
        out.write(f'[[image]]\nname = "debian"\nsource-date-epoch = {EPOCH}\n\n'
                  f'[[image.layer]]\nsource = "{rootfs}"\ntarget = "/"\n'
                  'owner = "preserve"\npermissions = "preserve"\n')
    log(f"building the image {layout} from {rootfs}")
    run([hoist, "build", "-f", spec, "-o", f"oci:{layout}:debian", "--no-cache"])
    open(layout + ".complete", "w").close()
    return layout


def findings(figures):
    """What the scan found, from its --json document."""
    document = json.loads(figures[-1]["stdout"])
    return {
        "findings": len(document["findings"]),
        "records": document["database"]["records"],
        "cached": document["database"]["cached"],
    }


def cases(hoist, target_image, rootfs, export, work):
    def scan(name, slug, target, database, cold):
        cache = os.path.join(work, "scan", "cache-" + slug)
        command = [hoist, "scan", target, "--db", database, "--json"]
        environment = {"HOIST_CACHE": cache}

        def setup():
            if cold:
                remove(cache)
            elif not os.path.isdir(os.path.join(cache, "scan")):
                run(command, env=environment)

        return Case(name, "scan", [command], setup=setup, env=environment, check=findings)

    small = os.path.join(ROOT, "tests", "data", "scan", "osv")
    image = f"oci:{target_image}:debian"
    return [
        scan(IMAGE_COLD, "image-cold", image, export, True),
        scan(IMAGE_CACHED, "image-cached", image, export, False),
        scan(ROOTFS_COLD, "rootfs-cold", rootfs, export, True),
        scan(ROOTFS_CACHED, "rootfs-cached", rootfs, export, False),
        scan(IMAGE_SMALL, "image-small", image, small, False),
        scan(ROOTFS_SMALL, "rootfs-small", rootfs, small, False),
    ]


def median(summaries, name, metric="wall"):
    return summaries[name][metric]["median"]


def targets(summaries):
    """Matching once indexed, the cached scan less cataloging alone, for
    the image and the directory; and the whole cached scan of the directory."""
    checks = []
    for cached, small, what in ((IMAGE_CACHED, IMAGE_SMALL, "image"),
                                (ROOTFS_CACHED, ROOTFS_SMALL, "rootfs directory")):
        value = median(summaries, cached) - median(summaries, small)
        checks.append({"target": f"matching 100,000 records once indexed, {what}, wall s",
                       "value": round(value, 3), "limit": LIMIT_SECONDS,
                       "met": value <= LIMIT_SECONDS})
    value = median(summaries, ROOTFS_CACHED)
    checks.append({"target": f"{ROOTFS_CACHED}, whole scan, wall s", "value": round(value, 3),
                   "limit": LIMIT_SECONDS, "met": value <= LIMIT_SECONDS})
    return checks


def parts(summaries):
    """Indexing (cold less cached) and cataloging, from the medians."""
    return {
        "indexing 100,000 records (cold less cached, directory), wall s":
            median(summaries, ROOTFS_COLD) - median(summaries, ROOTFS_CACHED),
        "indexing, CPU s": median(summaries, ROOTFS_COLD, "cpu")
            - median(summaries, ROOTFS_CACHED, "cpu"),
        "cataloging the image (its layer read twice: listing, then package databases), wall s":
            median(summaries, IMAGE_SMALL),
        "cataloging the directory, wall s": median(summaries, ROOTFS_SMALL),
    }


def markdown(report):
    lines = [f"# hoist scan against 100,000 OSV records, {report['date']}", "",
             f"Machine: {report['machine']['cpu']}, {report['machine']['cores']} cores, "
             f"load average {report['load_before'][0]} before, {report['load_after'][0]} after. "
             f"{report['runs']} runs per case after {report['warmups']} warm-up rounds, alternated; "
             "medians (min–max).", "",
             f"Input: {report['input']} (dpkg packages, python3), as a one-layer gzip image in an "
             f"OCI layout and as a directory; the database: {report['export']['records']:,} "
             f"generated records in {report['export']['zips']} zips, "
             f"{report['export']['bytes'] / 1e6:.1f} MB (benches/osv_export.py).", "",
             "| case | wall s | CPU s | peak RSS MB | findings |",
             "| --- | --- | --- | --- | --- |"]
    for name, summary in report["cases"].items():
        wall = summary["wall"]
        lines.append(f"| {name} | {wall['median']:.2f} ({wall['min']:.2f}–{wall['max']:.2f}) | "
                     f"{summary['cpu']['median']:.2f} | {summary['rss_mb']['median']:.0f} | "
                     f"{summary['findings']} |")
    lines += ["", "| part, from the medians | s |", "| --- | --- |"]
    lines += [f"| {name} | {value:.2f} |" for name, value in report["parts"].items()]
    lines += targets_table(report["targets"])
    return "\n".join(lines) + "\n"


def main():
    arguments = standalone_arguments(__doc__, runs=5, rootfs_required=False)
    if arguments.rootfs is None:
        # Built (or found cached) the way the tests get it.
        arguments.rootfs = run([os.path.join(ROOT, "fixtures", "debian-rootfs.sh")],
                               capture=True).strip()
    arguments.rootfs = os.path.abspath(arguments.rootfs)
    hoist, rootfs = os.path.abspath(arguments.hoist), arguments.rootfs
    work = os.environ.get("HOIST_BENCH_WORK", "/var/tmp/hoist-bench")
    os.makedirs(os.path.join(work, "scan"), exist_ok=True)
    export = os.path.join(work, "scan", "osv")
    log(f"generating the OSV export {export}")
    records = osv_export.write(export, rootfs)
    zips = [os.path.join(directory, name) for directory, _, names in os.walk(export)
            for name in names if name.endswith(".zip")]
    image = build_image(hoist, rootfs, work)
    load_before = loadavg()
    measured = cases(hoist, image, rootfs, export, work)
    run_rounds(measured, arguments.warmups, arguments.runs)
    summaries = {}
    for case in measured:
        summaries[case.name] = case_summary(case)
        found = {run_["findings"] for run_ in case.runs}
        cached = {run_["cached"] for run_ in case.runs}
        if len(found) != 1 or cached != {"cold" not in case.name}:
            raise RuntimeError(f"{case.name}: findings {found}, index from the cache {cached}")
        summaries[case.name]["findings"] = found.pop()
    now = datetime.datetime.now(datetime.timezone.utc)
    export_size = {"records": records, "zips": len(zips),
                   "bytes": sum(os.path.getsize(path) for path in zips)}
    report = standalone_report(arguments, now, load_before, export=export_size, cases=summaries,
                               parts=parts(summaries), targets=targets(summaries))
    write_results(arguments.results, now, "scan", report, markdown(report))
    return 0 if all(check["met"] for check in report["targets"]) else 1


if __name__ == "__main__":
    sys.exit(main())
