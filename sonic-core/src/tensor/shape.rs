use std::fmt;

use crate::{Error, Result};

/// Dimensions of a contiguous, row-major tensor.
#[derive(Clone, PartialEq, Eq, Hash, Default)]
pub struct Shape(Vec<usize>);

impl Shape {
    pub fn new(dims: impl Into<Vec<usize>>) -> Self {
        Shape(dims.into())
    }

    pub fn dims(&self) -> &[usize] {
        &self.0
    }

    pub fn rank(&self) -> usize {
        self.0.len()
    }

    pub fn elem_count(&self) -> usize {
        self.0.iter().product()
    }

    /// Row-major strides in elements.
    pub fn strides(&self) -> Vec<usize> {
        let mut strides = vec![1; self.0.len()];
        for i in (0..self.0.len().saturating_sub(1)).rev() {
            strides[i] = strides[i + 1] * self.0[i + 1];
        }
        strides
    }

    /// Size of dimension `axis`, counting negative axes from the end.
    pub fn dim(&self, axis: isize) -> Result<usize> {
        Ok(self.0[self.axis(axis, "dim")?])
    }

    /// Resolves a possibly negative axis against this rank.
    pub fn axis(&self, axis: isize, op: &'static str) -> Result<usize> {
        let rank = self.0.len() as isize;
        let resolved = if axis < 0 { axis + rank } else { axis };
        if resolved < 0 || resolved >= rank {
            return Err(Error::invalid(
                op,
                format!("axis {axis} out of range for shape {self}"),
            ));
        }
        Ok(resolved as usize)
    }

    /// Product of the dimensions before `axis`, the size at `axis`, and the product after it.
    pub fn split_at_axis(&self, axis: usize) -> (usize, usize, usize) {
        let outer = self.0[..axis].iter().product();
        let inner = self.0[axis + 1..].iter().product();
        (outer, self.0[axis], inner)
    }

    /// NumPy broadcasting of two shapes.
    pub fn broadcast(&self, other: &Shape, op: &'static str) -> Result<Shape> {
        let rank = self.rank().max(other.rank());
        let mut dims = vec![0; rank];
        for (i, d) in dims.iter_mut().enumerate() {
            let a = self.padded_dim(i, rank);
            let b = other.padded_dim(i, rank);
            *d = match (a, b) {
                (a, b) if a == b => a,
                (1, b) => b,
                (a, 1) => a,
                _ => {
                    return Err(Error::Broadcast {
                        op,
                        lhs: self.clone(),
                        rhs: other.clone(),
                    })
                }
            };
        }
        Ok(Shape(dims))
    }

    fn padded_dim(&self, i: usize, rank: usize) -> usize {
        let offset = rank - self.rank();
        if i < offset {
            1
        } else {
            self.0[i - offset]
        }
    }
}

impl fmt::Display for Shape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.0)
    }
}

impl fmt::Debug for Shape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.0)
    }
}

impl From<Vec<usize>> for Shape {
    fn from(v: Vec<usize>) -> Self {
        Shape(v)
    }
}

impl From<&[usize]> for Shape {
    fn from(v: &[usize]) -> Self {
        Shape(v.to_vec())
    }
}

impl<const N: usize> From<[usize; N]> for Shape {
    fn from(v: [usize; N]) -> Self {
        Shape(v.to_vec())
    }
}

impl From<&Shape> for Shape {
    fn from(s: &Shape) -> Self {
        s.clone()
    }
}

impl From<()> for Shape {
    fn from(_: ()) -> Self {
        Shape(Vec::new())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strides_are_row_major() {
        assert_eq!(Shape::new([2, 3, 5]).strides(), vec![15, 5, 1]);
        assert_eq!(Shape::new([7]).strides(), vec![1]);
        assert!(Shape::new(Vec::<usize>::new()).strides().is_empty());
    }

    #[test]
    fn broadcasting_follows_numpy() {
        let a = Shape::new([4, 1, 3]);
        let b = Shape::new([5, 1]);
        assert_eq!(a.broadcast(&b, "t").unwrap(), Shape::new([4, 5, 3]));
        let err = Shape::new([2, 3]).broadcast(&Shape::new([4]), "t");
        assert!(matches!(err, Err(Error::Broadcast { .. })));
    }

    #[test]
    fn negative_axes_resolve() {
        let s = Shape::new([2, 3, 5]);
        assert_eq!(s.axis(-1, "t").unwrap(), 2);
        assert_eq!(s.dim(-3).unwrap(), 2);
        assert!(s.axis(3, "t").is_err());
        assert!(s.axis(-4, "t").is_err());
    }
}
