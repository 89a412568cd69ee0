#include "verify/verify.h"

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <sstream>

#include "autograd/variable.h"
#include "core/error.h"
#include "core/text_file.h"
#include "intnet/engine.h"
#include "io/h5_file.h"
#include "kernels/common/logit_order.h"
#include "verify/layer_dump.h"

namespace lowbit::verify {

namespace {

int64_t argmax_row(const float* p, int64_t c) {
  int64_t best = 0;
  for (int64_t j = 1; j < c; ++j)
    if (p[j] > p[best]) best = j;
  return best;
}

// Compares the fake-quant output y (n samples) of one layer with the engine's integers on the
// value's grid: q_ref = round(y / scale[c] + zp[c]).
// `offset` (per channel, may be empty): integers the lowering added for floor rounding.
void compare_layer(const intnet::Value& v, const Tensor& y, const std::vector<int32_t>& ints, int64_t first_image,
                   const std::vector<int32_t>& offset, LayerAgreement& a) {
  const Tensor yc = y.contiguous();
  const int64_t per = v.numel();
  const int64_t n = yc.numel() / per;
  LB_CHECK(n * per == yc.numel() && static_cast<int64_t>(ints.size()) == n * per, "verify: layer ", v.name,
           " has ", yc.numel(), " fake-quant values but ", ints.size(), " integers");
  const int64_t channels = v.scale.size() == 1 && v.zero_point.size() == 1 && offset.size() <= 1 ? 1 : v.shape.at(0);
  const int64_t inner = per / channels;
  const float* p = yc.f32();
  for (int64_t i = 0; i < n * per; ++i) {
    const int64_t c = (i % per) / inner;
    const double ref = std::nearbyint(static_cast<double>(p[i]) / v.scale_of(c) + v.zero_point_of(c)) +
                       (offset.empty() ? 0 : offset[offset.size() == 1 ? 0 : static_cast<size_t>(c)]);
    const int64_t diff = std::llabs(static_cast<int64_t>(ref) - ints[static_cast<size_t>(i)]);
    ++a.total;
    if (diff == 0) {
      ++a.equal;
      continue;
    }
    a.max_diff = std::max(a.max_diff, diff);
    if (a.first_image < 0) {
      a.first_image = first_image + i / per;
      a.first_element = i % per;
      a.engine_int = ints[static_cast<size_t>(i)];
      a.fake_quant_int = static_cast<int64_t>(ref);
    }
  }
}

std::string shape_str(const std::vector<int64_t>& s) {
  std::string out = "(";
  for (size_t i = 0; i < s.size(); ++i) out += (i ? ", " : "") + std::to_string(s[i]);
  return out + ")";
}

// (c, y, x) of a flat index within a per-sample shape, for messages.
std::string position(const std::vector<int64_t>& shape, int64_t flat) {
  std::vector<int64_t> idx(shape.size());
  for (size_t d = shape.size(); d-- > 0;) {
    idx[d] = flat % shape[d];
    flat /= shape[d];
  }
  return shape_str(idx);
}

void write_dump(const std::string& dir, const IntegerModel& m, const std::vector<int32_t>& logits,
                const std::vector<float>& fq_logits, const std::vector<int32_t>& labels,
                const std::vector<std::vector<int32_t>>& layer_ints, int64_t layer_images) {
  std::filesystem::create_directories(dir);
  const intnet::Value& out = m.lowered.net.value(m.lowered.net.output);
  const int64_t classes = out.numel(), n = static_cast<int64_t>(labels.size());
  {
    io::H5Writer w(dir + "/integer_logits.h5");
    Tensor l = Tensor::empty({n, classes}, DType::s32);
    std::copy(logits.begin(), logits.end(), l.data<int32_t>());
    w.write_tensor("logits", l);
    Tensor f = Tensor::from_vector(Shape({n, classes}), fq_logits);
    w.write_tensor("fake_quant_logits", f);
    Tensor s = Tensor::empty({classes});
    for (int64_t c = 0; c < classes; ++c) s.f32()[c] = static_cast<float>(out.scale_of(c));
    w.write_tensor("scale", s);
    Tensor y = Tensor::empty({n}, DType::s32);
    std::copy(labels.begin(), labels.end(), y.data<int32_t>());
    w.write_tensor("labels", y);
    w.set_attr("/", "rounding", intnet::rounding_name(m.lowered.net.rounding));
    w.set_attr("/", "weights", m.checkpoint);
    w.commit();
  }
  {
    // The exported runners print the same lines (docs/mcu-export.md): `diff` compares them.
    std::vector<kernels::ExactScale> scales(static_cast<size_t>(classes));
    for (int64_t c = 0; c < classes; ++c) scales[static_cast<size_t>(c)] = kernels::exact_scale(out.scale_of(c));
    std::ostringstream os;
    for (int64_t i = 0; i < n; ++i) {
      const int32_t* q = logits.data() + i * classes;
      os << "img " << i << " class " << kernels::class_of(q, scales.data(), classes) << " logits";
      for (int64_t c = 0; c < classes; ++c) os << ' ' << q[c];
      os << '\n';
    }
    write_text_file(dir + "/integer_logits.txt", os.str());
  }
  io::H5Writer w(dir + "/layers.h5");
  for (size_t v = 0; v < layer_ints.size(); ++v) {
    const intnet::Value& val = m.lowered.net.values[v];
    if (layer_ints[v].empty()) continue;
    std::vector<int64_t> dims{layer_images};
    dims.insert(dims.end(), val.shape.begin(), val.shape.end());
    Tensor t = Tensor::empty(Shape(dims), DType::s32);
    std::copy(layer_ints[v].begin(), layer_ints[v].end(), t.data<int32_t>());
    w.write_tensor("values/" + std::to_string(v) + "_" + val.name, t);
  }
  w.set_attr("/", "images", layer_images);
  w.commit();
  write_layer_dump(dir, m.lowered.net, layer_ints, layer_images);
}

}  // namespace

Comparison::Comparison(nn::Graph& g, const deploy::LoweredModel& lowered)
    : g_(g), lowered_(lowered), engine_(lowered.net) {
  const intnet::Network& net = lowered.net;
  layer_of_node_.assign(g.nodes().size(), -1);
  for (size_t k = 0; k < g.nodes().size(); ++k) {
    const int v = lowered.node_value[k];
    if (v < 0) continue;
    bool seen = false;
    for (const auto& l : r_.layers) seen = seen || l.value == v;
    if (seen) continue;  // an identity layer (dropout) shares its input's value
    LayerAgreement a;
    a.name = g.nodes()[k].name;
    a.value = v;
    a.bits = net.value(v).bits;
    a.is_signed = net.value(v).is_signed;
    for (const auto& n : net.nodes) {
      if (n.output != v) continue;
      a.op = intnet::op_name(n.op);
      if (const auto* c = std::get_if<intnet::ConvAttrs>(&n.attrs)) a.finer_than_float = c->acc_shift > 0;
      if (const auto* mm = std::get_if<intnet::MatmulAttrs>(&n.attrs)) a.finer_than_float = mm->acc_shift > 0;
    }
    layer_of_node_[k] = static_cast<int>(r_.layers.size());
    r_.layers.push_back(a);
  }
}

void Comparison::add_batch(const Tensor& x, const Tensor& labels) {
  NoGradGuard no_grad;
  const intnet::Network& net = lowered_.net;
  const int64_t bs = x.size(0);
  const std::vector<Variable> outs = g_.forward_all(Variable(x));
  const Tensor xc = x.contiguous();
  engine_.run(xc.f32(), bs, true);
  for (size_t k = 0; k < g_.nodes().size(); ++k)
    if (layer_of_node_[k] >= 0) {
      LayerAgreement& a = r_.layers[static_cast<size_t>(layer_of_node_[k])];
      const auto off = lowered_.rounding_offset.find(a.value);
      compare_layer(net.value(a.value), outs[k].data(), engine_.value(a.value), r_.images,
                    off == lowered_.rounding_offset.end() ? std::vector<int32_t>{} : off->second, a);
    }
  const intnet::Value& out = net.value(net.output);
  const int64_t classes = out.numel();
  fq_logits_ = outs.back().data().contiguous();
  LB_CHECK(fq_logits_.numel() == bs * classes, "verify: the fake-quant model gives ", fq_logits_.numel() / bs,
           " outputs per image, the integer network ", classes);
  const std::vector<int32_t>& ints = engine_.output();
  const int32_t* y = labels.defined() ? labels.data<int32_t>() : nullptr;
  std::vector<kernels::ExactScale> scales(static_cast<size_t>(classes));
  for (int64_t c = 0; c < classes; ++c) scales[static_cast<size_t>(c)] = kernels::exact_scale(out.scale_of(c));
  for (int64_t i = 0; i < bs; ++i) {
    // The class as a device computes it: q * scale compared exactly, the first class on ties.
    const int32_t* q = ints.data() + i * classes;
    const int64_t best_int = kernels::class_of(q, scales.data(), classes);
    int64_t at_top = 0;
    for (int64_t c = 0; c < classes; ++c)
      at_top += kernels::compare_scaled(q[c], scales[static_cast<size_t>(c)], q[best_int], scales[static_cast<size_t>(best_int)]) == 0;
    r_.integer_ties += at_top > 1;
    const int64_t best_fq = argmax_row(fq_logits_.f32() + i * classes, classes);
    r_.top1_agree += best_int == best_fq;
    if (y) {
      r_.fake_quant_correct += best_fq == y[i];
      r_.integer_correct += best_int == y[i];
    }
  }
  r_.images += bs;
}

VerifyResult Comparison::finish() {
  r_.first_divergence = -1;
  for (size_t i = 0; i < r_.layers.size() && r_.first_divergence < 0; ++i)
    if (r_.layers[i].equal != r_.layers[i].total && !r_.layers[i].finer_than_float) r_.first_divergence = static_cast<int>(i);
  return r_;
}

VerifyResult run_verify(IntegerModel& m, data::DataLoader& loader, const VerifyOptions& opt) {
  m.model.graph->eval();
  const intnet::Network& net = m.lowered.net;
  Comparison cmp(*m.model.graph, m.lowered);
  std::vector<int32_t> all_logits, labels;
  std::vector<float> all_fq;
  std::vector<std::vector<int32_t>> layer_ints(net.values.size());
  int64_t layer_images = 0;
  loader.start_epoch(0);
  data::Batch b;
  while (loader.next(b)) {
    const int64_t bs = b.x.size(0);
    cmp.add_batch(b.x, b.y);
    if (opt.dump_dir.empty()) continue;
    const std::vector<int32_t>& ints = cmp.engine().output();
    const Tensor& fq = cmp.fake_quant_logits();
    all_logits.insert(all_logits.end(), ints.begin(), ints.end());
    all_fq.insert(all_fq.end(), fq.f32(), fq.f32() + fq.numel());
    labels.insert(labels.end(), b.y.data<int32_t>(), b.y.data<int32_t>() + bs);
    const int64_t take = std::min(bs, opt.dump_layer_images - layer_images);
    for (size_t v = 0; take > 0 && v < net.values.size(); ++v) {
      const std::vector<int32_t>& src = cmp.engine().value(static_cast<int>(v));
      layer_ints[v].insert(layer_ints[v].end(), src.begin(), src.begin() + take * net.values[v].numel());
    }
    layer_images += std::max<int64_t>(take, 0);
  }
  VerifyResult r = cmp.finish();
  LB_CHECK(r.images > 0, "verify: the test set is empty");
  if (!opt.dump_dir.empty()) write_dump(opt.dump_dir, m, all_logits, all_fq, labels, layer_ints, layer_images);
  return r;
}

std::string format_report(const IntegerModel& m, const VerifyResult& r) {
  std::ostringstream os;
  char line[256];
  std::snprintf(line, sizeof line, "%-20s %-11s %-8s %12s %10s %9s\n", "layer", "op", "grid", "integers", "identical",
                "max_diff");
  os << line;
  for (const LayerAgreement& a : r.layers) {
    const std::string grid = std::to_string(a.bits) + (a.is_signed ? "-bit s" : "-bit u");
    std::snprintf(line, sizeof line, "%-20s %-11s %-8s %12lld %10.6f %9lld%s\n", a.name.c_str(), a.op.c_str(), grid.c_str(),
                  static_cast<long long>(a.total), a.fraction(), static_cast<long long>(a.max_diff),
                  a.finer_than_float ? "  (acc_shift: finer than float32)" : "");
    os << line;
  }
  if (r.integer_ties > 0)
    os << "top-1 ties: " << r.integer_ties << " image(s) whose largest integer logit is shared by two classes or more "
       << "(the first wins, as on a device; binary networks tie often)\n";
  if (r.first_divergence < 0) {
    os << "every compared integer is identical\n";
  } else {
    const LayerAgreement& a = r.layers[static_cast<size_t>(r.first_divergence)];
    os << "first divergence: layer " << a.name << " (" << a.op << "), image " << a.first_image << ", element "
       << position(m.lowered.net.value(a.value).shape, a.first_element) << ": integer " << a.engine_int
       << ", fake-quant " << a.fake_quant_int << "\n";
    if (a.op == "requantize" && m.lowered.net.rounding == intnet::RequantRounding::tflm)
      os << "note: TFLM's double rounding rounds x * M twice (docs/integer-network.md); --rounding single rounds "
            "once, as the fake-quant model does\n";
    if (a.op == "requantize" && !m.lowered.notes.empty())
      os << "note: " << m.lowered.notes.size() << " approximation(s) of the lowering above (float biases or batch norm "
            "shifts rounded to int32): Int32Bias and quant.bn_fold make them exact\n";
  }
  return os.str();
}

}  // namespace lowbit::verify
