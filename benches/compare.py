#!/usr/bin/env python3
"""The side-by-side benchmark behind benches/compare.sh.

Every case is a command timed with /usr/bin/time (wall, user+sys CPU, peak
RSS of the largest process), after an untimed setup that puts the scene in
place. Cases run alternated, round by round, after a warm-up round; the
figures are the median, min and max over the timed rounds. Results go to
benches/results/latest.json and latest.md.
"""

import argparse
import datetime
import json
import os
import platform
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

EPOCH = 1700000000
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def log(message):
    print(message, file=sys.stderr, flush=True)


def run(command, env=None, cwd=None, capture=False):
    """Runs an untimed command; fails loudly."""
    merged = dict(os.environ)
    merged.update(env or {})
    result = subprocess.run(
        command,
        env=merged,
        cwd=cwd,
        stdout=subprocess.PIPE if capture else subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        shell=isinstance(command, str),
    )
    if result.returncode != 0:
        raise RuntimeError(f"{command} failed ({result.returncode}):\n{result.stderr[-4000:]}")
    return result.stdout if capture else None


def timed(command, env=None, cwd=None):
    """Runs a command under /usr/bin/time; returns wall s, cpu s, rss MB, stdout."""
    merged = dict(os.environ)
    merged.update(env or {})
    with tempfile.NamedTemporaryFile("r", suffix=".time") as report:
        if isinstance(command, str):
            command = ["bash", "-o", "pipefail", "-c", command]
        result = subprocess.run(
            ["/usr/bin/time", "-f", "%e %U %S %M", "-o", report.name] + command,
            env=merged,
            cwd=cwd,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        if result.returncode != 0:
            raise RuntimeError(
                f"{' '.join(command)} failed ({result.returncode}):\n{result.stderr[-4000:]}"
            )
        fields = report.read().split()[-4:]
    wall, user, system, rss_kb = (float(value) for value in fields)
    return {
        "wall": wall,
        "cpu": user + system,
        "rss_mb": rss_kb / 1024.0,
        "stdout": result.stdout,
    }


def tree_bytes(path):
    """Apparent size of a file or every regular file under a directory."""
    if os.path.isfile(path):
        return os.path.getsize(path)
    total = 0
    for directory, _, files in os.walk(path):
        for name in files:
            full = os.path.join(directory, name)
            if os.path.isfile(full) and not os.path.islink(full):
                total += os.lstat(full).st_size
    return total


def remove(path):
    if os.path.islink(path) or os.path.isfile(path):
        os.unlink(path)
    elif os.path.isdir(path):
        shutil.rmtree(path)


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for_port(port, what):
    """Returns once something listens on the loopback `port`."""
    for _ in range(200):
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"{what} did not listen on 127.0.0.1:{port}")


def stop_process(process):
    """SIGTERM, then SIGKILL if it has not gone within 10 s."""
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


class Registry:
    """Debian's docker-registry on a loopback port; `reset` wipes its storage."""

    def __init__(self, work):
        self.directory = os.path.join(work, "registry")
        self.process = None
        self.port = free_port()

    @property
    def host(self):
        return f"127.0.0.1:{self.port}"

    def start(self):
        remove(self.directory)
        os.makedirs(self.directory)
        config = os.path.join(self.directory, "config.yml")
        with open(config, "w") as out:
            out.write(
                "version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\n"
                f"storage:\n  filesystem:\n    rootdirectory: {self.directory}/storage\n"
                f"http:\n  addr: {self.host}\n  secret: bench\n"
            )
        self.log = open(os.path.join(self.directory, "..", "registry.log"), "a")
        self.process = subprocess.Popen(
            ["docker-registry", "serve", config],
            stdout=self.log,
            stderr=self.log,
            stdin=subprocess.DEVNULL,
        )
        wait_for_port(self.port, "docker-registry")

    def stop(self):
        if self.process is not None:
            stop_process(self.process)
            self.process = None
            self.log.close()

    def cpu_seconds(self):
        """User+system CPU the registry process has used so far."""
        with open(f"/proc/{self.process.pid}/stat") as handle:
            # Fields after the command name, which is in parentheses.
            fields = handle.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def reset(self):
        """An empty registry: every blob of the next push is new to it."""
        self.stop()
        self.start()


# The round trip of the "across a network" push cases.
RTT_MS = 20


class LatencyProxy:
    """benches/latency_proxy.py in front of the registry: every byte waits
    half the round trip each way, as across a network (bandwidth is not
    limited), so the push cases show what round trips cost."""

    def __init__(self, registry, rtt_ms):
        self.registry = registry
        self.rtt_ms = rtt_ms
        self.port = free_port()
        self.process = None

    @property
    def host(self):
        return f"127.0.0.1:{self.port}"

    def start(self):
        script = os.path.join(ROOT, "benches", "latency_proxy.py")
        self.process = subprocess.Popen(
            [sys.executable, script, str(self.port), self.registry.host, str(self.rtt_ms / 2)],
            stdin=subprocess.DEVNULL,
        )
        wait_for_port(self.port, "the latency proxy")

    def stop(self):
        if self.process is not None:
            stop_process(self.process)
            self.process = None


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


class Case:
    """One timed scenario. `steps` are timed one after another; a run's
    figures are their sum (wall, CPU) and maximum (RSS)."""

    def __init__(self, name, group, steps, setup=None, output=None, env=None, check=None,
                 cleanup=None, registry=None):
        self.name = name
        # A push case also records the CPU the loopback registry spends on
        # the same push: it runs on the same cores as the tool measured.
        self.registry = registry
        self.group = group
        self.steps = steps
        self.setup = setup
        self.output = output
        self.env = env or {}
        self.check = check
        # Outputs go once measured: on a shared disk the 1 GiB cases would
        # otherwise hold several GB.
        self.cleanup = cleanup or (lambda: remove(output) if output else None)
        self.runs = []

    def run_once(self, record):
        if self.setup:
            self.setup()
        figures = []
        registry_before = self.registry.cpu_seconds() if self.registry else None
        for step in self.steps:
            figures.append(timed(step, env=self.env))
        result = {
            "wall": sum(f["wall"] for f in figures),
            "cpu": sum(f["cpu"] for f in figures),
            "rss_mb": max(f["rss_mb"] for f in figures),
            "steps": [{k: f[k] for k in ("wall", "cpu", "rss_mb")} for f in figures],
        }
        if self.registry:
            result["registry_cpu"] = self.registry.cpu_seconds() - registry_before
        if self.output:
            result["size"] = tree_bytes(self.output)
        if self.check:
            result.update(self.check(figures) or {})
        self.cleanup()
        if record:
            self.runs.append(result)
        return result


def summarize(values):
    return {
        "median": statistics.median(values),
        "min": min(values),
        "max": max(values),
    }


def case_summary(case):
    summary = {"group": case.group, "runs": len(case.runs)}
    for metric in ("wall", "cpu", "rss_mb", "size", "registry_cpu"):
        values = [run[metric] for run in case.runs if metric in run]
        if values:
            summary[metric] = summarize(values)
    if case.runs and len(case.runs[0]["steps"]) > 1:
        summary["steps"] = [
            {
                metric: summarize([run["steps"][index][metric] for run in case.runs])
                for metric in ("wall", "cpu", "rss_mb")
            }
            for index in range(len(case.runs[0]["steps"]))
        ]
    for key in ("layers_built",):
        values = [run[key] for run in case.runs if key in run]
        if values:
            summary[key] = values
    return summary


def build_cases(hoist, inputs, work, registry, proxy, cores, tree_label, with_peers):
    """The cases for one input tree."""
    source = inputs
    scratch = os.path.join(work, "scratch", tree_label)
    specs = os.path.join(work, "specs", tree_label)
    os.makedirs(scratch, exist_ok=True)
    one_layer = [{"name": "rootfs", "source": source, "target": "/"}]
    gzip_spec = os.path.join(specs, "gzip", "hoist.toml")
    zstd_spec = os.path.join(specs, "zstd", "hoist.toml")
    write_spec(gzip_spec, one_layer, "gzip", 6)
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
        Case("hoist build gzip-6", "gzip", [hoist_build(gzip_spec, f"oci:{out}:bench")],
             setup=fresh(out), output=out)
    )
    out = output("hoist-gzip-1core")
    cases.append(
        Case("hoist build gzip-6, 1 core", "limits",
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

        build_push = Case("hoist build gzip-6 --output docker:// (no local output)", "push", [None],
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
        cases.append(across_network(f"hoist build gzip-6 --output docker:// {over}",
                                    lambda destination: hoist_build(gzip_spec, destination),
                                    "rtt build-push"))

        # Layers side by side: two uncompressed layers of about the same size
        # (/usr/lib and the rest), so a layer's own work is one thread's
        # (tar and hash) and only building layers in parallel uses the cores.
        halves = os.path.join(specs, "halves", "hoist.toml")
        write_spec(
            halves,
            [
                {"name": "lib", "source": f"{source}/usr/lib", "target": "/usr/lib"},
                {"name": "rest", "source": source, "target": "/", "exclude": ["usr/lib"]},
            ],
            "none",
            None,
        )
        for jobs in (1, cores):
            out = output(f"hoist-halves-j{jobs}")
            cases.append(
                Case(f"hoist build, 2 uncompressed layers, -j {jobs}", "parallel",
                     [hoist_build(halves, f"oci:{out}:bench", ["-j", str(jobs)])],
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
            6,
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
    return cases


def run_rounds(cases, warmups, runs):
    total = warmups + runs
    for round_index in range(total):
        record = round_index >= warmups
        shift = round_index % len(cases)
        order = cases[shift:] + cases[:shift]
        label = "warm-up" if not record else f"run {round_index - warmups + 1}/{runs}"
        for case in order:
            result = case.run_once(record)
            log(f"  [{label}] {case.name}: {result['wall']:.2f} s wall, "
                f"{result['cpu']:.2f} s cpu, {result['rss_mb']:.0f} MB")


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
        pair("hoist gzip / umoci repack, wall", tree, "hoist build gzip-6", "umoci repack", 0.6)
        pair("hoist gzip / buildah copy+commit, wall", tree, "hoist build gzip-6",
             "buildah copy + commit", 0.3)
        add("hoist gzip output / umoci output, size", ratio(results, tree, "hoist build gzip-6",
            "umoci repack", "size"), 1.0, tree=tree)
        add("hoist gzip output / buildah output, size", ratio(results, tree, "hoist build gzip-6",
            "buildah copy + commit", "size"), 1.0, tree=tree)
        for codec, multi, single in (
            ("gzip", "hoist build gzip-6", "hoist build gzip-6, 1 core"),
            ("zstd", "hoist build zstd-3", "hoist build zstd-3, 1 core"),
        ):
            speedup = ratio(results, tree, single, multi)
            if speedup is not None:
                add(f"{codec} throughput / ({cores} × single-core)", speedup / cores, 0.85,
                    better="higher", tree=tree)
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
             "hoist build gzip-6 --output docker:// (no local output)", "hoist build gzip-6", 1.15)
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
        gzip = results[tree]["cases"].get("hoist build gzip-6")
        if gzip:
            add("peak RSS, hoist gzip single layer", gzip["rss_mb"]["max"], 100, tree=tree,
                unit="MB")
    if "rootfs" in results and "1 GiB" in results:
        small = results["rootfs"]
        large = results["1 GiB"]
        for name in ("hoist build gzip-6", "hoist build zstd-3"):
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


def count_entries(path):
    count = 0
    for _, directories, files in os.walk(path):
        count += len(directories) + len(files)
    return count


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--hoist", required=True)
    parser.add_argument("--rootfs", required=True)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--big-runs", type=int, default=5)
    parser.add_argument("--no-big", action="store_true")
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
                                                   arguments.rootfs)]
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
            cases = build_cases(arguments.hoist, path, work, registry, proxy, cores,
                                label.replace(" ", ""), with_peers)
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
    os.makedirs(arguments.results, exist_ok=True)
    with open(os.path.join(arguments.results, "latest.json"), "w") as out:
        json.dump(report, out, indent=2)
        out.write("\n")
    with open(os.path.join(arguments.results, "latest.md"), "w") as out:
        out.write(markdown(report))
    print(markdown(report))


if __name__ == "__main__":
    main()
