//! Buffers kept between writes of a credentials file: the bytes read.
//!
//! Each is as large as the file. Freshly allocated for every write, a 1 MB buffer is a new
//! `mmap` that the kernel faults in page by page and takes back on `free`: for the 0.9 MB file
//! of 1,000 profiles, that was most of the write's cost above the file system's own. Kept, it is
//! touched once. (The new text needs no such buffer: it is written as pieces of this one and
//! the few new lines, see `profile_file::edit::Pieces`.) At most [`KEPT`] buffers of at most
//! [`KEPT_BYTES`] each are kept (a daemon with one ordinary file keeps one buffer of its size);
//! a larger one is freed as before.
//! A kept buffer is cleared, not zeroed: it holds the file's bytes until the next write
//! overwrites them, as freed heap memory did before (nothing in awscredd zeroizes secrets).

use std::ops::{Deref, DerefMut};
use std::sync::Mutex;

/// How many buffers are kept: for four files written at once.
const KEPT: usize = 4;
/// The largest buffer kept (about 17,000 profiles of temporary credentials).
const KEPT_BYTES: usize = 16 * 1024 * 1024;

/// Process-wide on purpose: a pool of large write buffers reused by every writer, so a
/// rewrite of a big file allocates nothing in the steady state.
static KEPT_BUFFERS: Mutex<Vec<Vec<u8>>> = Mutex::new(Vec::new());

/// An empty buffer, with the capacity of a kept one if there is one.
fn take() -> Vec<u8> {
    // A poisoned lock only means a panic elsewhere while it was held: the list is still a list.
    let mut kept = KEPT_BUFFERS.lock().unwrap_or_else(|p| p.into_inner());
    let mut buf = kept.pop().unwrap_or_default();
    buf.clear();
    buf
}

/// Keeps `buf` for a later write, if there is room and it is not too large.
fn give(mut buf: Vec<u8>) {
    if buf.capacity() == 0 || buf.capacity() > KEPT_BYTES {
        return;
    }
    buf.clear();
    let mut kept = KEPT_BUFFERS.lock().unwrap_or_else(|p| p.into_inner());
    if kept.len() < KEPT {
        kept.push(buf);
    }
}

/// A byte buffer taken from the kept ones, given back when dropped.
pub struct Bytes(Vec<u8>);

impl Bytes {
    pub fn take() -> Self {
        Bytes(take())
    }
}

impl Deref for Bytes {
    type Target = Vec<u8>;
    fn deref(&self) -> &Vec<u8> {
        &self.0
    }
}

impl DerefMut for Bytes {
    fn deref_mut(&mut self) -> &mut Vec<u8> {
        &mut self.0
    }
}

impl Drop for Bytes {
    fn drop(&mut self) {
        give(std::mem::take(&mut self.0));
    }
}

#[cfg(test)]
mod tests {
    //! The pool is process-wide, and other tests write files in parallel: these only check what
    //! holds whatever they do.
    use super::*;

    #[test]
    fn taken_buffers_are_empty_and_at_most_kept_are_kept() {
        {
            let mut b = Bytes::take();
            assert!(b.is_empty());
            b.extend_from_slice(&[7; 4096]);
        }
        for _ in 0..KEPT + 1 {
            assert!(Bytes::take().is_empty());
        }
        let kept = KEPT_BUFFERS.lock().unwrap_or_else(|p| p.into_inner());
        assert!(kept.len() <= KEPT);
        assert!(kept.iter().all(|b| b.is_empty()));
    }

    #[test]
    fn buffers_too_large_are_not_kept() {
        give(Vec::with_capacity(KEPT_BYTES + 1));
        let kept = KEPT_BUFFERS.lock().unwrap_or_else(|p| p.into_inner());
        assert!(kept.iter().all(|b| b.capacity() <= KEPT_BYTES));
    }
}
