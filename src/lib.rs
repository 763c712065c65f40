//! icq simulates interface-constrained semi-Markov decision processes (IC-SMDPs), trains the
//! decentralized IC-Q learner on many instances at once, and answers exactly what the learner
//! should converge to.
//!
//! Data flows one way: builders and model files → [`model::Model`] (validated) →
//! [`oracle`] (exact answers) and the learners → metrics → files and figures.

#![warn(missing_docs)]

pub mod backend;
pub mod bench;
pub mod config;
pub mod error;
pub mod fit;
pub mod io;
pub mod lanes;
pub mod learn;
pub mod model;
pub mod oracle;
pub mod plot;
pub mod records;
pub mod report;
pub mod rng;
pub mod run;
pub mod sweep;

pub use error::{Error, Result};
