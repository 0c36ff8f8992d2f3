//! Integration tests: the real `awscredd` binary, driven the way users drive it, with a
//! private HOME so no test ever touches the machine's `~/.aws`.

mod util;

mod cli;
mod concurrency;
mod crash;
mod interop;
