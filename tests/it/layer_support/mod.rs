//! Building layers from files on disk and reading them back, for the layer tests.
#![allow(dead_code)]

use crate::common;
use hoist::layer::{
    BuiltLayer, Compression, LayerInput, LayerRecipe, OwnerPolicy, Permissions, build_layer,
};
use hoist::progress::Silent;
use std::fs;
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, SystemTime};

pub const EPOCH: u64 = 1_700_000_000;

/// One tar entry as read back.
#[derive(Debug)]
pub struct Entry {
    pub path: Vec<u8>,
    pub kind: tar::EntryType,
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
    pub mtime: u64,
    pub link: Option<Vec<u8>>,
    pub content: Vec<u8>,
    pub pax: Vec<(String, Vec<u8>)>,
    pub username: Vec<u8>,
    pub groupname: Vec<u8>,
    pub device: Option<(u32, u32)>,
}

impl Entry {
    pub fn path(&self) -> String {
        String::from_utf8_lossy(&self.path).into_owned()
    }
}

pub fn input(source: &Path, target: &str) -> LayerInput {
    LayerInput {
        source: source.to_path_buf(),
        target: target.to_string(),
        mode: None,
        exclude: Vec::new(),
    }
}

pub fn recipe(inputs: Vec<LayerInput>) -> LayerRecipe {
    LayerRecipe {
        name: "test".to_string(),
        inputs,
        owner: OwnerPolicy::Fixed { uid: 0, gid: 0 },
        permissions: Permissions::Normalize,
        remove: Vec::new(),
        epoch: EPOCH,
        compression: Compression::None,
    }
}

pub fn build(recipe: &LayerRecipe, blobs: &Path) -> BuiltLayer {
    build_layer(recipe, blobs, 2, &Silent).expect("layer builds")
}

pub fn read_entries(tar_bytes: &[u8]) -> Vec<Entry> {
    let mut archive = tar::Archive::new(tar_bytes);
    let mut entries = Vec::new();
    for entry in archive.entries().expect("tar entries") {
        let mut entry = entry.expect("tar entry");
        let pax = match entry.pax_extensions().expect("pax") {
            Some(records) => records
                .map(|record| {
                    let record = record.expect("pax record");
                    (
                        record.key().expect("utf-8 key").to_string(),
                        record.value_bytes().to_vec(),
                    )
                })
                .collect(),
            None => Vec::new(),
        };
        let header = entry.header().clone();
        let kind = header.entry_type();
        let device = if kind.is_character_special() || kind.is_block_special() {
            Some((
                header.device_major().unwrap().unwrap(),
                header.device_minor().unwrap().unwrap(),
            ))
        } else {
            None
        };
        let path = entry.path_bytes().into_owned();
        let link = entry.link_name_bytes().map(|link| link.into_owned());
        let mut content = Vec::new();
        entry.read_to_end(&mut content).expect("entry content");
        entries.push(Entry {
            path,
            kind,
            mode: header.mode().unwrap(),
            uid: header.uid().unwrap(),
            gid: header.gid().unwrap(),
            mtime: header.mtime().unwrap(),
            link,
            content,
            pax,
            username: header.username_bytes().unwrap_or_default().to_vec(),
            groupname: header.groupname_bytes().unwrap_or_default().to_vec(),
            device,
        });
    }
    entries
}

pub fn built_entries(layer: &BuiltLayer) -> Vec<Entry> {
    read_entries(&fs::read(&layer.blob_path).expect("blob"))
}

pub fn find<'a>(entries: &'a [Entry], path: &str) -> &'a Entry {
    entries
        .iter()
        .find(|entry| entry.path == path.as_bytes())
        .unwrap_or_else(|| panic!("no entry {path} in {:?}", paths(entries)))
}

pub fn paths(entries: &[Entry]) -> Vec<String> {
    entries.iter().map(Entry::path).collect()
}

pub fn write(path: &Path, content: &[u8]) {
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).unwrap();
    }
    fs::write(path, content).unwrap();
}

pub fn set_mode(path: &Path, mode: u32) {
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
}

pub fn set_mtime(path: &Path, seconds: u64) {
    let file = fs::File::options().write(true).open(path).unwrap();
    file.set_modified(SystemTime::UNIX_EPOCH + Duration::from_secs(seconds))
        .unwrap();
}

pub fn gnu_listing(path: &Path) -> String {
    common::run(
        Command::new("tar")
            .arg("--numeric-owner")
            .arg("-tvf")
            .arg(path),
    )
}
