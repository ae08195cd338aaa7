// Kernel code lives in rnnkit::<level>, an inline namespace named after the SIMD level the
// translation unit is compiled for, so the linker never merges one template compiled for two
// levels (which would let the baseline path run AVX-512 code). Plain data shared by all levels
// (api.hpp) stays in rnnkit itself.
#pragma once

#ifndef RNNKIT_ISA
#define RNNKIT_ISA generic
#endif
