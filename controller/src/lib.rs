//! ferrolb controller: IP allocator (pure) and Service reconciler.

pub mod allocator;
pub mod error;

pub use error::{AllocError, Error};
