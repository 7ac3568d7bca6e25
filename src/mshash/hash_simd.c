/* XXH3-128 of one block, compiled for AVX2 and picked at run time.  The
 * distribution's libxxhash is built for the baseline x86-64 (SSE2), which
 * makes hashing, not reading, the bottleneck of a scan; this file compiles
 * xxHash's own inline code a second time with AVX2 enabled, for this file
 * only, and msh_hash_block uses it when the CPU has AVX2.  The results are
 * the same bits (XXH3 is defined independently of the vector width). */
#include <stddef.h>
#include <stdint.h>

#include "msh_format.h"

#if defined(__x86_64__) && (defined(__clang__) || defined(__GNUC__))
#include <immintrin.h> /* xxhash.h includes it only when the whole build targets AVX2 */
#ifdef __clang__
#pragma clang attribute push(__attribute__((target("avx2"))), apply_to = function)
#else
#pragma GCC push_options
#pragma GCC target("avx2")
#endif
#define XXH_INLINE_ALL
#define XXH_VECTOR XXH_AVX2
#include <xxhash.h>

static struct msh_hash hash_avx2(const void *data, size_t len)
{
	XXH128_hash_t x = XXH3_128bits(data, len);
	return (struct msh_hash){.hi = x.high64, .lo = x.low64};
}
#ifdef __clang__
#pragma clang attribute pop
#else
#pragma GCC pop_options
#endif

msh_hasher msh_pick_hasher(void)
{
	__builtin_cpu_init();
	return __builtin_cpu_supports("avx2") ? hash_avx2 : NULL;
}
#else
msh_hasher msh_pick_hasher(void) { return NULL; }
#endif
