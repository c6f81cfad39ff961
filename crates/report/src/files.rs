//! Private files and folders: incident folders are 0700, files 0600, nothing is ever
//! overwritten in place (reports are replaced atomically by rename).
use std::fs::{DirBuilder, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// Create a new file readable only by its owner; fails if it exists.
pub fn create_private(path: &Path) -> std::io::Result<File> {
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
}

/// Write a whole file atomically (temporary file + fsync + rename), mode 0600.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("file");
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let _ = std::fs::remove_file(&tmp);
    {
        let mut file = create_private(&tmp)?;
        file.write_all(bytes)?;
        file.sync_data()?;
    }
    std::fs::rename(&tmp, path)
}

/// Create a private folder (0700); parents are created as needed.
pub fn create_private_dir(path: &Path) -> std::io::Result<()> {
    DirBuilder::new().recursive(true).mode(0o700).create(path)
}

/// Create a new incident folder `BASE/NAME`, or `NAME-2`, `NAME-3`… when taken. Never
/// reuses an existing folder.
pub fn create_incident_dir(base: &Path, name: &str) -> std::io::Result<PathBuf> {
    DirBuilder::new().recursive(true).mode(0o700).create(base)?;
    for n in 1..1000 {
        let candidate = if n == 1 {
            base.join(name)
        } else {
            base.join(format!("{name}-{n}"))
        };
        match DirBuilder::new().mode(0o700).create(&candidate) {
            Ok(()) => return Ok(candidate),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
    Err(std::io::Error::new(
        std::io::ErrorKind::AlreadyExists,
        "too many incident folders with this name",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn incident_folders_are_private_and_never_reused() {
        let dir = tempfile::tempdir().unwrap();
        let a = create_incident_dir(dir.path(), "20261124T031502Z-compromised").unwrap();
        let b = create_incident_dir(dir.path(), "20261124T031502Z-compromised").unwrap();
        assert_ne!(a, b);
        assert!(b.to_string_lossy().ends_with("-compromised-2"));
        let mode = std::fs::metadata(&a).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700);
        write_atomic(&a.join("report.md"), b"hello").unwrap();
        let mode = std::fs::metadata(a.join("report.md"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o600);
        write_atomic(&a.join("report.md"), b"again").unwrap();
        assert_eq!(
            std::fs::read_to_string(a.join("report.md")).unwrap(),
            "again"
        );
        assert!(create_private(&a.join("report.md")).is_err());
    }
}
