//! A validation sample being labelled in the app: its points (pixel,
//! reference class or none), the point on show, and which labels are not
//! yet written back to the sample's GeoPackage. Data only; the sample
//! window and the map's point markers read it, commands change it.

use std::path::PathBuf;

use crate::io::sample_points::{SamplePoint, SamplePoints};

/// The sample open for labelling.
#[derive(Debug, Clone, PartialEq)]
pub struct SampleLabelling {
    /// The GeoPackage the points came from and go back to.
    pub path: PathBuf,
    pub layer: String,
    pub points: Vec<SamplePoint>,
    /// Points of the layer that lie outside the scene (not shown).
    pub outside: usize,
    /// The point on show (an index into `points`).
    pub current: usize,
    /// Labels changed since the file was read or last written.
    pub unsaved: bool,
}

impl SampleLabelling {
    pub fn new(path: PathBuf, read: SamplePoints) -> Self {
        let mut s = Self {
            path,
            layer: read.layer,
            points: read.points,
            outside: read.outside,
            current: 0,
            unsaved: false,
        };
        s.current = s.next_unlabelled(0).unwrap_or(0);
        s
    }

    pub fn labelled(&self) -> usize {
        self.points.iter().filter(|p| p.reference.is_some()).count()
    }

    /// The first unlabelled point at or after `from`, wrapping around.
    pub fn next_unlabelled(&self, from: usize) -> Option<usize> {
        let n = self.points.len();
        (0..n)
            .map(|k| (from + k) % n)
            .find(|&i| self.points[i].reference.is_none())
    }

    /// Sets point `i`'s reference class (None: clears it); whether it
    /// changed.
    pub fn set_reference(&mut self, i: usize, class: Option<u8>) -> bool {
        match self.points.get_mut(i) {
            Some(p) if p.reference != class => {
                p.reference = class;
                self.unsaved = true;
                true
            }
            _ => false,
        }
    }

    /// (feature id, reference) of every point, to write back.
    pub fn references(&self) -> Vec<(u64, Option<u8>)> {
        self.points.iter().map(|p| (p.fid, p.reference)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point(fid: u64, reference: Option<u8>) -> SamplePoint {
        SamplePoint {
            fid,
            row: fid as usize,
            col: 0,
            reference,
        }
    }

    #[test]
    fn it_starts_at_the_first_unlabelled_point_and_wraps_around() {
        let read = SamplePoints {
            points: vec![point(1, Some(2)), point(2, None), point(3, Some(1))],
            outside: 1,
            layer: "sample".into(),
        };
        let mut s = SampleLabelling::new("s.gpkg".into(), read);
        assert_eq!(s.current, 1);
        assert_eq!(s.labelled(), 2);
        assert!(!s.unsaved);
        assert_eq!(s.next_unlabelled(2), Some(1));
        assert!(s.set_reference(1, Some(1)));
        assert!(s.unsaved);
        assert!(
            !s.set_reference(1, Some(1)),
            "the same class changes nothing"
        );
        assert_eq!(s.next_unlabelled(0), None);
        assert!(s.set_reference(0, None));
        assert_eq!(s.references(), vec![(1, None), (2, Some(1)), (3, Some(1))]);
    }
}
