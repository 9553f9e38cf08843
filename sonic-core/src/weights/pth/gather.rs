//! Copies a strided tensor view out of its storage into contiguous row-major bytes.

/// `storage` holds whole elements of `elem` bytes. Returns `None` if the view reaches outside
/// it, which validation upstream already rules out; the check keeps this function panic-free
/// on its own.
pub(crate) fn contiguous(
    storage: &[u8],
    elem: usize,
    offset: usize,
    shape: &[usize],
    strides: &[usize],
) -> Option<Vec<u8>> {
    let numel = shape.iter().try_fold(1usize, |n, &d| n.checked_mul(d))?;
    if numel == 0 {
        return Some(Vec::new());
    }
    if is_row_major(shape, strides) {
        return elements(storage, elem, offset, numel).map(<[u8]>::to_vec);
    }

    // Copy whole rows at once when the innermost dimension is dense, element by element
    // otherwise (a transposed matrix, for instance).
    let (outer, run) = match (shape.split_last(), strides.last()) {
        (Some((&len, outer)), Some(1)) => (outer, len),
        _ => (shape, 1),
    };
    let mut out = Vec::with_capacity(numel.checked_mul(elem)?);
    let mut index = vec![0usize; outer.len()];
    let mut start = offset;
    loop {
        out.extend_from_slice(elements(storage, elem, start, run)?);
        // Odometer over the outer dimensions, last one fastest.
        let mut dim = outer.len();
        loop {
            if dim == 0 {
                return Some(out);
            }
            dim -= 1;
            if index[dim] + 1 < outer[dim] {
                index[dim] += 1;
                start = start.checked_add(strides[dim])?;
                break;
            }
            start = start.checked_sub(strides[dim].checked_mul(index[dim])?)?;
            index[dim] = 0;
        }
    }
}

/// Whether the view is already laid out densely in row-major order. Dimensions of size 1
/// may carry any stride without affecting the layout.
fn is_row_major(shape: &[usize], strides: &[usize]) -> bool {
    let mut expected = 1usize;
    for (&len, &stride) in shape.iter().zip(strides).rev() {
        if len != 1 && stride != expected {
            return false;
        }
        expected = expected.saturating_mul(len);
    }
    true
}

fn elements(storage: &[u8], elem: usize, first: usize, count: usize) -> Option<&[u8]> {
    let start = first.checked_mul(elem)?;
    let end = start.checked_add(count.checked_mul(elem)?)?;
    storage.get(start..end)
}
