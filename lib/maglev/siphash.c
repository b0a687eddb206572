/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * SipHash-2-4 (J.-P. Aumasson, D. J. Bernstein, "SipHash: a fast short-input
 * PRF", 2012): the hash behind Maglev's offset and skip. A keyed PRF rather
 * than a plain mixer so that the two hashes of one identity are independent,
 * and a published algorithm with test vectors so that any other
 * implementation of the table contract can reproduce ours.
 */
#include <stdint.h>

#include "maglev.h"

static inline uint64_t
rotl64(uint64_t x, unsigned int b)
{
	return (x << b) | (x >> (64 - b));
}

static inline uint64_t
load_le64(const uint8_t *p)
{
	uint64_t v = 0;

	for (int i = 7; i >= 0; i--)
		v = (v << 8) | p[i];
	return v;
}

struct sip_state {
	uint64_t v0, v1, v2, v3;
};

static inline void
sip_round(struct sip_state *s)
{
	s->v0 += s->v1;
	s->v1 = rotl64(s->v1, 13);
	s->v1 ^= s->v0;
	s->v0 = rotl64(s->v0, 32);
	s->v2 += s->v3;
	s->v3 = rotl64(s->v3, 16);
	s->v3 ^= s->v2;
	s->v0 += s->v3;
	s->v3 = rotl64(s->v3, 21);
	s->v3 ^= s->v0;
	s->v2 += s->v1;
	s->v1 = rotl64(s->v1, 17);
	s->v1 ^= s->v2;
	s->v2 = rotl64(s->v2, 32);
}

static inline void
sip_compress(struct sip_state *s, uint64_t m)
{
	s->v3 ^= m;
	sip_round(s);
	sip_round(s);
	s->v0 ^= m;
}

uint64_t
sg_siphash24(const uint8_t key[16], const void *data, uint32_t len)
{
	const uint8_t *in = data;
	uint64_t k0 = load_le64(key);
	uint64_t k1 = load_le64(key + 8);
	struct sip_state s = {
		.v0 = k0 ^ 0x736f6d6570736575ull,
		.v1 = k1 ^ 0x646f72616e646f6dull,
		.v2 = k0 ^ 0x6c7967656e657261ull,
		.v3 = k1 ^ 0x7465646279746573ull,
	};
	uint32_t whole = len & ~7u;
	uint64_t last = (uint64_t)(len & 0xff) << 56;

	for (uint32_t i = 0; i < whole; i += 8)
		sip_compress(&s, load_le64(in + i));
	for (uint32_t i = whole; i < len; i++)
		last |= (uint64_t)in[i] << (8 * (i - whole));
	sip_compress(&s, last);

	s.v2 ^= 0xff;
	for (int i = 0; i < 4; i++)
		sip_round(&s);
	return s.v0 ^ s.v1 ^ s.v2 ^ s.v3;
}
