// Philox4x32-10, the twin of `philox4x32_10` in src/rng.rs and shaders/philox.wgsl.
#pragma once

#if defined(__CUDACC__) || defined(__CUDACC_RTC__)
#define ICQ_FN __device__ __forceinline__
ICQ_FN unsigned int icq_mulhi(unsigned int a, unsigned int b) { return __umulhi(a, b); }
#else
#define ICQ_FN static inline
static inline unsigned int icq_mulhi(unsigned int a, unsigned int b) {
    return (unsigned int)(((unsigned long long)a * (unsigned long long)b) >> 32);
}
#endif

struct icq_u4 {
    unsigned int x, y, z, w;
};

ICQ_FN icq_u4 icq_philox4x32_10(icq_u4 c, unsigned int k0, unsigned int k1) {
    for (int round = 0; round < 10; round++) {
        if (round > 0) {
            k0 += 0x9E3779B9u;
            k1 += 0xBB67AE85u;
        }
        unsigned int hi0 = icq_mulhi(0xD2511F53u, c.x), lo0 = 0xD2511F53u * c.x;
        unsigned int hi1 = icq_mulhi(0xCD9E8D57u, c.z), lo1 = 0xCD9E8D57u * c.z;
        icq_u4 n;
        n.x = hi1 ^ c.y ^ k0;
        n.y = lo1;
        n.z = hi0 ^ c.w ^ k1;
        n.w = lo0;
        c = n;
    }
    return c;
}
