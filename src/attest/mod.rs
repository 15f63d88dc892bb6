//! (in progress)

pub mod key;
pub mod sign;
