// Philox blocks for given counters and keys: the known-answer check of shaders/philox.wgsl.

@group(0) @binding(0) var<storage, read> counters: array<vec4<u32>>;
@group(0) @binding(1) var<storage, read> keys: array<vec2<u32>>;
@group(0) @binding(2) var<storage, read_write> blocks: array<vec4<u32>>;

@compute @workgroup_size(64)
fn philox_blocks(@builtin(global_invocation_id) id: vec3<u32>) {
    let i = id.x;
    if (i >= arrayLength(&blocks)) {
        return;
    }
    blocks[i] = philox4x32_10(counters[i], keys[i]);
}
