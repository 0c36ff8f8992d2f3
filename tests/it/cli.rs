//! `check` and `once` as a user runs them.

use crate::util::{show, Sandbox};
