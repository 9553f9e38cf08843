//! Atomic outputs: write into a hidden temporary beside the target, move it into place only
//! when complete. The temporaries are `tempfile` paths, which delete themselves when dropped,
//! so an abandoned sink (error, panic unwinding, interrupt handled by unwinding) leaves nothing.

use std::ffi::OsString;
use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};

use tempfile::{TempDir, TempPath};

use crate::{Error, Result};

/// What the output will be on disk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Kind {
    File,
    /// A directory of frames; only a directory that holds nothing but frames may be replaced,
    /// so a mistyped `--overwrite` cannot delete unrelated data.
    FrameDir,
}

/// A checked output path.
#[derive(Clone, Debug)]
pub(super) struct Target {
    pub path: PathBuf,
    dir: PathBuf,
    name: OsString,
    overwrite: bool,
}

impl Target {
    /// Checks, before any work, that the output can be written: its directory exists, and it
    /// does not exist yet unless `overwrite` (and then is of the same kind).
    pub fn check(path: &Path, overwrite: bool, kind: Kind) -> Result<Target> {
        let name = path
            .file_name()
            .ok_or_else(|| Error::file(path, "is not a file or directory name"))?
            .to_owned();
        let dir = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
            _ => PathBuf::from("."),
        };
        if !dir.is_dir() {
            return Err(Error::file(&dir, "the folder does not exist"));
        }
        match fs::symlink_metadata(path) {
            Ok(meta) => {
                if !overwrite {
                    return Err(Error::OutputExists {
                        path: path.to_owned(),
                    });
                }
                check_replaceable(path, &meta, kind)?;
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::io(path, e)),
        }
        Ok(Target {
            path: path.to_owned(),
            dir,
            name,
            overwrite,
        })
    }

    /// `.<name>.partial-<pid>-<random>`: hidden, recognisable, unique per process.
    fn builder_prefix(&self, what: &str) -> String {
        format!(
            ".{}.{what}-{}-",
            self.name.to_string_lossy(),
            std::process::id()
        )
    }

    fn cannot_create(&self, e: io::Error) -> Error {
        Error::file(
            &self.path,
            format!(
                "cannot create a temporary output in {}: {e}",
                self.dir.display()
            ),
        )
    }

    /// Creates the temporary file the output is written into.
    pub fn temp_file(&self) -> Result<(File, TempPath)> {
        let temp = tempfile::Builder::new()
            .prefix(&self.builder_prefix("partial"))
            .tempfile_in(&self.dir)
            .map_err(|e| self.cannot_create(e))?;
        Ok(temp.into_parts())
    }

    /// Creates the temporary directory a frame sequence is written into.
    pub fn temp_dir(&self) -> Result<TempDir> {
        tempfile::Builder::new()
            .prefix(&self.builder_prefix("partial"))
            .tempdir_in(&self.dir)
            .map_err(|e| self.cannot_create(e))
    }

    /// Syncs the finished temporary file and renames it onto the target. Without `overwrite`
    /// a target that appeared meanwhile is left alone and the temporary is removed.
    pub fn commit_file(&self, file: File, temp: TempPath) -> Result<()> {
        file.sync_all().map_err(|e| Error::io(&temp, e))?;
        drop(file);
        let persisted = if self.overwrite {
            temp.persist(&self.path)
        } else {
            temp.persist_noclobber(&self.path)
        };
        persisted.map_err(|e| self.commit_error(e.error))
    }

    /// Moves the finished temporary directory onto the target. An old directory (allowed by
    /// `overwrite`) is moved aside first and deleted only once the new one is in place.
    pub fn commit_dir(&self, temp: TempDir) -> Result<()> {
        let old = match fs::symlink_metadata(&self.path) {
            Ok(_) if !self.overwrite => {
                return Err(Error::OutputExists {
                    path: self.path.clone(),
                })
            }
            Ok(_) => {
                let aside = tempfile::Builder::new()
                    .prefix(&self.builder_prefix("old"))
                    .tempdir_in(&self.dir)
                    .map_err(|e| self.cannot_create(e))?;
                let old_path = aside.path().join(&self.name);
                fs::rename(&self.path, &old_path).map_err(|e| self.commit_error(e))?;
                Some((aside, old_path))
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => None,
            Err(e) => return Err(Error::io(&self.path, e)),
        };
        if let Err(e) = fs::rename(temp.path(), &self.path) {
            if let Some((_, old_path)) = &old {
                // Put the previous output back rather than lose it; `aside` then drops empty.
                let _ = fs::rename(old_path, &self.path);
            }
            return Err(self.commit_error(e));
        }
        // The temporary now lives at the target: forget it so its drop does not delete it.
        let _ = temp.keep();
        // `aside` drops here and deletes the previous output.
        drop(old);
        Ok(())
    }

    fn commit_error(&self, e: io::Error) -> Error {
        if e.kind() == io::ErrorKind::AlreadyExists {
            Error::OutputExists {
                path: self.path.clone(),
            }
        } else {
            Error::file(
                &self.path,
                format!("cannot move the finished output into place: {e}"),
            )
        }
    }
}

fn check_replaceable(path: &Path, meta: &fs::Metadata, kind: Kind) -> Result<()> {
    match kind {
        Kind::File if meta.is_dir() => Err(Error::file(
            path,
            "is a directory; refusing to replace it with a file",
        )),
        Kind::File => Ok(()),
        Kind::FrameDir if !meta.is_dir() => Err(Error::file(
            path,
            "exists and is not a directory; refusing to replace it with a frame directory",
        )),
        Kind::FrameDir => {
            let entries = fs::read_dir(path).map_err(|e| Error::io(path, e))?;
            for entry in entries {
                let entry = entry.map_err(|e| Error::io(path, e))?;
                let name = entry.file_name();
                if !is_frame_name(&name.to_string_lossy()) {
                    return Err(Error::file(
                        path,
                        format!(
                            "holds {}, which is not a frame_NNNNNN.png; refusing to replace \
                             the directory",
                            name.to_string_lossy()
                        ),
                    ));
                }
            }
            Ok(())
        }
    }
}

/// `frame_000123.png`, as the PNG sink names its files.
pub(super) fn is_frame_name(name: &str) -> bool {
    name.strip_prefix("frame_")
        .and_then(|rest| rest.strip_suffix(".png"))
        .is_some_and(|digits| !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()))
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    fn names(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    /// A fresh directory and a checked file target `out.mp4` in it.
    fn file_target() -> (tempfile::TempDir, PathBuf, Target) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.mp4");
        let target = Target::check(&path, false, Kind::File).unwrap();
        (dir, path, target)
    }

    #[test]
    fn temp_file_is_hidden_and_removed_unless_committed() {
        let (dir, path, target) = file_target();
        let (_file, temp) = target.temp_file().unwrap();
        let name = temp.file_name().unwrap().to_string_lossy().into_owned();
        assert!(name.starts_with(".out.mp4.partial-"), "{name}");
        drop(temp);
        assert!(names(dir.path()).is_empty());

        let (mut file, temp) = target.temp_file().unwrap();
        file.write_all(b"data").unwrap();
        target.commit_file(file, temp).unwrap();
        assert_eq!(names(dir.path()), ["out.mp4"]);
        assert_eq!(fs::read(&path).unwrap(), b"data");
    }

    #[test]
    fn existing_output_needs_overwrite() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.gif");
        fs::write(&path, b"old").unwrap();
        let err = Target::check(&path, false, Kind::File).unwrap_err();
        assert!(matches!(err, Error::OutputExists { .. }));
        assert!(err.to_string().contains("--overwrite"), "{err}");
        assert!(err.to_string().contains("out.gif"), "{err}");

        let target = Target::check(&path, true, Kind::File).unwrap();
        let (mut file, temp) = target.temp_file().unwrap();
        file.write_all(b"new").unwrap();
        target.commit_file(file, temp).unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"new");
    }

    #[test]
    fn output_that_appears_meanwhile_is_not_clobbered() {
        let (dir, path, target) = file_target();
        let (file, temp) = target.temp_file().unwrap();
        fs::write(&path, b"someone else's").unwrap();
        let err = target.commit_file(file, temp).unwrap_err();
        assert!(matches!(err, Error::OutputExists { .. }), "{err}");
        assert_eq!(names(dir.path()), ["out.mp4"]);
        assert_eq!(fs::read(&path).unwrap(), b"someone else's");
    }

    #[test]
    fn missing_directory_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nope").join("out.mp4");
        let err = Target::check(&path, false, Kind::File)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("does not exist") && err.contains("nope"),
            "{err}"
        );
    }

    #[test]
    fn frame_dirs_replace_only_frame_dirs() {
        let dir = tempfile::tempdir().unwrap();
        let frames = dir.path().join("frames");
        fs::create_dir(&frames).unwrap();
        fs::write(frames.join("frame_000000.png"), b"old").unwrap();
        let target = Target::check(&frames, true, Kind::FrameDir).unwrap();
        let temp = target.temp_dir().unwrap();
        fs::write(temp.path().join("frame_000000.png"), b"new").unwrap();
        target.commit_dir(temp).unwrap();
        assert_eq!(names(dir.path()), ["frames"]);
        assert_eq!(fs::read(frames.join("frame_000000.png")).unwrap(), b"new");

        fs::write(frames.join("notes.txt"), b"mine").unwrap();
        let err = Target::check(&frames, true, Kind::FrameDir).unwrap_err();
        assert!(err.to_string().contains("notes.txt"), "{err}");
        let file = dir.path().join("file");
        fs::write(&file, b"x").unwrap();
        assert!(Target::check(&file, true, Kind::FrameDir).is_err());
        assert!(Target::check(&frames, true, Kind::File).is_err());
    }

    #[test]
    fn frame_names() {
        assert!(is_frame_name("frame_000000.png"));
        assert!(is_frame_name("frame_1234567.png"));
        assert!(!is_frame_name("frame_.png"));
        assert!(!is_frame_name("frame_00a.png"));
        assert!(!is_frame_name("other.png"));
    }
}
