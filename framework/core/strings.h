// Small string helpers shared by the "did you mean" messages (config keys, HDF5 dataset names,
// imported tensor names).
#pragma once
#include <cstddef>
#include <string>

namespace lowbit {

// Levenshtein distance (insertions, deletions and substitutions of one character each cost 1).
size_t edit_distance(const std::string& a, const std::string& b);

}  // namespace lowbit
