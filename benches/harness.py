"""Running and timing commands for benches/compare.py: wall and CPU of each
step (from wait4) and its peak RSS (from GNU time), the loopback
docker-registry and latency proxy the push cases use, and the alternating
rounds that every case's figures come from."""

import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

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
    """Runs a command; returns wall s, cpu s, rss MB, stdout.

    Wall and CPU come from wait4, as /usr/bin/time takes them, but at
    microsecond resolution: /usr/bin/time prints hundredths, which for the
    cases that take a tenth of a second is an error of several percent.
    CPU is the user+system time of the command and every process it waited
    for (both sides of a pipeline); RSS is that of its largest process.

    RSS comes from GNU time, which runs the command: Linux carries the
    peak RSS of the process that forks a command over into the command's
    own (across exec, and Python forks with vfork), so a command started
    straight from this script would never show less than the script's own
    peak, tens of MB. Forked from /usr/bin/time, the floor is time's 2 MB.
    """
    merged = dict(os.environ)
    merged.update(env or {})
    if isinstance(command, str):
        command = ["bash", "-o", "pipefail", "-c", command]
    with tempfile.TemporaryFile("w+") as stdout, tempfile.TemporaryFile("w+") as stderr, \
            tempfile.NamedTemporaryFile("r") as peak:
        command = ["/usr/bin/time", "--quiet", "--format=%M", f"--output={peak.name}", *command]
        started = time.perf_counter()
        process = subprocess.Popen(command, env=merged, cwd=cwd, stdin=subprocess.DEVNULL,
                                   stdout=stdout, stderr=stderr, text=True)
        _, status, usage = os.wait4(process.pid, 0)
        wall = time.perf_counter() - started
        # Reaped here, not by Popen: tell it, so it does not wait again.
        process.returncode = os.waitstatus_to_exitcode(status)
        stdout.seek(0)
        stderr.seek(0)
        if process.returncode != 0:
            raise RuntimeError(
                f"{' '.join(command)} failed ({process.returncode}):\n{stderr.read()[-4000:]}"
            )
        output = stdout.read()
        # GNU time gives ru_maxrss as Linux does, in KiB.
        peak_kib = int(peak.read().split()[-1])
    return {
        "wall": wall,
        "cpu": usage.ru_utime + usage.ru_stime,
        "rss_mb": peak_kib / 1024.0,
        "stdout": output,
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
    for key in ("layers_built", "layers_from_registry", "layers_uploaded"):
        values = [run[key] for run in case.runs if key in run]
        if values:
            summary[key] = values
    return summary


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
