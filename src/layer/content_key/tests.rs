use super::*;
use crate::layer::{Compression, LayerInput, OwnerPolicy, Permissions, TrackedFiles};
use crate::progress::Silent;
use std::path::Path;
use std::time::{Duration, SystemTime};

fn recipe(source: &Path, epoch: u64) -> LayerRecipe {
    LayerRecipe {
        name: "keyed".to_string(),
        inputs: vec![LayerInput {
            source: source.to_path_buf(),
            target: "/app".to_string(),
            mode: None,
            exclude: Vec::new(),
        }],
        owner: OwnerPolicy::Fixed { uid: 0, gid: 0 },
        permissions: Permissions::Normalize,
        remove: Vec::new(),
        epoch,
        compression: Compression::Gzip { level: 6 },
    }
}

fn tree(root: &Path) {
    std::fs::create_dir_all(root.join("etc")).unwrap();
    std::fs::write(root.join("etc/a"), b"first").unwrap();
    std::fs::write(root.join("b"), vec![7u8; 3 << 20]).unwrap();
    std::os::unix::fs::symlink("etc/a", root.join("link")).unwrap();
}

fn key(recipe: &LayerRecipe) -> String {
    let plan = crate::layer::plan_layer(recipe, &TrackedFiles::new(), &Silent).unwrap();
    content_key(recipe, &plan).unwrap()
}

fn set_mtime(path: &Path, seconds: u64) {
    std::fs::File::options()
        .write(true)
        .open(path)
        .unwrap()
        .set_modified(SystemTime::UNIX_EPOCH + Duration::from_secs(seconds))
        .unwrap();
}

#[test]
fn a_copy_elsewhere_at_another_time_has_the_same_key() {
    let work = tempfile::tempdir().unwrap();
    let first = work.path().join("checkout-one");
    let second = work.path().join("elsewhere/checkout-two");
    tree(&first);
    tree(&second);
    // Both newer than the epoch, so both are written as the same time.
    set_mtime(&first.join("b"), 2_000_000_000);
    set_mtime(&second.join("b"), 2_100_000_000);
    let epoch = 1_700_000_000;
    assert_eq!(key(&recipe(&first, epoch)), key(&recipe(&second, epoch)));
    // The epoch moves, but no time it clamps reaches the bytes differently.
    assert_eq!(
        key(&recipe(&first, epoch)),
        key(&recipe(&first, epoch + 86_400))
    );
}

#[test]
fn what_reaches_the_bytes_changes_the_key() {
    let work = tempfile::tempdir().unwrap();
    let source = work.path().join("source");
    tree(&source);
    let base = recipe(&source, 1_700_000_000);
    let original = key(&base);

    // A time up to the epoch is kept in the tar, so it is in the key.
    set_mtime(&source.join("etc/a"), 1_000_000_000);
    let old_time = key(&base);
    assert_ne!(old_time, original);

    let mut level = base.clone();
    level.compression = Compression::Gzip { level: 9 };
    assert_ne!(key(&level), old_time);

    let mut owner = base.clone();
    owner.owner = OwnerPolicy::Fixed {
        uid: 1000,
        gid: 1000,
    };
    assert_ne!(key(&owner), old_time);

    // Same size, other content.
    let mut contents = std::fs::read(source.join("b")).unwrap();
    contents[1 << 20] = 8;
    std::fs::write(source.join("b"), contents).unwrap();
    let changed = key(&base);
    assert_ne!(changed, old_time);

    std::fs::set_permissions(
        source.join("b"),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    assert_ne!(key(&base), changed);
}

#[test]
fn a_hard_link_is_keyed_apart_from_a_copy() {
    let work = tempfile::tempdir().unwrap();
    let linked = work.path().join("linked");
    let copied = work.path().join("copied");
    for root in [&linked, &copied] {
        std::fs::create_dir_all(root).unwrap();
        std::fs::write(root.join("one"), b"shared").unwrap();
    }
    std::fs::hard_link(linked.join("one"), linked.join("two")).unwrap();
    std::fs::write(copied.join("two"), b"shared").unwrap();
    assert_ne!(key(&recipe(&linked, 0)), key(&recipe(&copied, 0)));
}

#[test]
fn the_key_agrees_with_the_bytes_of_two_builds() {
    let work = tempfile::tempdir().unwrap();
    let first = work.path().join("one");
    let second = work.path().join("two");
    tree(&first);
    tree(&second);
    let built = |source: &Path| {
        let recipe = recipe(source, 1_700_000_000);
        let plan = crate::layer::plan_layer(&recipe, &TrackedFiles::new(), &Silent).unwrap();
        let layer =
            crate::layer::write_planned(&plan, &recipe, &work.path().join("blobs"), 2, None)
                .unwrap();
        (
            content_key(&recipe, &plan).unwrap(),
            layer.layer.blob.digest().clone(),
        )
    };
    let (first_key, first_digest) = built(&first);
    let (second_key, second_digest) = built(&second);
    assert_eq!(first_key, second_key);
    assert_eq!(first_digest, second_digest);
}
