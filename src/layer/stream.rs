//! Sending a layer's compressed bytes somewhere else while they are written,
//! so an upload overlaps compression instead of following it. The blob file
//! is always written too: it is what the cache keeps and what a failed upload
//! is retried from. A stream can only ever cost a second upload, never the
//! layer: its failures are warnings.

use oci_spec::image::Descriptor;
use std::fs::File;
use std::io::{self, Write};

/// Where the compressed bytes of layers being built also go (a registry).
pub trait BlobStream: Send + Sync {
    /// Starts sending one blob; its bytes follow through the returned
    /// writer, in order, and its descriptor comes with
    /// [`StreamedBlob::finish`].
    fn start(&self) -> Box<dyn StreamedBlob>;
}

/// One blob being sent. Dropped without [`StreamedBlob::finish`] (the layer
/// failed), it is abandoned.
pub trait StreamedBlob: Write + Send {
    /// Every byte has been written; `descriptor` is the complete blob's.
    /// Returns without waiting for the destination to store it: the layer
    /// is done, and whoever publishes it waits (see `build::stream`).
    fn finish(self: Box<Self>, descriptor: &Descriptor);
}

/// The blob file, and the stream that gets a copy of every byte written.
pub(crate) struct Tee {
    file: File,
    stream: Option<Box<dyn StreamedBlob>>,
}

impl Tee {
    pub(crate) fn new(file: File, stream: Option<Box<dyn StreamedBlob>>) -> Self {
        Tee { file, stream }
    }

    /// The stream, if it has not failed.
    pub(crate) fn into_stream(self) -> Option<Box<dyn StreamedBlob>> {
        self.stream
    }
}

impl Write for Tee {
    fn write(&mut self, buffer: &[u8]) -> io::Result<usize> {
        let written = self.file.write(buffer)?;
        if let Some(stream) = &mut self.stream
            && let Err(error) = stream.write_all(&buffer[..written])
        {
            // The blob is still written to its file and published from it.
            tracing::warn!("streaming a layer while it is built stopped: {error}");
            self.stream = None;
        }
        Ok(written)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layer::{
        Compression, LayerInput, LayerRecipe, OwnerPolicy, Permissions, TrackedFiles, build_layer,
        build_layer_streamed,
    };
    use crate::progress::Silent;
    use std::sync::{Arc, Mutex};

    /// Collects what is streamed; fails a write that would pass `fail_after` bytes.
    #[derive(Default)]
    struct Collector {
        bytes: Arc<Mutex<Vec<u8>>>,
        finished: Arc<Mutex<Vec<Descriptor>>>,
        fail_after: Option<usize>,
    }

    struct Collecting {
        bytes: Arc<Mutex<Vec<u8>>>,
        finished: Arc<Mutex<Vec<Descriptor>>>,
        fail_after: Option<usize>,
    }

    impl BlobStream for Collector {
        fn start(&self) -> Box<dyn StreamedBlob> {
            Box::new(Collecting {
                bytes: Arc::clone(&self.bytes),
                finished: Arc::clone(&self.finished),
                fail_after: self.fail_after,
            })
        }
    }

    impl Write for Collecting {
        fn write(&mut self, buffer: &[u8]) -> io::Result<usize> {
            let mut bytes = self.bytes.lock().unwrap();
            if self
                .fail_after
                .is_some_and(|limit| bytes.len() + buffer.len() > limit)
            {
                return Err(io::Error::other("the registry went away"));
            }
            bytes.extend_from_slice(buffer);
            Ok(buffer.len())
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl StreamedBlob for Collecting {
        fn finish(self: Box<Self>, descriptor: &Descriptor) {
            self.finished.lock().unwrap().push(descriptor.clone());
        }
    }

    fn recipe(source: &std::path::Path) -> LayerRecipe {
        LayerRecipe {
            name: "files".to_string(),
            inputs: vec![LayerInput {
                source: source.to_path_buf(),
                target: "/files".to_string(),
                mode: None,
                exclude: Vec::new(),
            }],
            owner: OwnerPolicy::Fixed { uid: 0, gid: 0 },
            permissions: Permissions::Normalize,
            remove: Vec::new(),
            epoch: 1_700_000_000,
            compression: Compression::Gzip { level: 6 },
        }
    }

    fn tree(root: &std::path::Path) {
        std::fs::create_dir_all(root).unwrap();
        for index in 0..50u32 {
            // Several MB in all, so the stream sees many writes.
            let text = format!("{index} some text that compresses somewhat\n");
            std::fs::write(
                root.join(format!("{index}.txt")),
                text.repeat(2000 + index as usize * 100),
            )
            .unwrap();
        }
    }

    #[test]
    fn the_stream_gets_the_blob_bytes_and_its_descriptor() {
        let work = tempfile::tempdir().unwrap();
        let source = work.path().join("source");
        tree(&source);
        let collector = Collector::default();
        let streamed = build_layer_streamed(
            &recipe(&source),
            &work.path().join("streamed"),
            2,
            &Silent,
            Some(&collector),
            &TrackedFiles::new(),
        )
        .unwrap();
        let plain = build_layer(&recipe(&source), &work.path().join("plain"), 2, &Silent).unwrap();
        assert_eq!(streamed.layer.blob.digest(), plain.layer.blob.digest());
        let blob = std::fs::read(&streamed.blob_path).unwrap();
        assert!(*collector.bytes.lock().unwrap() == blob);
        let finished = collector.finished.lock().unwrap();
        assert_eq!(finished.len(), 1);
        assert_eq!(finished[0].digest(), plain.layer.blob.digest());
        assert_eq!(finished[0].size(), blob.len() as u64);
    }

    #[test]
    fn a_failing_stream_does_not_fail_the_layer() {
        let work = tempfile::tempdir().unwrap();
        let source = work.path().join("source");
        tree(&source);
        let collector = Collector {
            fail_after: Some(1000),
            ..Collector::default()
        };
        let streamed = build_layer_streamed(
            &recipe(&source),
            &work.path().join("streamed"),
            2,
            &Silent,
            Some(&collector),
            &TrackedFiles::new(),
        )
        .unwrap();
        let plain = build_layer(&recipe(&source), &work.path().join("plain"), 2, &Silent).unwrap();
        assert_eq!(streamed.layer.blob.digest(), plain.layer.blob.digest());
        assert!(
            std::fs::read(&streamed.blob_path).unwrap() == std::fs::read(&plain.blob_path).unwrap()
        );
        // Abandoned, not finished: publishing uploads it from the file.
        assert!(collector.finished.lock().unwrap().is_empty());
    }
}
