// Rounding to f16 in integer arithmetic: x rounded to the nearest IEEE binary16 (ties to even),
// returned as the f32 of the same value — what the CPU reference (the `half` crate) and the
// CUDA kernel (`cvt.rn.f16.f32`) store. WGSL's own quantizeToF16 leaves the rounding and the
// subnormals to the device, so the kernel does not use it.

fn round_f16(x: f32) -> f32 {
    let u = bitcast<u32>(x);
    let sign = u & 0x80000000u;
    let e = (u >> 23u) & 0xFFu;
    if (e == 0xFFu) {
        return x;
    }
    let m = u & 0x7FFFFFu;
    let fe = i32(e) - 112; // the f16 exponent field
    if (fe >= 31) {
        return bitcast<f32>(sign | 0x7F800000u);
    }
    if (fe <= 0) {
        if (fe < -10) {
            return bitcast<f32>(sign); // below half the smallest subnormal
        }
        let full = m | 0x800000u;
        let shift = u32(14 - fe);
        var h = full >> shift;
        let rem = full & ((1u << shift) - 1u);
        let half = 1u << (shift - 1u);
        if (rem > half || (rem == half && (h & 1u) == 1u)) {
            h += 1u;
        }
        // h counts 2^-24 (h = 1024 is the smallest normal): exact in f32.
        return bitcast<f32>(sign | bitcast<u32>(f32(h) * 5.9604644775390625e-8));
    }
    var h = (u32(fe) << 10u) | (m >> 13u);
    let rem = m & 0x1FFFu;
    if (rem > 0x1000u || (rem == 0x1000u && (h & 1u) == 1u)) {
        h += 1u; // a carry may reach the next binade, or infinity
    }
    let he = h >> 10u;
    if (he >= 31u) {
        return bitcast<f32>(sign | 0x7F800000u);
    }
    return bitcast<f32>(sign | ((he + 112u) << 23u) | ((h & 0x3FFu) << 13u));
}
