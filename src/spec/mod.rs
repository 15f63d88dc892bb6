//! `hoist.toml`: the types users write ([`file`]), the errors that point at a
//! line and column ([`error`]), and the resolution into a [`Plan`] that the
//! build runs. Nothing outside the spec is read before the plan is valid,
//! except the checks that the plan's sources exist.

mod cache_repo;
pub mod defaults;
pub mod error;
pub mod file;
pub mod plan;
pub mod scan;

pub use error::SpecError;
pub use plan::{BaseImage, ImagePlan, Plan, PlanOptions};
