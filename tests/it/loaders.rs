//! The loaders users put images into, run for real: podman loads hoist's
//! docker and OCI archives (the latter under the image's full name, from
//! `io.containerd.image.name` in `index.json`) and runs them (runtime
//! runc), and containerd imports a multi-platform OCI archive with
//! attestations under that full name and runs its amd64 image. The image
//! is busybox-static with an entrypoint that prints.
//!
//! Both run rootful with their state under a temporary directory: podman
//! with vfs storage and cgroupfs; containerd started here on a socket of its
//! own with the native snapshotter, and stopped after. This sandbox may not
//! raise resource limits, and podman asks runc to raise RLIMIT_NOFILE and
//! RLIMIT_NPROC by default (runc then fails with "error setting rlimit type
//! 7: operation not permitted"), so the podman runs give lower ones.

use crate::common::hoist::hoist;
use crate::common::run;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const GREETING: &str = "hello from hoist";
const REPOSITORY: &str = "registry.example/acme/hello";

/// A project whose image is busybox-static with `/bin/sh`, for `platforms`.
fn busybox_project(work: &Path, platforms: &str) -> PathBuf {
    let bin = work.join("app/bin");
    std::fs::create_dir_all(&bin).unwrap();
    std::fs::copy("/bin/busybox", bin.join("busybox")).unwrap();
    std::os::unix::fs::symlink("busybox", bin.join("sh")).unwrap();
    let spec = work.join("hoist.toml");
    std::fs::write(
        &spec,
        format!(
            "[[image]]\nname = \"hello\"\nrepository = \"{REPOSITORY}\"\n\
             platforms = [{platforms}]\nsource-date-epoch = 1700000000\n\n\
             [image.config]\nentrypoint = [\"/bin/sh\", \"-c\", \"echo {GREETING}\"]\n\n\
             [[image.layer]]\nsource = \"app\"\ntarget = \"/\"\n"
        ),
    )
    .unwrap();
    spec
}

/// podman with all its state under `root`.
fn podman(root: &Path) -> Command {
    let mut command = Command::new("podman");
    command
        .arg("--root")
        .arg(root.join("storage"))
        .arg("--runroot")
        .arg(root.join("run"))
        .args(["--storage-driver", "vfs", "--cgroup-manager", "cgroupfs"])
        .args(["--events-backend", "file", "--runtime", "runc"]);
    command
}

/// `podman load -i archive`, returning the name podman gave the image.
fn podman_load(root: &Path, archive: &Path) -> String {
    let output = run(podman(root).arg("load").arg("-i").arg(archive));
    output
        .lines()
        .find_map(|line| line.strip_prefix("Loaded image: "))
        .unwrap_or_else(|| panic!("podman load named no image: {output}"))
        .trim()
        .to_string()
}

/// What `podman run` of `image` prints, never pulling.
fn podman_run(root: &Path, image: &str) -> String {
    run(podman(root)
        .args(["run", "--rm", "--pull", "never", "--network", "none"])
        .args([
            "--ulimit",
            "nofile=1024:1024",
            "--ulimit",
            "nproc=1024:1024",
        ])
        .arg(image))
}

#[test]
fn podman_loads_and_runs_the_docker_and_oci_archives() {
    let work = tempfile::tempdir().unwrap();
    let spec = busybox_project(work.path(), "\"linux/amd64\"");
    hoist(["build", "-f"])
        .arg(&spec)
        .args(["-o", "docker-archive:docker.tar"])
        .args(["-o", "oci-archive:app.tar:v1"])
        .current_dir(work.path())
        .run()
        .success();
    let root = work.path().join("podman");
    let loaded = podman_load(&root, &work.path().join("docker.tar"));
    assert_eq!(loaded, "localhost/hello:latest");
    assert_eq!(podman_run(&root, &loaded).trim(), GREETING);
    // podman names an OCI archive by `io.containerd.image.name` where
    // there is one (else `localhost/<ref.name>:latest`).
    let root = work.path().join("podman-oci");
    let loaded = podman_load(&root, &work.path().join("app.tar"));
    assert_eq!(loaded, format!("{REPOSITORY}:v1"));
    assert_eq!(podman_run(&root, &loaded).trim(), GREETING);
    // skopeo still finds the image by the tag its location gave.
    run(Command::new("skopeo")
        .args(["inspect", "--raw", "oci-archive:app.tar:v1"])
        .current_dir(work.path()));
}

/// containerd on a socket of its own, its state under a temporary
/// directory; stopped when dropped.
struct Containerd {
    child: Child,
    socket: PathBuf,
}

impl Containerd {
    fn start(root: &Path) -> Containerd {
        std::fs::create_dir_all(root).unwrap();
        let socket = root.join("containerd.sock");
        let config = root.join("config.toml");
        std::fs::write(
            &config,
            format!(
                "version = 2\nroot = \"{root}/root\"\nstate = \"{root}/state\"\n\
                 disabled_plugins = [\"io.containerd.grpc.v1.cri\"]\n\
                 [grpc]\n  address = \"{socket}\"\n\
                 [ttrpc]\n  address = \"{socket}.ttrpc\"\n",
                root = root.display(),
                socket = socket.display()
            ),
        )
        .unwrap();
        let log = std::fs::File::create(root.join("containerd.log")).unwrap();
        let child = Command::new("containerd")
            .arg("--config")
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("containerd starts");
        let containerd = Containerd { child, socket };
        let deadline = Instant::now() + Duration::from_secs(30);
        while !containerd
            .ctr()
            .arg("version")
            .output()
            .unwrap()
            .status
            .success()
        {
            assert!(
                Instant::now() < deadline,
                "containerd did not answer on {} within 30 s: {}",
                containerd.socket.display(),
                std::fs::read_to_string(root.join("containerd.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        containerd
    }

    fn ctr(&self) -> Command {
        let mut command = Command::new("ctr");
        command.arg("--address").arg(&self.socket);
        command
    }
}

impl Drop for Containerd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn containerd_imports_the_platforms_under_the_full_name_and_runs_one() {
    let work = tempfile::tempdir().unwrap();
    let spec = busybox_project(work.path(), "\"linux/amd64\", \"linux/arm64\"");
    hoist(["build", "--sbom", "-f"])
        .arg(&spec)
        .args(["-o", "oci-archive:app.tar:v1"])
        .current_dir(work.path())
        .run()
        .success();
    let containerd = Containerd::start(&work.path().join("containerd"));
    let archive = work.path().join("app.tar");
    run(containerd
        .ctr()
        .args([
            "images",
            "import",
            "--all-platforms",
            "--snapshotter",
            "native",
        ])
        .arg(&archive));
    let name = format!("{REPOSITORY}:v1");
    let listing = run(containerd.ctr().args(["images", "ls"]));
    let line = listing
        .lines()
        .find(|line| line.split_whitespace().next() == Some(name.as_str()))
        .unwrap_or_else(|| panic!("no image named {name}: {listing}"));
    // REF TYPE DIGEST SIZE PLATFORMS LABELS, the size in two words.
    let platforms = line
        .split_whitespace()
        .find(|word| word.contains("linux/"))
        .unwrap_or_default();
    for platform in ["linux/amd64", "linux/arm64"] {
        assert!(
            platforms.split(',').any(|found| found == platform),
            "{line}"
        );
    }
    let output = run(containerd
        .ctr()
        .args([
            "run",
            "--rm",
            "--snapshotter",
            "native",
            "--platform",
            "linux/amd64",
        ])
        .args([&name, "hello-amd64"]));
    assert_eq!(output.trim(), GREETING);
}
