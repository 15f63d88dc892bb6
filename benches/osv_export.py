"""A generated OSV export for benches/scan.py: one all.zip per ecosystem, as
OSV publishes them (`Debian/all.zip`, `PyPI/all.zip`, ...), 100,000 records
in all, the same bytes on every run (a fixed seed, fixed zip times).

A share of the Debian records names the source packages of the root
filesystem scanned, for its release and others, with every range form the
matcher reads (introduced/fixed above and below the installed version,
unfixed, last_affected, limit, versions lists, GIT ranges it skips), so
matching does real work; the rest name made-up packages. Records carry
CVSS v3.1 and v4.0 vectors, ecosystem ratings, aliases shared across
ecosystems (a Debian record's CVE named by a GHSA), and the details and
references real records have, which the reader must skip.
"""

import hashlib
import json
import os
import random
import zipfile

# Bumped when what is generated changes, so a cached export is made again.
FORMAT = 1
SEED = 0x05C4
# (directory and ecosystem, records); 100,000 in all.
ECOSYSTEMS = [
    ("Debian", 40000),
    ("Ubuntu", 12000),
    ("PyPI", 15000),
    ("npm", 15000),
    ("Go", 6000),
    ("Maven", 5000),
    ("crates.io", 3000),
    ("Alpine", 4000),
]
# The share of Debian and Ubuntu records naming a source package of the
# fixture (76 of them): 4,000 Debian records, 2,400 of them for its release,
# some 30 a package, as OSV's Debian export holds for the packages of a
# minbase system (glibc, openssl, perl, systemd, ...).
ON_FIXTURE = 0.1
WORDS = ("buffer overflow in the parser allows remote attackers to cause a denial of service "
         "or possibly execute arbitrary code via a crafted file that triggers an out-of-bounds "
         "read when the length field is not checked against the remaining input").split()


def fixture_packages(rootfs):
    """(source package, its version) of every dpkg package in `rootfs`, and
    the release (`VERSION_ID` of os-release)."""
    sources = {}
    with open(os.path.join(rootfs, "var/lib/dpkg/status"), encoding="utf-8") as handle:
        for stanza in handle.read().split("\n\n"):
            fields = {}
            for line in stanza.splitlines():
                if line and not line[0].isspace() and ":" in line:
                    key, value = line.split(":", 1)
                    fields[key] = value.strip()
            if "Package" not in fields or "Version" not in fields:
                continue
            source, version = fields.get("Source", fields["Package"]), fields["Version"]
            if " (" in source:
                source, version = source[:-1].split(" (", 1)
            sources[source] = version
    release = ""
    with open(os.path.join(rootfs, "etc/os-release"), encoding="utf-8") as handle:
        for line in handle:
            if line.startswith("VERSION_ID="):
                release = line.split("=", 1)[1].strip().strip('"')
    return sorted(sources.items()), release


def cvss3(rng):
    pick = lambda values: rng.choice(values)  # noqa: E731
    return (f"CVSS:3.1/AV:{pick('NALP')}/AC:{pick('LH')}/PR:{pick('NLH')}/UI:{pick('NR')}"
            f"/S:{pick('UC')}/C:{pick('HLN')}/I:{pick('HLN')}/A:{pick('HLN')}")


def cvss4(rng):
    pick = lambda values: rng.choice(values)  # noqa: E731
    vector = (f"CVSS:4.0/AV:{pick('NALP')}/AC:{pick('LH')}/AT:{pick('NP')}/PR:{pick('NLH')}"
              f"/UI:{pick('NPA')}/VC:{pick('HLN')}/VI:{pick('HLN')}/VA:{pick('HLN')}"
              f"/SC:{pick('HLN')}/SI:{pick('HLN')}/SA:{pick('HLN')}")
    if rng.random() < 0.2:
        vector += f"/E:{pick('APU')}"
    return vector


def severities(rng):
    draw = rng.random()
    if draw < 0.4:
        return [{"type": "CVSS_V3", "score": cvss3(rng)}]
    if draw < 0.6:
        return [{"type": "CVSS_V4", "score": cvss4(rng)}]
    if draw < 0.75:
        return [{"type": "CVSS_V3", "score": cvss3(rng)}, {"type": "CVSS_V4", "score": cvss4(rng)}]
    return []


def semver(rng):
    return f"{rng.randrange(0, 12)}.{rng.randrange(0, 30)}.{rng.randrange(0, 40)}"


def dpkg_ranges(rng, installed):
    """Affected versions of a fixture package around its installed one."""
    above, below = f"{installed}+deb12u{rng.randrange(1, 9)}", f"0.{rng.randrange(1, 99)}-1"
    draw = rng.random()
    if draw < 0.3:
        events = [{"introduced": "0"}, {"fixed": above}]
    elif draw < 0.6:
        events = [{"introduced": "0"}, {"fixed": below}]
    elif draw < 0.7:
        events = [{"introduced": "0"}]
    elif draw < 0.78:
        events = [{"introduced": "0"}, {"last_affected": rng.choice([above, below])}]
    elif draw < 0.84:
        events = [{"introduced": below}, {"limit": rng.choice([above, below])}]
    elif draw < 0.92:
        listed = [f"0.{n}-1" for n in range(rng.randrange(1, 30))]
        if rng.random() < 0.5:
            listed.append(installed)
        return [], listed
    else:
        return [{"type": "GIT", "repo": "https://git.example.org/source.git",
                 "events": [{"introduced": "0"}, {"fixed": "%040x" % rng.getrandbits(160)}]}], []
    return [{"type": "ECOSYSTEM", "events": events}], []


def details(rng):
    return " ".join(rng.choice(WORDS) for _ in range(rng.randrange(30, 120))).capitalize() + "."


def cve(number):
    return f"CVE-{2015 + number % 11}-{number:05d}"


def record(rng, ecosystem, number, fixture, release):
    """The `number`th record: a Debian or Ubuntu one is about CVE `number`;
    a language one aliases a CVE of the distributions' range, as a GHSA
    names the CVE a distribution tracks."""
    own = cve(number)
    affected = {"package": {}, "ranges": [], "versions": []}
    result = {"schema_version": "1.6.0", "modified": f"2026-{1 + number % 12:02d}-"
              f"{1 + number % 28:02d}T{number % 24:02d}:00:00Z", "published": "2024-01-01T00:00:00Z",
              "summary": " ".join(rng.choice(WORDS) for _ in range(8)), "details": details(rng),
              "references": [{"type": "WEB", "url": f"https://security.example.org/{own}/{n}"}
                             for n in range(rng.randrange(1, 5))]}
    if ecosystem in ("Debian", "Ubuntu"):
        on_fixture = rng.random() < ON_FIXTURE
        name, installed = (rng.choice(fixture) if on_fixture
                           else (f"package-{rng.randrange(4000)}", "1.0-1"))
        if ecosystem == "Debian":
            result["id"] = rng.choice([f"DEBIAN-{own}"] * 6 + [f"DSA-{number}-1", f"DLA-{number}-1"])
            result["upstream" if result["id"].startswith("DEBIAN") else "aliases"] = [own]
            suite = rng.choice([release] * 3 + ["11", "13"])
            affected["package"] = {"ecosystem": f"Debian:{suite}", "name": name}
            affected["ecosystem_specific"] = {"urgency": rng.choice(
                ["not yet assigned"] * 4 + ["unimportant", "low", "medium", "high"])}
        else:
            result["id"] = f"UBUNTU-{own}"
            result["upstream"] = [own]
            affected["package"] = {"ecosystem": "Ubuntu:22.04:LTS", "name": name}
            affected["ecosystem_specific"] = {"priority": rng.choice(["low", "medium", "high"])}
        affected["ranges"], affected["versions"] = dpkg_ranges(rng, installed)
    else:
        prefix = {"PyPI": "PYSEC", "Go": "GO", "crates.io": "RUSTSEC", "Alpine": "ALPINE"}
        if ecosystem in prefix and rng.random() < 0.5:
            result["id"] = f"{prefix[ecosystem]}-{2015 + number % 11}-{number}"
        else:
            result["id"] = "GHSA-" + "-".join(
                "".join(rng.choice("23456789cfghjmpqrvwx") for _ in range(4)) for _ in range(3))
        result["aliases"] = [cve(rng.randrange(1, 52001))]
        result["severity"] = severities(rng)
        name = f"library-{rng.randrange(6000)}"
        if ecosystem == "Maven":
            name = f"org.example:{name}"
        elif ecosystem == "Alpine":
            ecosystem = f"Alpine:v3.{rng.randrange(15, 21)}"
        affected["package"] = {"ecosystem": ecosystem, "name": name}
        events = [{"introduced": rng.choice(["0", semver(rng)])}]
        if rng.random() < 0.8:
            events.append({"fixed": semver(rng)})
        affected["ranges"] = [{"type": "SEMVER" if rng.random() < 0.5 else "ECOSYSTEM",
                               "events": events}]
        affected["database_specific"] = {"severity": rng.choice(
            ["LOW", "MODERATE", "HIGH", "CRITICAL"])}
    result["affected"] = [{key: value for key, value in affected.items() if value}]
    if rng.random() < 0.01:
        result["withdrawn"] = "2026-01-01T00:00:00Z"
    return result


def write(directory, rootfs):
    """Writes the export under `directory` (made again only when the
    generator or the fixture's packages changed); returns the record count."""
    fixture, release = fixture_packages(rootfs)
    stamp = hashlib.sha256(json.dumps([FORMAT, SEED, ECOSYSTEMS, ON_FIXTURE, fixture, release])
                           .encode()).hexdigest()
    marker = directory + ".complete"
    total = sum(count for _, count in ECOSYSTEMS)
    if os.path.exists(marker) and open(marker).read() == stamp:
        return total
    rng = random.Random(SEED)
    number = 0
    for ecosystem, count in ECOSYSTEMS:
        os.makedirs(os.path.join(directory, ecosystem), exist_ok=True)
        path = os.path.join(directory, ecosystem, "all.zip")
        with zipfile.ZipFile(path + ".part", "w", zipfile.ZIP_DEFLATED) as archive:
            for _ in range(count):
                number += 1
                generated = record(rng, ecosystem, number, fixture, release)
                entry = zipfile.ZipInfo(f"{generated['id']}.json", (1980, 1, 1, 0, 0, 0))
                entry.compress_type = zipfile.ZIP_DEFLATED
                archive.writestr(entry, json.dumps(generated, indent=2))
        os.replace(path + ".part", path)
    with open(marker, "w") as out:
        out.write(stamp)
    return total
