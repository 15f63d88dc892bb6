//! Random stores of blobs for the layout and archive readers: documents made
//! in order, each manifest or index pointing at earlier ones by their real
//! digest and size (so readers get past verification into the tree walk),
//! now and then with a wrong size, digest, media type or platform.

use hoist::oci::{media_type, sha256_digest};
use proptest::prelude::*;
use serde_json::{Value, json};

/// How a descriptor differs from the truth about what it points at.
#[derive(Clone, Debug)]
pub enum Perturbation {
    None,
    Size(u64),
    Digest(String),
    MediaType(String),
}

/// A `Link::target` meaning the latest document made so far: chains of
/// indexes and a top that names the last document reach deepest.
const LATEST: usize = usize::MAX;

/// A descriptor of an earlier document (`target` modulo how many there are).
#[derive(Clone, Debug)]
pub struct Link {
    target: usize,
    perturbation: Perturbation,
    platform: Option<(String, String)>,
    tag: Option<String>,
}

#[derive(Clone, Debug)]
pub enum Document {
    Raw(Vec<u8>),
    Json(Value),
    Image {
        config: Link,
        layers: Vec<Link>,
        docker: bool,
    },
    Index {
        children: Vec<Link>,
        docker: bool,
    },
}

/// A store: its documents, the top `index.json`, and which documents are
/// missing from it.
#[derive(Clone, Debug)]
pub struct Store {
    pub documents: Vec<Document>,
    pub top: Vec<Link>,
    pub missing: Vec<bool>,
    pub valid_layout_file: bool,
}

/// A built document: its bytes and how to describe it.
pub struct Blob {
    pub bytes: Vec<u8>,
    pub media_type: &'static str,
    pub hex: String,
}

pub fn tag() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("latest".to_string()),
        Just("v1".to_string()),
        "\\PC{0,8}"
    ]
}

fn digest_text() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(format!("sha256:{}", "a".repeat(64))),
        Just("sha256:ABC".to_string()),
        Just("sha256:../../../../etc/passwd".to_string()),
        Just(format!("sha512:{}", "0".repeat(128))),
        Just("md5:d41d8cd98f00b204e9800998ecf8427e".to_string()),
        "\\PC{0,20}",
    ]
}

fn perturbation() -> impl Strategy<Value = Perturbation> {
    prop_oneof![
        30 => Just(Perturbation::None),
        1 => prop_oneof![any::<u64>(), 0u64..2000].prop_map(Perturbation::Size),
        1 => digest_text().prop_map(Perturbation::Digest),
        1 => prop_oneof![
            Just(media_type::OCI_INDEX.to_string()),
            Just(media_type::OCI_MANIFEST.to_string()),
            Just(media_type::DOCKER_MANIFEST_LIST.to_string()),
            Just(media_type::OCI_LAYER_ZSTD.to_string()),
            "\\PC{0,12}",
        ]
        .prop_map(Perturbation::MediaType),
    ]
}

fn platform() -> impl Strategy<Value = (String, String)> {
    prop_oneof![
        Just(("linux".to_string(), "amd64".to_string())),
        Just(("linux".to_string(), "arm64".to_string())),
        Just(("unknown".to_string(), "unknown".to_string())),
        ("\\PC{0,6}", "\\PC{0,6}"),
    ]
}

fn link() -> impl Strategy<Value = Link> {
    (
        prop_oneof![1 => Just(LATEST), 2 => any::<usize>()],
        perturbation(),
        prop::option::weighted(0.5, platform()),
        prop::option::weighted(0.3, tag()),
    )
        .prop_map(|(target, perturbation, platform, tag)| Link {
            target,
            perturbation,
            platform,
            tag,
        })
}

/// Any JSON, with the keys image documents use.
pub fn json_value() -> impl Strategy<Value = Value> {
    let key = prop_oneof![
        prop::sample::select(vec![
            "schemaVersion",
            "mediaType",
            "manifests",
            "layers",
            "config",
            "digest",
            "size",
            "annotations",
            "platform",
            "architecture",
            "os",
            "subject",
            "Config",
            "Layers",
            "RepoTags",
            "org.opencontainers.image.ref.name",
        ])
        .prop_map(str::to_string),
        "\\PC{0,6}",
    ];
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        digest_text().prop_map(Value::from),
        "\\PC{0,10}".prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 24, 4, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map(key.clone(), inner, 0..4)
                .prop_map(|map| Value::Object(map.into_iter().collect())),
        ]
    })
}

fn document() -> impl Strategy<Value = Document> {
    prop_oneof![
        2 => prop::collection::vec(any::<u8>(), 0..300).prop_map(Document::Raw),
        1 => json_value().prop_map(Document::Json),
        3 => (link(), prop::collection::vec(link(), 0..3), any::<bool>())
            .prop_map(|(config, layers, docker)| Document::Image { config, layers, docker }),
        2 => (prop::collection::vec(link(), 0..3), any::<bool>())
            .prop_map(|(children, docker)| Document::Index { children, docker }),
    ]
}

pub fn store() -> impl Strategy<Value = Store> {
    (
        prop::collection::vec(document(), 1..7),
        prop_oneof![4 => prop::collection::vec(link(), 1..2), 1 => prop::collection::vec(link(), 0..4)],
        prop::collection::vec(prop::bool::weighted(0.03), 7),
        prop::bool::weighted(0.9),
    )
        .prop_map(|(documents, top, missing, valid_layout_file)| Store {
            documents,
            top,
            missing,
            valid_layout_file,
        })
}

fn descriptor(link: &Link, blobs: &[Blob]) -> Value {
    let (media_type, digest, size) = match blobs.len() {
        0 => (
            media_type::OCI_MANIFEST.to_string(),
            format!("sha256:{}", "0".repeat(64)),
            0,
        ),
        count => {
            let position = if link.target == LATEST {
                count - 1
            } else {
                link.target % count
            };
            let blob = &blobs[position];
            (
                blob.media_type.to_string(),
                format!("sha256:{}", blob.hex),
                blob.bytes.len() as u64,
            )
        }
    };
    let mut descriptor = json!({ "mediaType": media_type, "digest": digest, "size": size });
    match &link.perturbation {
        Perturbation::None => {}
        Perturbation::Size(size) => descriptor["size"] = json!(size),
        Perturbation::Digest(digest) => descriptor["digest"] = json!(digest),
        Perturbation::MediaType(media_type) => descriptor["mediaType"] = json!(media_type),
    }
    if let Some((os, architecture)) = &link.platform {
        descriptor["platform"] = json!({ "os": os, "architecture": architecture });
    }
    if let Some(tag) = &link.tag {
        descriptor["annotations"] = json!({ "org.opencontainers.image.ref.name": tag });
    }
    descriptor
}

fn index_json(children: &[Link], docker: bool, blobs: &[Blob]) -> Value {
    let media_type = if docker {
        media_type::DOCKER_MANIFEST_LIST
    } else {
        media_type::OCI_INDEX
    };
    json!({
        "schemaVersion": 2,
        "mediaType": media_type,
        "manifests": children.iter().map(|link| descriptor(link, blobs)).collect::<Vec<_>>(),
    })
}

/// The documents' bytes, in order.
pub fn build(documents: &[Document]) -> Vec<Blob> {
    let mut blobs: Vec<Blob> = Vec::new();
    for document in documents {
        let (bytes, media_type) = match document {
            Document::Raw(bytes) => (bytes.clone(), media_type::OCI_LAYER_GZIP),
            Document::Json(value) => (value.to_string().into_bytes(), media_type::OCI_CONFIG),
            Document::Image {
                config,
                layers,
                docker,
            } => {
                let media_type = if *docker {
                    media_type::DOCKER_MANIFEST
                } else {
                    media_type::OCI_MANIFEST
                };
                let manifest = json!({
                    "schemaVersion": 2,
                    "mediaType": media_type,
                    "config": descriptor(config, &blobs),
                    "layers": layers.iter().map(|link| descriptor(link, &blobs)).collect::<Vec<_>>(),
                });
                (manifest.to_string().into_bytes(), media_type)
            }
            Document::Index { children, docker } => {
                let media_type = if *docker {
                    media_type::DOCKER_MANIFEST_LIST
                } else {
                    media_type::OCI_INDEX
                };
                (
                    index_json(children, *docker, &blobs)
                        .to_string()
                        .into_bytes(),
                    media_type,
                )
            }
        };
        let hex = sha256_digest(&bytes).digest().to_string();
        blobs.push(Blob {
            bytes,
            media_type,
            hex,
        });
    }
    blobs
}

impl Store {
    /// The files of an OCI layout holding the store: path → bytes.
    pub fn layout_files(&self) -> Vec<(String, Vec<u8>)> {
        let blobs = build(&self.documents);
        let layout_file = if self.valid_layout_file {
            br#"{"imageLayoutVersion":"1.0.0"}"#.to_vec()
        } else {
            b"{\"imageLayoutVersion\":".to_vec()
        };
        let mut files = vec![
            ("oci-layout".to_string(), layout_file),
            (
                "index.json".to_string(),
                index_json(&self.top, false, &blobs)
                    .to_string()
                    .into_bytes(),
            ),
        ];
        for (position, blob) in blobs.iter().enumerate() {
            if !self.missing.get(position).copied().unwrap_or(false) {
                files.push((format!("blobs/sha256/{}", blob.hex), blob.bytes.clone()));
            }
        }
        files
    }
}
