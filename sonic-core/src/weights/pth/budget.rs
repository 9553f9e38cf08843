//! Caps how many bytes a checkpoint can make the reader allocate.
//!
//! Tensor data normally adds up to roughly the file size. Views that share a storage, stride-0
//! expansions and deflated entries can legitimately exceed it a little, but a few hundred bytes
//! of pickle must not be able to request terabytes.

use super::error::PthError;

const BASE_BYTES: usize = 64 << 20;
const BYTES_PER_INPUT_BYTE: usize = 8;

pub(crate) struct Budget {
    total: usize,
    left: usize,
}

impl Budget {
    pub(crate) fn for_input(input_len: usize) -> Self {
        let total = input_len
            .saturating_mul(BYTES_PER_INPUT_BYTE)
            .saturating_add(BASE_BYTES);
        Self { total, left: total }
    }

    pub(crate) fn charge(
        &mut self,
        bytes: usize,
        what: impl FnOnce() -> String,
        file: &str,
    ) -> Result<(), PthError> {
        match self.left.checked_sub(bytes) {
            Some(left) => {
                self.left = left;
                Ok(())
            }
            None => Err(PthError::TooLarge {
                file: file.to_owned(),
                what: what(),
                budget: self.total,
            }),
        }
    }
}
