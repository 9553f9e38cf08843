//! The zip container `torch.save` writes: `<archive>/data.pkl`, one `<archive>/data/<key>`
//! entry per storage, and an optional `<archive>/byteorder`.

use std::borrow::Cow;
use std::io::{Cursor, Read};

use zip::result::ZipError;
use zip::{CompressionMethod, ZipArchive};

use super::budget::Budget;
use super::error::{printable, PthError};

/// What the pre-1.6 format starts with: PROTO 2, then LONG1 holding the magic number
/// 0x1950a86a20f9469cfc6c in little-endian order.
const LEGACY_MAGIC: [u8; 14] = [
    0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19,
];
const ZIP_LOCAL_HEADER: &[u8] = b"PK\x03\x04";
/// `byteorder` holds "little" or "big"; anything longer is not worth reading.
const BYTEORDER_MAX_LEN: usize = 16;

pub(crate) struct Archive<'a> {
    bytes: &'a [u8],
    zip: ZipArchive<Cursor<&'a [u8]>>,
    /// The folder holding `data.pkl`, with its trailing slash. torch names it after the file
    /// stem or `archive` depending on the version, so it is discovered rather than assumed.
    prefix: String,
    file: &'a str,
}

impl<'a> Archive<'a> {
    pub(crate) fn open(bytes: &'a [u8], file: &'a str) -> Result<Self, PthError> {
        if bytes.starts_with(&LEGACY_MAGIC) {
            return Err(PthError::LegacyFormat {
                file: file.to_owned(),
            });
        }
        let zip = ZipArchive::new(Cursor::new(bytes)).map_err(|err| {
            // A local header at the start means this was a zip until its end got cut off.
            if bytes.starts_with(ZIP_LOCAL_HEADER) {
                PthError::truncated(file, format!("zip directory missing or damaged ({err})"))
            } else {
                PthError::NotZip {
                    file: file.to_owned(),
                }
            }
        })?;
        let prefix = zip
            .file_names_raw()
            .find_map(record_folder)
            .ok_or_else(|| PthError::NotTorchCheckpoint {
                file: file.to_owned(),
            })?;
        Ok(Self {
            bytes,
            zip,
            prefix,
            file,
        })
    }

    pub(crate) fn check_byteorder(&mut self, budget: &mut Budget) -> Result<(), PthError> {
        let name = format!("{}byteorder", self.prefix);
        // Files from before torch wrote this record are little-endian.
        let Some(order) = self.read(&name, Some(BYTEORDER_MAX_LEN), budget)? else {
            return Ok(());
        };
        match order.trim_ascii() {
            b"little" => Ok(()),
            b"big" => Err(PthError::BigEndian {
                file: self.file.to_owned(),
            }),
            other => Err(PthError::malformed(
                self.file,
                format!(
                    "byteorder record says {:?}",
                    printable(&String::from_utf8_lossy(other))
                ),
            )),
        }
    }

    pub(crate) fn pickle(&mut self, budget: &mut Budget) -> Result<Cow<'a, [u8]>, PthError> {
        let name = format!("{}data.pkl", self.prefix);
        self.read(&name, None, budget)?
            .ok_or_else(|| PthError::NotTorchCheckpoint {
                file: self.file.to_owned(),
            })
    }

    /// The raw bytes of the storage record `key`.
    pub(crate) fn storage(
        &mut self,
        key: &str,
        budget: &mut Budget,
    ) -> Result<Cow<'a, [u8]>, PthError> {
        let name = format!("{}data/{key}", self.prefix);
        self.read(&name, None, budget)?.ok_or_else(|| {
            PthError::malformed(
                self.file,
                format!("storage {} is missing from the archive", printable(key)),
            )
        })
    }

    /// Up to `limit` bytes of an entry, or `None` if there is no such entry. Stored entries
    /// are borrowed straight from the input, which is how torch writes every record, so a
    /// multi-gigabyte checkpoint is not copied twice.
    fn read(
        &mut self,
        name: &str,
        limit: Option<usize>,
        budget: &mut Budget,
    ) -> Result<Option<Cow<'a, [u8]>>, PthError> {
        let (bytes, file) = (self.bytes, self.file);
        let entry = match self.zip.by_name(name) {
            Ok(entry) => entry,
            Err(ZipError::FileNotFound) => return Ok(None),
            Err(error) => {
                return Err(PthError::Zip {
                    file: file.to_owned(),
                    error,
                })
            }
        };
        let declared = usize::try_from(entry.size()).unwrap_or(usize::MAX);
        let len = limit.map_or(declared, |limit| limit.min(declared));

        if entry.compression() == CompressionMethod::Stored && !entry.encrypted() {
            if let Some(start) = entry.data_start() {
                let range = usize::try_from(start)
                    .ok()
                    .and_then(|start| Some(start..start.checked_add(len)?));
                return match range.and_then(|range| bytes.get(range)) {
                    Some(data) => Ok(Some(Cow::Borrowed(data))),
                    None => Err(PthError::truncated(
                        file,
                        format!("entry {} runs past the end of the file", printable(name)),
                    )),
                };
            }
        }

        budget.charge(len, || format!("decompressing {}", printable(name)), file)?;
        let mut data = Vec::with_capacity(len);
        entry
            .take(len as u64)
            .read_to_end(&mut data)
            .map_err(|err| PthError::Zip {
                file: file.to_owned(),
                error: ZipError::Io(err),
            })?;
        Ok(Some(Cow::Owned(data)))
    }
}

/// `Some("<folder>/")` for an entry named `<folder>/data.pkl` directly under the zip root.
fn record_folder(entry_name: &[u8]) -> Option<String> {
    let folder = entry_name.strip_suffix(b"data.pkl")?;
    let stem = folder.strip_suffix(b"/")?;
    if stem.is_empty() || stem.contains(&b'/') {
        return None;
    }
    String::from_utf8(folder.to_vec()).ok()
}
