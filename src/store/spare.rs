//! Buffers kept between writes of a credentials file: the bytes read and the text rendered.
//!
//! Each is as large as the file. Freshly allocated for every write, a 1 MB buffer is a new
//! `mmap` that the kernel faults in page by page and takes back on `free`: for the 0.9 MB file
//! of 1,000 profiles, that was most of the write's cost above the file system's own. Kept, it is
//! touched once. At most [`KEPT`] buffers of at most [`KEPT_BYTES`] each are kept (a daemon with
//! one ordinary file keeps two buffers of its size); a larger one is freed as before.
//! A kept buffer is cleared, not zeroed: it holds the file's bytes until the next write
//! overwrites them, as freed heap memory did before (nothing in awscredd zeroizes secrets).

use std::ops::{Deref, DerefMut};
use std::sync::Mutex;

/// How many buffers are kept: a read and a rendering, for two files written at once.
const KEPT: usize = 4;
/// The largest buffer kept (about 17,000 profiles of temporary credentials).
const KEPT_BYTES: usize = 16 * 1024 * 1024;

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

/// A text buffer taken from the kept ones, given back when dropped.
pub struct Text(String);

impl Text {
    pub fn take() -> Self {
        // An empty buffer is valid UTF-8.
        Text(String::from_utf8(take()).unwrap_or_default())
    }
}

impl Deref for Text {
    type Target = String;
    fn deref(&self) -> &String {
        &self.0
    }
}

impl DerefMut for Text {
    fn deref_mut(&mut self) -> &mut String {
        &mut self.0
    }
}

impl Drop for Text {
    fn drop(&mut self) {
        give(std::mem::take(&mut self.0).into_bytes());
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
            let mut t = Text::take();
            assert!(t.is_empty());
            t.push_str("secret");
        }
        for _ in 0..KEPT + 1 {
            assert!(Bytes::take().is_empty());
            assert!(Text::take().is_empty());
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
