#!/usr/bin/env python3
"""The side-by-side benchmark behind benches/compare.sh.

Every case is a command timed (wall and user+sys CPU from wait4, to the
microsecond; peak RSS of the largest process from GNU time), after
an untimed setup that puts the scene in place. Cases run alternated, round by round, after a warm-up round; the
figures are the median, min and max over the timed rounds. Results go to
benches/results/latest.json and latest.md. The timing harness is in
harness.py, the targets and tables in report.py.
"""

import argparse
import datetime
import json
import os
import re
import subprocess
import sys
import time

import registry_cache
from harness import (ROOT, RTT_MS, Case, LatencyProxy, Registry, case_summary, log, remove, run,
                     run_rounds, tree_bytes)
from report import GZIP, GZIP_LEVEL, loadavg, machine, markdown, targets, versions

EPOCH = 1700000000


def write_spec(path, layers, compression, level):
    lines = [
        "[[image]]",
        'name = "bench"',
        f'compression = "{compression}"',
        *([f"compression-level = {level}"] if level is not None else []),
        f"source-date-epoch = {EPOCH}",
    ]
    for layer in layers:
        lines += ["", "[[image.layer]]", f'name = "{layer["name"]}"']
        lines.append(f'source = "{layer["source"]}"')
        lines.append(f'target = "{layer["target"]}"')
        if layer.get("exclude"):
            lines.append("exclude = [" + ", ".join(f'"{e}"' for e in layer["exclude"]) + "]")
        lines += ['owner = "preserve"', 'permissions = "preserve"']
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as out:
        out.write("\n".join(lines) + "\n")


def prepare_inputs(rootfs, work, big):
    """A private copy of the Debian rootfs (so touching a file in it bothers
    no one) and, when asked, the ~1 GiB tree: six copies of it with every
    regular file rotated by a different offset, so no copy repeats another's
    bytes while each keeps the rootfs's compressibility."""
    inputs = os.path.join(work, "inputs")
    os.makedirs(inputs, exist_ok=True)
    small = os.path.join(inputs, "rootfs")
    if not os.path.exists(small + ".complete"):
        log(f"copying {rootfs} to {small}")
        remove(small)
        run(["cp", "-a", rootfs, small])
        open(small + ".complete", "w").close()
    large = os.path.join(inputs, "big")
    if big and not os.path.exists(large + ".complete"):
        log(f"making the 1 GiB tree {large}")
        remove(large)
        os.makedirs(large)
        for copy in range(6):
            target = os.path.join(large, f"copy{copy}")
            run(["cp", "-a", small, target])
            if copy == 0:
                continue
            seen = set()
            for directory, _, files in os.walk(target):
                for name in files:
                    path = os.path.join(directory, name)
                    status = os.lstat(path)
                    if not (status.st_mode & 0o170000 == 0o100000) or status.st_size < 2:
                        continue
                    if (status.st_dev, status.st_ino) in seen:
                        continue
                    seen.add((status.st_dev, status.st_ino))
                    with open(path, "r+b") as handle:
                        data = handle.read()
                        offset = (copy * 4099) % len(data)
                        handle.seek(0)
                        handle.write(data[offset:] + data[:offset])
                    os.utime(path, ns=(status.st_atime_ns, status.st_mtime_ns))
        open(large + ".complete", "w").close()
    return small, (large if big else None)


def first_file(root, under):
    for directory, subdirectories, files in os.walk(os.path.join(root, under)):
        subdirectories.sort()
        for name in sorted(files):
            path = os.path.join(directory, name)
            status = os.lstat(path)
            if status.st_mode & 0o170000 == 0o100000 and status.st_nlink == 1:
                return path
    raise RuntimeError(f"no regular file under {root}/{under}")


def build_cases(hoist, hoist_static, inputs, work, registry, proxy, cores, tree_label, with_peers,
                only):
    """The cases for one input tree."""
    source = inputs
    scratch = os.path.join(work, "scratch", tree_label)
    specs = os.path.join(work, "specs", tree_label)
    os.makedirs(scratch, exist_ok=True)
    one_layer = [{"name": "rootfs", "source": source, "target": "/"}]
    gzip_spec = os.path.join(specs, "gzip", "hoist.toml")
    zstd_spec = os.path.join(specs, "zstd", "hoist.toml")
    write_spec(gzip_spec, one_layer, "gzip", GZIP_LEVEL)
    write_spec(zstd_spec, one_layer, "zstd", 3)
    cases = []

    def output(name):
        return os.path.join(scratch, name)

    def fresh(path):
        return lambda: remove(path)

    def hoist_build(spec, destination, extra=()):
        return [hoist, "build", "-q", "--no-cache", "-f", spec, "-o", destination, *extra]

    out = output("hoist-gzip")
    cases.append(
        Case(GZIP, "gzip", [hoist_build(gzip_spec, f"oci:{out}:bench")],
             setup=fresh(out), output=out)
    )
    if hoist_static:
        # The static release binary (scripts/release.sh) on the same specs:
        # it must stay within 3% of the glibc build.
        for name, codec, spec in ((GZIP, "gzip", gzip_spec), ("hoist build zstd-3", "zstd", zstd_spec)):
            out = output(f"hoist-{codec}-static")
            command = hoist_build(spec, f"oci:{out}:bench")
            command[0] = hoist_static
            cases.append(Case(f"{name}, static (musl)", "static", [command],
                              setup=fresh(out), output=out))
    out = output("hoist-gzip-1core")
    cases.append(
        Case(f"{GZIP}, 1 core", "limits",
             [["taskset", "-c", "0"] + hoist_build(gzip_spec, f"oci:{out}:bench", ["-j", "1"])],
             setup=fresh(out), output=out)
    )
    out = output("pigz")
    cases.append(
        Case(f"tar | pigz -6 -p{cores}", "limits",
             [f"tar -C {source} --numeric-owner --sort=name -cf - . | pigz -6 -p {cores} > {out}"],
             setup=fresh(out), output=out)
    )
    out = output("hoist-zstd")
    cases.append(
        Case("hoist build zstd-3", "zstd", [hoist_build(zstd_spec, f"oci:{out}:bench")],
             setup=fresh(out), output=out)
    )
    out = output("hoist-zstd-1core")
    cases.append(
        Case("hoist build zstd-3, 1 core", "limits",
             [["taskset", "-c", "0"] + hoist_build(zstd_spec, f"oci:{out}:bench", ["-j", "1"])],
             setup=fresh(out), output=out)
    )
    out = output("zstd")
    cases.append(
        Case(f"tar | zstd -3 -T{cores}", "zstd",
             [f"tar -C {source} --numeric-owner --sort=name -cf - . | zstd -q -3 -T{cores} > {out}"],
             setup=fresh(out), output=out)
    )

    umoci = output("umoci")

    def umoci_setup():
        remove(umoci)
        os.makedirs(umoci)
        layout = os.path.join(umoci, "layout")
        run(["umoci", "init", "--layout", layout])
        run(["umoci", "new", "--image", f"{layout}:bench"])
        run(["umoci", "unpack", "--image", f"{layout}:bench", os.path.join(umoci, "bundle")])
        # Hard links: the same files without another copy of the tree on disk.
        run(f"cp -al {source}/. {umoci}/bundle/rootfs/")

    cases.append(
        Case("umoci repack", "gzip",
             [["umoci", "repack", "--image", f"{umoci}/layout:bench", f"{umoci}/bundle"]],
             setup=umoci_setup, output=os.path.join(umoci, "layout"),
             cleanup=lambda: remove(umoci))
    )

    if with_peers:
        buildah_root = output("buildah")
        buildah_out = output("buildah-oci")
        buildah = ["buildah", "--root", f"{buildah_root}/root", "--runroot",
                   f"{buildah_root}/run", "--storage-driver", "vfs"]
        container = "hoist-bench"

        def buildah_clean():
            if os.path.isdir(buildah_root):
                subprocess.run(buildah + ["rm", "--all"], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
            remove(buildah_root)
            remove(buildah_out)

        def buildah_setup():
            buildah_clean()
            run(buildah + ["from", "--name", container, "scratch"],
                env={"BUILDAH_ISOLATION": "chroot"})

        cases.append(
            Case("buildah copy + commit", "gzip",
                 [buildah + ["copy", "--quiet", container, f"{source}/", "/"],
                  buildah + ["commit", "--quiet", "--disable-compression=false", container,
                             f"oci:{buildah_out}:bench"]],
                 setup=buildah_setup, output=buildah_out,
                 env={"BUILDAH_ISOLATION": "chroot"},
                 cleanup=buildah_clean)
        )

        # Pushes: the hoist gzip layout is the source for both tools.
        push_source = output("push-source")
        if not os.path.exists(os.path.join(push_source, "index.json")):
            remove(push_source)
            run(hoist_build(gzip_spec, f"oci:{push_source}:bench"))
        counter = {"n": 0}

        def repository(prefix, host=registry.host):
            counter["n"] += 1
            slug = re.sub(r"[^a-z0-9]+", "-", prefix.lower()).strip("-")
            return f"docker://{host}/bench/{slug}-{counter['n']}:latest"

        # A small two-platform image (the example in fixtures/: five small
        # blobs, three manifests): round trips, not bytes, decide its push.
        small_source = output("push-small-source")
        if not os.path.exists(os.path.join(small_source, "index.json")):
            remove(small_source)
            run([hoist, "build", "-q", "--no-cache", "-f",
                 os.path.join(ROOT, "fixtures", "hello", "hoist.toml"),
                 "-o", f"oci:{small_source}:bench"])

        def hoist_copy(destination, source=push_source):
            return [hoist, "copy", "-q", f"oci:{source}:bench", destination]

        def skopeo_copy(destination, source=push_source):
            return ["skopeo", "copy", "-q", "--multi-arch", "all", "--dest-tls-verify=false",
                    f"oci:{source}:bench", destination]

        def hoist_copy_small(destination):
            return hoist_copy(destination, small_source)

        def skopeo_copy_small(destination):
            return skopeo_copy(destination, small_source)

        def fresh_push(command, prefix):
            case = Case(f"push fresh: {prefix}", "push", [None], registry=registry)

            def setup():
                registry.reset()
                case.steps = [command(repository(prefix))]

            case.setup = setup
            return case

        def again_push(command, prefix):
            case = Case(f"push again: {prefix}", "push", [None], registry=registry)

            def setup():
                destination = repository(prefix)
                run(command(destination))
                case.steps = [command(destination)]

            case.setup = setup
            return case

        cases.append(fresh_push(hoist_copy, "hoist copy"))
        cases.append(fresh_push(skopeo_copy, "skopeo copy"))
        cases.append(again_push(hoist_copy, "hoist copy"))
        cases.append(again_push(skopeo_copy, "skopeo copy"))
        cases.append(fresh_push(hoist_copy_small, "small image, hoist copy"))
        cases.append(fresh_push(skopeo_copy_small, "small image, skopeo copy"))
        cases.append(again_push(hoist_copy_small, "small image, hoist copy"))
        cases.append(again_push(skopeo_copy_small, "small image, skopeo copy"))

        build_push = Case(f"{GZIP} --output docker:// (no local output)", "push", [None],
                          registry=registry)

        def build_push_setup():
            registry.reset()
            build_push.steps = [hoist_build(gzip_spec, repository("build-push"))]

        build_push.setup = build_push_setup
        cases.append(build_push)

        # The same through the latency proxy: a registry a round trip away.
        def across_network(case_name, command, prefix):
            case = Case(case_name, "network", [None], registry=registry)

            def setup():
                registry.reset()
                case.steps = [command(repository(prefix, proxy.host))]

            case.setup = setup
            return case

        over = f"over {RTT_MS} ms RTT"
        cases.append(across_network(f"push fresh {over}: hoist copy", hoist_copy, "rtt hoist"))
        cases.append(across_network(f"push fresh {over}: skopeo copy", skopeo_copy, "rtt skopeo"))
        cases.append(across_network(f"push fresh {over}: small image, hoist copy",
                                    hoist_copy_small, "rtt small hoist"))
        cases.append(across_network(f"push fresh {over}: small image, skopeo copy",
                                    skopeo_copy_small, "rtt small skopeo"))
        cases.append(across_network(f"{GZIP} --output docker:// {over}",
                                    lambda destination: hoist_build(gzip_spec, destination),
                                    "rtt build-push"))

        # Layers side by side: two uncompressed layers of the same work (the
        # tree under two targets), so a layer's own work is one thread's (tar
        # and hash) and only building layers in parallel uses the cores. Two
        # different halves of the tree never weigh the same: /usr/lib and the
        # rest took 147 and 207 ms, which alone caps the speedup at 1.71.
        twice = os.path.join(specs, "twice", "hoist.toml")
        write_spec(
            twice,
            [
                {"name": "first", "source": source, "target": "/first"},
                {"name": "second", "source": source, "target": "/second"},
            ],
            "none",
            None,
        )
        for jobs in (1, cores):
            out = output(f"hoist-twice-j{jobs}")
            cases.append(
                Case(f"hoist build, 2 uncompressed layers, -j {jobs}", "parallel",
                     [hoist_build(twice, f"oci:{out}:bench", ["-j", str(jobs)])],
                     setup=fresh(out), output=out)
            )

        # Rebuilds: two layers, /usr/share and the rest, with a cache.
        layered = os.path.join(specs, "layered", "hoist.toml")
        write_spec(
            layered,
            [
                {"name": "system", "source": source, "target": "/", "exclude": ["usr/share"]},
                {"name": "share", "source": f"{source}/usr/share", "target": "/usr/share"},
            ],
            "gzip",
            GZIP_LEVEL,
        )
        cache = output("cache")
        rebuilt = output("rebuild-out")
        touched = first_file(source, "usr/share")
        cache_env = {"HOIST_CACHE": cache}

        def layers_built(figures):
            built = 0
            for line in figures[-1]["stdout"].splitlines():
                event = json.loads(line)
                if event.get("event") == "layer-done" and not event["cached"]:
                    built += 1
            return {"layers_built": built}

        def rebuild_command():
            return [hoist, "build", "--json", "-f", layered, "-o", f"oci:{rebuilt}:bench"]

        def cold_setup():
            remove(cache)
            remove(rebuilt)

        cases.append(
            Case("hoist build, 2 layers, cold cache", "rebuild", [rebuild_command()],
                 setup=cold_setup, env=cache_env, check=layers_built, output=rebuilt)
        )

        def warm(touch):
            def setup():
                if not os.path.isdir(cache):
                    run(rebuild_command(), env=cache_env)
                remove(rebuilt)
                if touch:
                    os.utime(touched, None)
            return setup

        cases.append(
            Case("hoist build, 2 layers, nothing changed", "rebuild", [rebuild_command()],
                 setup=warm(False), env=cache_env, check=layers_built, output=rebuilt)
        )
        cases.append(
            Case("hoist build, 2 layers, one file touched", "rebuild", [rebuild_command()],
                 setup=warm(True), env=cache_env, check=layers_built, output=rebuilt)
        )
        # A fresh CI runner with the layer cache in the registry.
        cases += registry_cache.cases(hoist, source, work, registry, proxy)
    if only:
        cases = [case for case in cases if re.search(only, case.name)]
    return cases


def count_entries(path):
    count = 0
    for _, directories, files in os.walk(path):
        count += len(directories) + len(files)
    return count


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--hoist", required=True)
    parser.add_argument("--hoist-static", help="the static release binary, measured beside")
    parser.add_argument("--rootfs", required=True)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--big-runs", type=int, default=5)
    parser.add_argument("--no-big", action="store_true")
    parser.add_argument("--only", metavar="REGEX",
                        help="run only the cases whose name matches (a partial run: targets "
                             "whose cases did not run are left out)")
    parser.add_argument("--results", default=os.path.join(ROOT, "benches", "results"))
    arguments = parser.parse_args()
    work = os.environ.get("HOIST_BENCH_WORK", "/var/tmp/hoist-bench")
    os.makedirs(work, exist_ok=True)
    cores = os.cpu_count() or 1
    warmups, runs, big_runs = 1, arguments.runs, arguments.big_runs
    big = not arguments.no_big
    if arguments.quick:
        warmups, runs, big = 0, 1, False
    shown = [a for a in sys.argv[1:] if a not in ("--hoist", arguments.hoist, "--rootfs",
                                                   arguments.rootfs, "--hoist-static",
                                                   arguments.hoist_static)]
    small, large = prepare_inputs(arguments.rootfs, work, big)

    load_before = loadavg()
    started = time.time()
    registry = Registry(work)
    registry.start()
    proxy = LatencyProxy(registry, RTT_MS)
    proxy.start()
    trees = {}
    try:
        plans = [("rootfs", small, True, runs)]
        if large:
            # The 1 GiB tree: the layer builders only (buildah's vfs copies
            # and the pushes scale the same way and would double the run).
            plans.append(("1 GiB", large, False, big_runs))
        for label, path, with_peers, count in plans:
            log(f"{label}: {path}")
            cases = build_cases(arguments.hoist, arguments.hoist_static, path, work, registry,
                                proxy, cores, label.replace(" ", ""), with_peers,
                                arguments.only)
            if not cases:
                continue
            run_rounds(cases, warmups, count)
            trees[label] = {
                "input": path,
                "input_bytes": tree_bytes(path),
                "entries": count_entries(path),
                "runs": count,
                "warmups": warmups,
                "cases": {case.name: case_summary(case) for case in cases},
            }
    finally:
        proxy.stop()
        registry.stop()
    load_after = loadavg()
    report = {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "arguments": shown,
        "machine": machine(),
        "versions": versions(arguments.hoist),
        "load_before": load_before,
        "load_after": load_after,
        "duration_s": round(time.time() - started),
        "note": (
            "wall and CPU are medians over the timed runs, peak RSS the maximum; the 1 GiB tree "
            f"runs {big_runs} times and only the layer builders; output MB is the whole output "
            "(layout or file)."
        ),
        "trees": trees,
    }
    report["targets"] = targets(trees, cores)
    for check in registry_cache.targets(trees.get("rootfs", {}).get("cases", {})):
        report["targets"].append({"tree": "rootfs", "unit": "×", "better": "lower",
                                  "cpu_ratio": None, **check})
    os.makedirs(arguments.results, exist_ok=True)
    with open(os.path.join(arguments.results, "latest.json"), "w") as out:
        json.dump(report, out, indent=2)
        out.write("\n")
    with open(os.path.join(arguments.results, "latest.md"), "w") as out:
        out.write(markdown(report))
    print(markdown(report))


if __name__ == "__main__":
    main()
