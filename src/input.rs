//! Reading the files lifeboat is given (runbooks, configs, secrets,
//! certificates): bounded, so that a huge file or an endless one
//! (`/dev/zero`, a FIFO someone keeps writing) is refused at once with
//! its name, instead of being read until memory runs out.

use std::io::Read;
use std::path::Path;

/// The largest input file read: far above any real runbook or config.
pub const MAX_BYTES: u64 = 16 * 1024 * 1024;

/// The bytes of `path`, refused when over [`MAX_BYTES`].
pub fn read_bytes(path: &Path) -> std::io::Result<Vec<u8>> {
    let too_large = |size: &str| {
        std::io::Error::new(
            std::io::ErrorKind::FileTooLarge,
            format!(
                "{size}, over the {} MiB an input may be: refused without reading it",
                MAX_BYTES / (1024 * 1024)
            ),
        )
    };
    let file = std::fs::File::open(path)?;
    let meta = file.metadata()?;
    // A regular file says its size: refuse it before reading a byte.
    if meta.is_file() && meta.len() > MAX_BYTES {
        return Err(too_large(&format!("{} bytes", meta.len())));
    }
    // Anything else (a device, a pipe) is read up to one byte past the cap.
    let mut bytes = Vec::new();
    file.take(MAX_BYTES + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > MAX_BYTES {
        return Err(too_large("endless or larger"));
    }
    Ok(bytes)
}

/// The text of `path` (UTF-8), refused when over [`MAX_BYTES`].
pub fn read_text(path: &Path) -> std::io::Result<String> {
    String::from_utf8(read_bytes(path)?).map_err(|e| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!(
                "not UTF-8 text (invalid byte at offset {})",
                e.utf8_error().valid_up_to()
            ),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_endless_input_is_refused_after_the_cap() {
        let e = read_text(Path::new("/dev/zero")).unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::FileTooLarge);
        assert!(e.to_string().contains("16 MiB"), "{e}");
    }

    #[test]
    fn a_file_over_the_cap_is_refused_by_its_size() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("big.yaml");
        // Sparse: refused by its size, never read.
        std::fs::File::create(&path)
            .unwrap()
            .set_len(400 * 1024 * 1024)
            .unwrap();
        let e = read_text(&path).unwrap_err();
        assert!(e.to_string().starts_with("419430400 bytes"), "{e}");
        let ok = dir.path().join("ok.yaml");
        std::fs::write(&ok, "name: x\n").unwrap();
        assert_eq!(read_text(&ok).unwrap(), "name: x\n");
        std::fs::write(&ok, [0xff, 0xfe]).unwrap();
        assert!(
            read_text(&ok)
                .unwrap_err()
                .to_string()
                .contains("not UTF-8")
        );
    }
}
