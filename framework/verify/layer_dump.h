// Per-layer integers in a plain format that a C runner can write as easily as Lowbit:
//   DIR/layers/index.txt        one line per value: "ID NAME IMAGES COUNT" (ID: the value's id in the
//                               integer network, NAME its name, COUNT integers per image)
//   DIR/layers/ID_NAME.i32      IMAGES x COUNT int32, little-endian, image after image
// `lowbit verify --dump` writes every value of the first images; an exported runner
// (`host_runner --dump`) writes the values it stores; `lowbit verify RUN --against DIR` runs the
// integer engine on the same test images and names the first layer, image and element that differ.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "intnet/int_network.h"
#include "verify/integer_model.h"

namespace lowbit::verify {

struct LayerDumpEntry {
  int value = -1;
  std::string name;
  int64_t images = 0, count = 0;
  std::vector<int32_t> data;  // images * count
};

// `ints[v]`: value v's integers for `images` images (empty: not written).
void write_layer_dump(const std::string& dir, const intnet::Network& net, const std::vector<std::vector<int32_t>>& ints,
                      int64_t images);

// Reads DIR/layers; throws a lowbit::Error naming the file and line for a malformed index, a
// missing or truncated data file.
std::vector<LayerDumpEntry> read_layer_dump(const std::string& dir);

struct AgainstResult {
  int64_t values = 0, images = 0, integers = 0;  // compared
  bool identical = true;
  std::string first;  // the first difference in network order, as a sentence ("" when identical)
};

// The engine's integers on the first images of the model's test split against a dump.
AgainstResult compare_against(IntegerModel& m, const std::vector<LayerDumpEntry>& dump);

}  // namespace lowbit::verify
