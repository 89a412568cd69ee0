#include "verify/layer_dump.h"

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "core/error.h"
#include "core/text_file.h"
#include "data/loader.h"
#include "intnet/engine.h"
#include "train/trainer.h"

namespace lowbit::verify {

namespace {

std::string file_of(const std::string& dir, int value, const std::string& name) {
  return dir + "/layers/" + std::to_string(value) + "_" + name + ".i32";
}

}  // namespace

void write_layer_dump(const std::string& dir, const intnet::Network& net, const std::vector<std::vector<int32_t>>& ints,
                      int64_t images) {
  std::filesystem::create_directories(dir + "/layers");
  std::ostringstream index;
  for (size_t v = 0; v < ints.size(); ++v) {
    if (ints[v].empty()) continue;
    const intnet::Value& val = net.values[v];
    index << v << ' ' << val.name << ' ' << images << ' ' << val.numel() << '\n';
    std::ofstream f(file_of(dir, static_cast<int>(v), val.name), std::ios::binary | std::ios::trunc);
    for (int32_t x : ints[v]) {  // little-endian whatever the host
      const uint32_t u = static_cast<uint32_t>(x);
      const char b[4] = {static_cast<char>(u & 0xff), static_cast<char>((u >> 8) & 0xff), static_cast<char>((u >> 16) & 0xff),
                         static_cast<char>(u >> 24)};
      f.write(b, 4);
    }
    LB_CHECK(f.good(), "cannot write ", file_of(dir, static_cast<int>(v), val.name), " (disk full?)");
  }
  write_text_file(dir + "/layers/index.txt", index.str());
}

std::vector<LayerDumpEntry> read_layer_dump(const std::string& dir) {
  const std::string index = dir + "/layers/index.txt";
  std::ifstream in(index);
  LB_CHECK(in.good(), "no ", index, ": give a folder written by `lowbit verify --dump` or `host_runner --dump`");
  std::vector<LayerDumpEntry> out;
  std::string line;
  for (int lineno = 1; std::getline(in, line); ++lineno) {
    if (line.empty()) continue;
    std::istringstream ls(line);
    LayerDumpEntry e;
    std::string extra;
    LB_CHECK((ls >> e.value >> e.name >> e.images >> e.count) && !(ls >> extra) && e.value >= 0 && e.images > 0 &&
                 e.count > 0 && e.images <= 100000 && e.count <= (int64_t{1} << 28),
             index, ":", lineno, ": expected \"ID NAME IMAGES COUNT\" with positive numbers, got \"", line, "\"");
    const std::string file = file_of(dir, e.value, e.name);
    std::ifstream f(file, std::ios::binary | std::ios::ate);
    LB_CHECK(f.good(), index, ":", lineno, ": no data file ", file);
    const int64_t want = e.images * e.count * 4, have = static_cast<int64_t>(f.tellg());
    LB_CHECK(have == want, file, ": ", have, " bytes, the index says ", e.images, " x ", e.count, " int32 = ", want,
             " (truncated or from another export)");
    f.seekg(0);
    std::vector<unsigned char> bytes(static_cast<size_t>(want));
    f.read(reinterpret_cast<char*>(bytes.data()), want);
    e.data.resize(static_cast<size_t>(e.images * e.count));
    for (size_t i = 0; i < e.data.size(); ++i)
      e.data[i] = static_cast<int32_t>(static_cast<uint32_t>(bytes[4 * i]) | (static_cast<uint32_t>(bytes[4 * i + 1]) << 8) |
                                       (static_cast<uint32_t>(bytes[4 * i + 2]) << 16) |
                                       (static_cast<uint32_t>(bytes[4 * i + 3]) << 24));
    out.push_back(std::move(e));
  }
  LB_CHECK(!out.empty(), index, " lists no values");
  return out;
}

AgainstResult compare_against(IntegerModel& m, const std::vector<LayerDumpEntry>& dump) {
  const intnet::Network& net = m.lowered.net;
  int64_t images = 0;
  for (const LayerDumpEntry& e : dump) {
    LB_CHECK(e.value < static_cast<int>(net.values.size()) && net.values[static_cast<size_t>(e.value)].name == e.name &&
                 net.values[static_cast<size_t>(e.value)].numel() == e.count,
             "the dump's value ", e.value, " (", e.name, ", ", e.count, " integers) is not in this run's integer network: ",
             "was it exported from another run or with another --rounding?");
    images = std::max(images, e.images);
  }
  LB_CHECK(images <= m.test.size(), "the dump has ", images, " images, the test split ", m.test.size());
  data::LoaderOptions lo = train::eval_loader_options(m.cfg);
  lo.batch_size = images;
  data::DataLoader loader(m.test, lo);
  loader.start_epoch(0);
  data::Batch b;
  LB_CHECK(loader.next(b), "the test split is empty");
  intnet::Engine engine(net);
  engine.run(b.x.f32(), images, true);
  AgainstResult r;
  r.images = images;
  // Network order: the value written first in the network is reported first.
  std::vector<const LayerDumpEntry*> order;
  for (const LayerDumpEntry& e : dump) order.push_back(&e);
  auto step_of = [&](int v) {
    for (size_t k = 0; k < net.nodes.size(); ++k)
      if (net.nodes[k].output == v) return static_cast<int64_t>(k);
    return int64_t{-1};
  };
  std::stable_sort(order.begin(), order.end(),
                   [&](const LayerDumpEntry* a, const LayerDumpEntry* b) { return step_of(a->value) < step_of(b->value); });
  for (const LayerDumpEntry* e : order) {
    const std::vector<int32_t>& mine = engine.value(e->value);
    ++r.values;
    for (int64_t img = 0; img < e->images && r.identical; ++img)
      for (int64_t i = 0; i < e->count; ++i) {
        ++r.integers;
        const int32_t want = mine[static_cast<size_t>(img * e->count + i)], got = e->data[static_cast<size_t>(img * e->count + i)];
        if (want != got) {
          std::ostringstream os;
          os << "first difference: layer " << e->name << " (value " << e->value << "), image " << img << ", element " << i
             << ": engine " << want << ", dump " << got;
          r.first = os.str();
          r.identical = false;
          break;
        }
      }
    if (!r.identical) break;
  }
  return r;
}

}  // namespace lowbit::verify
