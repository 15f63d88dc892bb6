//! Throughput of the layer pipeline's parts: the tar writer (walk, read,
//! encode) alone, sha256, gzip on one and on all threads, and zstd.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use hoist::layer::{
    Compression, LayerInput, LayerRecipe, OwnerPolicy, ParallelGzip, Permissions, build_layer,
};
use hoist::oci::DigestWriter;
use hoist::progress::Silent;
use std::hint::black_box;
use std::io::Write;
use std::path::Path;

const SAMPLE_SIZE: usize = 32 << 20;

/// Text-like data that compresses the way source trees and binaries do,
/// roughly (neither all zeros nor random).
fn sample() -> Vec<u8> {
    let mut data = Vec::with_capacity(SAMPLE_SIZE);
    let mut state = 0x2545_f491_4f6c_dd1du64;
    while data.len() < SAMPLE_SIZE {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        data.extend_from_slice(
            format!("entry {:x} value {}\n", state % 65_536, state % 977).as_bytes(),
        );
    }
    data.truncate(SAMPLE_SIZE);
    data
}

fn tree(root: &Path, data: &[u8]) {
    // 256 files of 128 KiB in 16 directories.
    for (index, chunk) in data.chunks(128 << 10).enumerate() {
        let directory = root.join(format!("d{:02}", index % 16));
        std::fs::create_dir_all(&directory).expect("bench directory");
        std::fs::write(directory.join(format!("f{index:03}")), chunk).expect("bench file");
    }
}

fn recipe(root: &Path, compression: Compression) -> LayerRecipe {
    LayerRecipe {
        name: "bench".to_string(),
        inputs: vec![LayerInput {
            source: root.to_path_buf(),
            target: "/".to_string(),
            mode: None,
            exclude: Vec::new(),
        }],
        owner: OwnerPolicy::Fixed { uid: 0, gid: 0 },
        permissions: Permissions::Normalize,
        remove: Vec::new(),
        epoch: 0,
        compression,
    }
}

fn benches(criterion: &mut Criterion) {
    let data = sample();
    let all_threads = std::thread::available_parallelism().map_or(1, usize::from);
    let work = tempfile::tempdir().expect("bench directory");
    let root = work.path().join("root");
    tree(&root, &data);
    let blobs = work.path().join("blobs");

    let mut group = criterion.benchmark_group("layer");
    group.sample_size(10);
    group.throughput(Throughput::Bytes(data.len() as u64));

    group.bench_function("tar writer (uncompressed layer)", |bencher| {
        let recipe = recipe(&root, Compression::None);
        bencher.iter(|| build_layer(&recipe, &blobs, 1, &Silent).expect("layer"));
    });
    group.bench_function("sha256", |bencher| {
        bencher.iter(|| {
            let mut writer = DigestWriter::new(std::io::sink());
            writer.write_all(black_box(&data)).expect("sink");
            writer.finish().1
        });
    });
    for threads in [1, all_threads] {
        group.bench_function(format!("gzip level 6, {threads} threads"), |bencher| {
            bencher.iter(|| {
                let mut gzip = ParallelGzip::new(Vec::new(), 6, threads).expect("gzip");
                gzip.write_all(black_box(&data)).expect("gzip");
                gzip.finish().expect("gzip").len()
            });
        });
    }
    group.bench_function(
        format!("zstd level 3 layer, {all_threads} threads"),
        |bencher| {
            let recipe = recipe(&root, Compression::Zstd { level: 3 });
            bencher.iter(|| build_layer(&recipe, &blobs, all_threads, &Silent).expect("layer"));
        },
    );
    group.finish();
}

criterion_group!(layer, benches);
criterion_main!(layer);
