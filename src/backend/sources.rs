//! Every kernel source, embedded once: WGSL modules are assembled here from their parts.

/// `shaders/philox.wgsl`.
pub const PHILOX_WGSL: &str = include_str!("../../shaders/philox.wgsl");

/// `shaders/f16.wgsl`: rounding to f16 in integer arithmetic.
pub const F16_WGSL: &str = include_str!("../../shaders/f16.wgsl");

/// The f16 rounding check kernel (`round_all`), the rounding included.
pub fn f16_check_wgsl() -> String {
    format!(
        "{F16_WGSL}\n{}",
        include_str!("../../shaders/f16_check.wgsl")
    )
}

/// The Philox known-answer kernel (`philox_blocks`), Philox included.
pub fn philox_check_wgsl() -> String {
    format!(
        "{PHILOX_WGSL}\n{}",
        include_str!("../../shaders/philox_check.wgsl")
    )
}

/// The fused epoch kernel (`epochs`) for hidden width `width` and `actions` actions, with
/// `workgroup` invocations per workgroup, Philox and the f16 rounding included.
pub fn epoch_wgsl(workgroup: u32, width: u32, actions: u32) -> String {
    format!(
        "const WORKGROUP: u32 = {workgroup}u;\nconst WIDTH: u32 = {}u;\nconst ACTIONS: u32 = {}u;\n{PHILOX_WGSL}\n{F16_WGSL}\n{}",
        width.max(1),
        actions.max(1),
        include_str!("../../shaders/epoch.wgsl")
    )
}
