// Which compiled SIMD variant runs the kernels. Eigen-free: included by the bindings.
#pragma once

#include <string>
#include <vector>

#include "rnnkit/api.hpp"

namespace rnnkit {

// The variants compiled into this module, lowest level first.
const std::vector<const KernelTable*>& compiled_tables();
// The variants this CPU can run, lowest level first.
std::vector<const KernelTable*> supported_tables();
// The active variant: the best supported one, or RNNKIT_FORCE_ISA when set (read once).
const KernelTable& active_table();
// Choose a variant by name; throws std::invalid_argument naming the choices if it is unknown or
// this CPU cannot run it.
void set_active_table(const std::string& isa);

}  // namespace rnnkit
