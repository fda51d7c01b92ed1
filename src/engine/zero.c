/*
 * zero.c: is a buffer all zeros?  An AVX2 OR-reduction with early exit,
 * chosen at run time, and a scalar word loop for other CPUs.  Called on
 * cache-resident chunks, so it runs near L2 bandwidth.
 */
#include "engine/engine.h"

#include <string.h>

#if defined(__x86_64__)
#include <immintrin.h>

__attribute__((target("avx2")))
static bool zero_avx2(const uint8_t *p, size_t len)
{
    size_t i = 0;
    for (; i + 256 <= len; i += 256) {
        __m256i a = _mm256_loadu_si256((const __m256i *)(p + i));
        __m256i b = _mm256_loadu_si256((const __m256i *)(p + i + 32));
        __m256i c = _mm256_loadu_si256((const __m256i *)(p + i + 64));
        __m256i d = _mm256_loadu_si256((const __m256i *)(p + i + 96));
        __m256i e = _mm256_loadu_si256((const __m256i *)(p + i + 128));
        __m256i f = _mm256_loadu_si256((const __m256i *)(p + i + 160));
        __m256i g = _mm256_loadu_si256((const __m256i *)(p + i + 192));
        __m256i h = _mm256_loadu_si256((const __m256i *)(p + i + 224));
        __m256i o = _mm256_or_si256(
            _mm256_or_si256(_mm256_or_si256(a, b), _mm256_or_si256(c, d)),
            _mm256_or_si256(_mm256_or_si256(e, f), _mm256_or_si256(g, h)));
        if (!_mm256_testz_si256(o, o))
            return false;
    }
    for (; i < len; i++)
        if (p[i])
            return false;
    return true;
}
#endif

#if defined(__x86_64__)
/* Chosen once before main(), so the hot path reads a constant. */
static bool zero_have_avx2;

__attribute__((constructor))
static void zero_init(void)
{
    __builtin_cpu_init();
    zero_have_avx2 = __builtin_cpu_supports("avx2");
}
#endif

static bool zero_scalar(const uint8_t *p, size_t len)
{
    size_t i = 0;
    for (; i + 32 <= len; i += 32) {
        uint64_t a, b, c, d;
        memcpy(&a, p + i, 8);
        memcpy(&b, p + i + 8, 8);
        memcpy(&c, p + i + 16, 8);
        memcpy(&d, p + i + 24, 8);
        if (a | b | c | d)
            return false;
    }
    for (; i < len; i++)
        if (p[i])
            return false;
    return true;
}

bool buf_is_zero(const void *buf, size_t len)
{
    const uint8_t *p = buf;
    if (!len)
        return true;
    /* a cheap sample first: most data buffers fail here */
    if (p[0] || p[len - 1] || p[len / 2])
        return false;
#if defined(__x86_64__)
    if (zero_have_avx2)
        return zero_avx2(p, len);
#endif
    return zero_scalar(p, len);
}
