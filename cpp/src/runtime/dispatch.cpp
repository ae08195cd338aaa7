// Chooses the SIMD variant at import from CPUID, or from RNNKIT_FORCE_ISA (for tests and for
// users who need to rule out a CPU-specific difference). Compiled with baseline flags.
#include <atomic>
#include <cstdlib>
#include <stdexcept>
#include <string>

#include "rnnkit/runtime/kernel_table.hpp"

namespace rnnkit {

#ifdef RNNKIT_HAVE_generic
extern const KernelTable kernel_table_generic;
#endif
#ifdef RNNKIT_HAVE_v1
extern const KernelTable kernel_table_v1;
#endif
#ifdef RNNKIT_HAVE_v3
extern const KernelTable kernel_table_v3;
#endif
#ifdef RNNKIT_HAVE_v4
extern const KernelTable kernel_table_v4;
#endif

namespace {

bool cpu_supports(const std::string& isa) {
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
  __builtin_cpu_init();
  const bool v3 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
                  __builtin_cpu_supports("bmi") && __builtin_cpu_supports("bmi2") &&
                  __builtin_cpu_supports("avx") && __builtin_cpu_supports("sse4.2");
  if (isa == "v3") return v3;
  if (isa == "v4") {
    return v3 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
           __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl") &&
           __builtin_cpu_supports("avx512cd");
  }
#endif
  return isa == "v1" || isa == "generic";
}

std::string names(const std::vector<const KernelTable*>& tables) {
  std::string out;
  for (const KernelTable* t : tables) out += (out.empty() ? "" : ", ") + std::string(t->isa);
  return out;
}

const KernelTable* find_runnable(const std::string& isa) {
  for (const KernelTable* t : compiled_tables()) {
    if (isa == t->isa) {
      if (!cpu_supports(isa)) {
        throw std::invalid_argument("rnnkit: this CPU cannot run the SIMD level '" + isa +
                                    "'; it supports: " + names(supported_tables()));
      }
      return t;
    }
  }
  throw std::invalid_argument("rnnkit: unknown SIMD level '" + isa +
                              "'; compiled in: " + names(compiled_tables()));
}

const KernelTable* initial_table() {
  if (const char* forced = std::getenv("RNNKIT_FORCE_ISA"); forced != nullptr && *forced) {
    return find_runnable(forced);
  }
  return supported_tables().back();
}

std::atomic<const KernelTable*>& active() {
  static std::atomic<const KernelTable*> table{initial_table()};
  return table;
}

}  // namespace

const std::vector<const KernelTable*>& compiled_tables() {
  static const std::vector<const KernelTable*> tables = {
#ifdef RNNKIT_HAVE_generic
      &kernel_table_generic,
#endif
#ifdef RNNKIT_HAVE_v1
      &kernel_table_v1,
#endif
#ifdef RNNKIT_HAVE_v3
      &kernel_table_v3,
#endif
#ifdef RNNKIT_HAVE_v4
      &kernel_table_v4,
#endif
  };
  return tables;
}

std::vector<const KernelTable*> supported_tables() {
  std::vector<const KernelTable*> out;
  for (const KernelTable* t : compiled_tables()) {
    if (cpu_supports(t->isa)) out.push_back(t);
  }
  return out;
}

const KernelTable& active_table() { return *active().load(); }

void set_active_table(const std::string& isa) { active().store(find_runnable(isa)); }

}  // namespace rnnkit
