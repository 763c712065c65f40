//! Every kernel source, embedded once: WGSL modules are assembled here from their parts.

/// `shaders/philox.wgsl`.
pub const PHILOX_WGSL: &str = include_str!("../../shaders/philox.wgsl");

/// The Philox known-answer kernel (`philox_blocks`), Philox included.
pub fn philox_check_wgsl() -> String {
    format!(
        "{PHILOX_WGSL}\n{}",
        include_str!("../../shaders/philox_check.wgsl")
    )
}
