"""What benches/compare.py writes: the machine and tool versions, the ratio
for every performance target, and the Markdown table; and what the
standalone benches (registry_cache.py, scan.py) share: their arguments, the
table of their targets and their dated result files."""

import argparse
import json
import os
import platform

from harness import ROOT, RTT_MS, run

# hoist's default gzip level (`compression-level`, src/spec/plan.rs): the
# gzip cases build at it, since the targets are about the default.
GZIP_LEVEL = 3
GZIP = f"hoist build gzip-{GZIP_LEVEL}"


def loadavg():
    with open("/proc/loadavg") as handle:
        return [float(value) for value in handle.read().split()[:3]]


def machine():
    model = "unknown"
    with open("/proc/cpuinfo") as handle:
        for line in handle:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    flags = ""
    with open("/proc/cpuinfo") as handle:
        for line in handle:
            if line.startswith("flags"):
                flags = line
                break
    memory = 0
    with open("/proc/meminfo") as handle:
        for line in handle:
            if line.startswith("MemTotal"):
                memory = int(line.split()[1]) // 1024
    return {
        "cpu": model,
        "cores": os.cpu_count(),
        "sha_ni": " sha_ni" in flags,
        "memory_mb": memory,
        "kernel": platform.release(),
    }


def versions(hoist):
    def first_line(command):
        try:
            return run(command, capture=True).strip().splitlines()[0]
        except Exception as error:  # a missing version is not worth failing for
            return f"unknown ({error})"

    return {
        "hoist": first_line([hoist, "--version"]) + " "
        + first_line(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"]),
        "umoci": first_line(["umoci", "--version"]),
        "buildah": first_line(["buildah", "--version"]),
        "skopeo": first_line(["skopeo", "--version"]),
        "pigz": first_line("pigz --version 2>&1"),
        "zstd": first_line(["zstd", "--version"]),
        "docker-registry": first_line("docker-registry --version 2>&1"),
    }


def ratio(results, tree, numerator, denominator, metric="wall"):
    top = results[tree]["cases"].get(numerator, {}).get(metric)
    bottom = results[tree]["cases"].get(denominator, {}).get(metric)
    if not top or not bottom or bottom["median"] == 0:
        return None
    return top["median"] / bottom["median"]


def targets(results, cores):
    """Each target of the performance goals, with the measured value."""
    checks = []

    def add(name, value, limit, better="lower", tree="rootfs", unit="×", cpu=None):
        if value is None:
            return
        met = value <= limit if better == "lower" else value >= limit
        checks.append({"target": name, "tree": tree, "value": round(value, 3),
                       "limit": limit, "better": better, "met": met, "unit": unit,
                       "cpu_ratio": None if cpu is None else round(cpu, 3)})

    def pair(name, tree, numerator, denominator, limit):
        add(name, ratio(results, tree, numerator, denominator), limit, tree=tree,
            cpu=ratio(results, tree, numerator, denominator, "cpu"))

    for tree in results:
        pair("hoist gzip / umoci repack, wall", tree, GZIP, "umoci repack", 0.45)
        pair("hoist gzip / buildah copy+commit, wall", tree, GZIP,
             "buildah copy + commit", 0.3)
        add("hoist gzip output / umoci output, size", ratio(results, tree, GZIP, "umoci repack",
            "size"), 0.97, tree=tree)
        add("hoist gzip output / buildah output, size", ratio(results, tree, GZIP,
            "buildah copy + commit", "size"), 1.0, tree=tree)
        for codec, multi, single in (
            ("gzip", GZIP, f"{GZIP}, 1 core"),
            ("zstd", "hoist build zstd-3", "hoist build zstd-3, 1 core"),
        ):
            speedup = ratio(results, tree, single, multi)
            if speedup is not None:
                add(f"{codec} throughput / ({cores} × single-core)", speedup / cores, 0.85,
                    better="higher", tree=tree)
        for glibc in (GZIP, "hoist build zstd-3"):
            codec = glibc.removeprefix("hoist build ")
            pair(f"static (musl) / glibc build, {codec}, wall", tree,
                 f"{glibc}, static (musl)", glibc, 1.03)
        pair(f"hoist zstd / tar | zstd -T{cores}, wall", tree, "hoist build zstd-3",
             f"tar | zstd -3 -T{cores}", 1.0)
        pair("push fresh: hoist / skopeo, wall", tree, "push fresh: hoist copy",
             "push fresh: skopeo copy", 1.0)
        pair("push again: hoist / skopeo, wall", tree, "push again: hoist copy",
             "push again: skopeo copy", 1.0)
        pair("push fresh, small 2-platform image: hoist / skopeo, wall", tree,
             "push fresh: small image, hoist copy", "push fresh: small image, skopeo copy", 1.0)
        pair("push again, small 2-platform image: hoist / skopeo, wall", tree,
             "push again: small image, hoist copy", "push again: small image, skopeo copy", 1.0)
        pair("build+push / build alone, wall", tree,
             f"{GZIP} --output docker:// (no local output)", GZIP, 1.15)
        over = f"over {RTT_MS} ms RTT"
        pair(f"push fresh {over}: hoist / skopeo, wall", tree, f"push fresh {over}: hoist copy",
             f"push fresh {over}: skopeo copy", 1.0)
        pair(f"push fresh {over}, small 2-platform image: hoist / skopeo, wall", tree,
             f"push fresh {over}: small image, hoist copy",
             f"push fresh {over}: small image, skopeo copy", 1.0)
        layer_speedup = ratio(results, tree, "hoist build, 2 uncompressed layers, -j 1",
                              f"hoist build, 2 uncompressed layers, -j {cores}")
        if layer_speedup is not None:
            parallel = min(cores, 2)
            add(f"2 layers: -j {cores} speedup over -j 1 / {parallel}", layer_speedup / parallel,
                0.85, better="higher", tree=tree)
        pair("rebuild, nothing changed / cold, wall", tree,
             "hoist build, 2 layers, nothing changed", "hoist build, 2 layers, cold cache", 0.05)
        touched = results[tree]["cases"].get("hoist build, 2 layers, one file touched")
        if touched and "layers_built" in touched:
            add("layers rebuilt after touching one file", max(touched["layers_built"]), 1,
                tree=tree, unit="layers")
        gzip = results[tree]["cases"].get(GZIP)
        if gzip:
            add("peak RSS, hoist gzip single layer", gzip["rss_mb"]["max"], 100, tree=tree,
                unit="MB")
    if "rootfs" in results and "1 GiB" in results:
        small = results["rootfs"]
        large = results["1 GiB"]
        for name in (GZIP, "hoist build zstd-3"):
            if name in small["cases"] and name in large["cases"]:
                per_byte_small = small["cases"][name]["wall"]["median"] / small["input_bytes"]
                per_byte_large = large["cases"][name]["wall"]["median"] / large["input_bytes"]
                add(f"{name}: time per byte, 1 GiB / 180 MB", per_byte_large / per_byte_small,
                    1.15, tree="both")
    return checks


def markdown(report):
    lines = ["# hoist compared", ""]
    environment = report["machine"]
    lines.append(
        f"Machine: {environment['cpu']}, {environment['cores']} cores "
        f"(SHA-NI: {'yes' if environment['sha_ni'] else 'no'}), "
        f"{environment['memory_mb'] // 1024} GiB RAM, Linux {environment['kernel']}. "
        f"Load average before: {report['load_before']}, after: {report['load_after']} "
        "(the machine was shared while it ran)."
    )
    lines.append("")
    lines.append(f"Taken {report['date']} with `benches/compare.sh {' '.join(report['arguments'])}`; "
                 f"{report['note']}")
    lines.append("")
    for tree, data in report["trees"].items():
        lines.append(f"## {tree} tree ({data['input_bytes'] / 1e6:.0f} MB, "
                     f"{data['entries']} entries), {data['runs']} runs after {data['warmups']} "
                     "warm-up")
        lines.append("")
        lines.append("| case | wall s median (min–max) | CPU s median | peak RSS MB | output MB |")
        lines.append("| --- | --- | --- | --- | --- |")
        for name, case in data["cases"].items():
            wall = case["wall"]
            size = f"{case['size']['median'] / 1e6:.1f}" if "size" in case else ""
            name = name.replace("|", "\\|")
            lines.append(
                f"| {name} | {wall['median']:.2f} ({wall['min']:.2f}–{wall['max']:.2f}) | "
                f"{case['cpu']['median']:.2f} | {case['rss_mb']['max']:.0f} | {size} |"
            )
            if "steps" in case:
                for label, step in zip(("copy", "commit"), case["steps"]):
                    wall = step["wall"]
                    lines.append(
                        f"| &nbsp;&nbsp;{label} alone | {wall['median']:.2f} "
                        f"({wall['min']:.2f}–{wall['max']:.2f}) | "
                        f"{step['cpu']['median']:.2f} | {step['rss_mb']['max']:.0f} | |"
                    )
        lines.append("")
        pushes = [(name, case) for name, case in data["cases"].items() if "registry_cpu" in case]
        if pushes:
            lines.append("CPU the loopback `docker-registry` spent on each push case, on the same "
                         "cores (user+sys from `/proc`; not included in the CPU column above):")
            lines.append("")
            lines.append("| case | registry CPU s median (min–max) |")
            lines.append("| --- | --- |")
            for name, case in pushes:
                figure = case["registry_cpu"]
                lines.append(f"| {name} | {figure['median']:.2f} "
                             f"({figure['min']:.2f}–{figure['max']:.2f}) |")
            lines.append("")
    lines.append("## Targets")
    lines.append("")
    lines.append("| target | tree | measured | limit | met | same ratio in CPU time |")
    lines.append("| --- | --- | --- | --- | --- | --- |")
    for check in report["targets"]:
        sign = "≤" if check["better"] == "lower" else "≥"
        target = check["target"].replace("|", "\\|")
        lines.append(
            f"| {target} | {check['tree']} | {check['value']} {check['unit']} | "
            f"{sign} {check['limit']} | {'yes' if check['met'] else '**no**'} | "
            f"{'' if check.get('cpu_ratio') is None else check['cpu_ratio']} |"
        )
    lines.append("")
    return "\n".join(lines)


def standalone_arguments(description, runs, rootfs_required=True):
    """--hoist, --rootfs, --runs, --warmups and --results, parsed."""
    parser = argparse.ArgumentParser(description=description,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hoist", required=True)
    parser.add_argument("--rootfs", required=rootfs_required)
    parser.add_argument("--runs", type=int, default=runs)
    parser.add_argument("--warmups", type=int, default=1)
    parser.add_argument("--results", default=os.path.join(ROOT, "benches", "results"))
    return parser.parse_args()


def targets_table(checks):
    """The Markdown lines of a standalone bench's targets."""
    lines = ["", "| target | measured | limit | met |", "| --- | --- | --- | --- |"]
    for check in checks:
        lines.append(f"| {check['target']} | {check['value']} | {check['limit']} | "
                     f"{'yes' if check['met'] else 'NO'} |")
    return lines


def standalone_report(arguments, now, load_before, **fields):
    """The figures of a standalone bench with the run's date, machine, load
    and settings."""
    return {
        "date": now.strftime("%Y-%m-%d %H:%M UTC"),
        "machine": machine(),
        "load_before": load_before,
        "load_after": loadavg(),
        "runs": arguments.runs,
        "warmups": arguments.warmups,
        "input": arguments.rootfs,
        **fields,
    }


def write_results(results, now, name, report, text):
    """benches/results/<date>-<name>.json and .md; prints the Markdown."""
    stem = os.path.join(results, now.strftime("%Y-%m-%d") + "-" + name)
    with open(stem + ".json", "w") as out:
        json.dump(report, out, indent=2)
        out.write("\n")
    with open(stem + ".md", "w") as out:
        out.write(text)
    print(text)
