// round_f16 over given values: the check of shaders/f16.wgsl against the `half` crate.

@group(0) @binding(0) var<storage, read> values: array<f32>;
@group(0) @binding(1) var<storage, read_write> rounded: array<f32>;

@compute @workgroup_size(64)
fn round_all(@builtin(global_invocation_id) id: vec3<u32>) {
    let i = id.x;
    if (i >= arrayLength(&rounded)) {
        return;
    }
    rounded[i] = round_f16(values[i]);
}
