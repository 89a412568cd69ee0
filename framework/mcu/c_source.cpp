#include "mcu/c_source.h"

#include <algorithm>
#include <cstdio>
#include <sstream>

#include "core/error.h"
#include "kernels/common/logit_order.h"
#include "mcu/c_dsp.h"

namespace lowbit::mcu {

namespace {

int64_t align4(int64_t b) { return (b + 3) / 4 * 4; }

// Packs `bits`-bit fields (values already reduced to their unsigned field) into align4 bytes.
std::vector<uint8_t> pack_fields(const std::vector<uint32_t>& fields, int bits) {
  std::vector<uint8_t> out(static_cast<size_t>(align4((static_cast<int64_t>(fields.size()) * bits + 7) / 8)), 0);
  for (size_t i = 0; i < fields.size(); ++i)
    for (int b = 0; b < bits; ++b) {
      const size_t bit = i * static_cast<size_t>(bits) + static_cast<size_t>(b);
      if ((fields[i] >> b) & 1u) out[bit / 8] |= static_cast<uint8_t>(1u << (bit % 8));
    }
  return out;
}

template <class T>
void emit_array(std::ostringstream& os, const char* type, const std::string& name, const std::vector<T>& v) {
  os << "static const " << type << " " << name << "[" << v.size() << "] = {";
  for (size_t i = 0; i < v.size(); ++i) os << (i % 16 == 0 ? "\n  " : " ") << static_cast<long long>(v[i]) << ",";
  os << "\n};\n";
}

const char* c_type(const Storage& s) {
  if (s.bits == 16) return "int16_t";
  if (s.bits == 32) return "int32_t";
  return s.enc == Encoding::unsigned_int ? "uint8_t" : "int8_t";
}

// The C element type of a constant table holding every integer in [lo, hi], and its size.
struct TableType {
  const char* name;
  int64_t bytes;
};
TableType table_type(int64_t lo, int64_t hi) {
  if (lo >= -128 && hi <= 127) return {"int8_t", 1};
  if (lo >= 0 && hi <= 255) return {"uint8_t", 1};
  if (lo >= INT16_MIN && hi <= INT16_MAX) return {"int16_t", 2};
  return {"int32_t", 4};
}

// "bias + acc * 2^shift" (the conv2d / matmul accumulator of int_network.h).
std::string with_bias(const std::string& acc, const std::string& bias, int shift) {
  return shift == 0 ? bias + " + " + acc : bias + " + " + acc + " * " + std::to_string(int64_t{1} << shift);
}

class Writer {
 public:
  Writer(const intnet::Network& net, const MemoryPlan& plan, const std::string& name)
      : net_(net), plan_(plan), name_(name), bytes_(plan.steps.size()) {}

  CSource write(const std::vector<float>& pixel_values, const std::string& source);

 private:
  std::string off(int v) const {
    return std::to_string(plan_.buffers.at(static_cast<size_t>(plan_.buffer_of_value.at(static_cast<size_t>(v)))).offset);
  }
  // LD_v(i) and ST_v(i, x) for every stored value.
  void emit_value_macros(std::ostringstream& os) const;
  void emit_weights(int s, const intnet::WeightTensor& w);
  // The code after an accumulator `acc` of channel `c` for output element `idx`.
  std::string post_code(int s, const Step& st, const std::string& c, const std::string& idx,
                        const std::string& acc = "acc");
  // The kernels of c_dsp.h apply: 8/4/2-bit integer weights in byte-aligned rows, one group,
  // x - zero point in int16, and the sums scaled by 2^(8 - bits) (plus the bias) within int32.
  // `dot_bound`: the largest |dot product| (the accumulator bound before the 2^acc_shift).
  bool dsp_ok(const intnet::WeightTensor& w, int64_t groups, const intnet::Value& in, int32_t zp, int64_t dot_bound,
              const std::vector<int32_t>& bias) const {
    if (w.kind != intnet::WeightKind::integer || groups != 1 || !dsp_weight_bits_ok(w.bits, w.per_output())) return false;
    if (in.lo - zp < INT16_MIN || in.hi - zp > INT16_MAX) return false;
    int64_t max_bias = 0;
    for (int32_t b : bias) max_bias = std::max<int64_t>(max_bias, b < 0 ? -static_cast<int64_t>(b) : b);
    return (dot_bound + 1 + max_bias) * (int64_t{1} << (8 - w.bits)) <= INT32_MAX;
  }
  // The flash arrays of a requantize (m0, shifts and zero points) or threshold (thresholds, and the
  // descending flags when any channel counts downwards) node run by step s.
  void emit_post_params(int s, const intnet::Node& post);
  void emit_step(int s, const std::vector<float>& pixel_values);
  std::string rq_call(const std::string& x, const std::string& m0, const std::string& shift) const;

  const intnet::Network& net_;
  const MemoryPlan& plan_;
  std::string name_;
  std::vector<StepBytes> bytes_;
  std::ostringstream params_, code_;
};

void Writer::emit_value_macros(std::ostringstream& os) const {
  for (size_t v = 0; v < net_.values.size(); ++v) {
    if (plan_.buffer_of_value[v] < 0) continue;
    const Storage s = storage_of(net_.values[v]);
    const std::string p = "(a + " + off(static_cast<int>(v)) + ")", id = std::to_string(v);
    std::string ld, st;
    if (s.bits == 8) {
      ld = std::string("((int32_t)((const ") + c_type(s) + " *)" + p + ")[i])";
      st = std::string("(((") + c_type(s) + " *)" + p + ")[i] = (" + c_type(s) + ")(x))";
    } else if (s.bits == 16 || s.bits == 32) {
      const std::string w = std::to_string(s.bits);
      ld = "lb_ld" + w + "(" + p + ", i)";
      st = "lb_st" + w + "(" + p + ", i, x)";
    } else {
      const std::string b = std::to_string(s.bits);
      const std::string field = "lb_field(" + p + ", i, " + b + ")";
      ld = s.enc == Encoding::twos ? "lb_sext(" + field + ", " + b + ")"
                                   : (s.enc == Encoding::bipolar ? "(2 * (int32_t)" + field + " - 1)" : "((int32_t)" + field + ")");
      st = "lb_set_field(" + p + ", i, " + b + ", " + (s.enc == Encoding::bipolar ? "(uint32_t)((x) > 0)" : "(uint32_t)(x)") + ")";
    }
    os << "#define LD_" << id << "(i) " << ld << "\n#define ST_" << id << "(i, x) " << st << "  /* "
       << net_.values[v].name << " */\n";
  }
}

std::vector<uint32_t> weight_fields(const intnet::WeightTensor& w) {
  std::vector<uint32_t> f(w.data.size());
  const int b = w.bits;
  for (size_t i = 0; i < w.data.size(); ++i) {
    const int v = w.data[i];
    if (w.kind == intnet::WeightKind::bipolar) {
      LB_CHECK(v == 1 || v == -1, "mcu export: a binary weight is ", v, " (not -1 or +1)");
      f[i] = v > 0 ? 1u : 0u;
      continue;
    }
    LB_CHECK(b >= 1 && b <= 8 && v >= -(1 << (b - 1)) && v < (1 << (b - 1)), "mcu export: weight ", v,
             " does not fit ", b, " signed bits");
    f[i] = static_cast<uint32_t>(v) & ((1u << b) - 1u);
  }
  return f;
}

std::string Writer::rq_call(const std::string& x, const std::string& m0, const std::string& shift) const {
  return std::string("lb_rq_") + intnet::rounding_name(net_.rounding) + "(" + x + ", " + m0 + ", " + shift + ")";
}

void Writer::emit_weights(int s, const intnet::WeightTensor& w) {
  const std::string id = std::to_string(s), b = std::to_string(w.bits);
  int64_t n = 0;
  std::string ld;
  if (w.bits == 8 && w.kind == intnet::WeightKind::integer) {  // one int8 per element
    std::vector<int8_t> v = w.data;
    v.resize(static_cast<size_t>(align4(static_cast<int64_t>(v.size()))), 0);
    emit_array(params_, "int8_t", "lb_w_" + id, v);
    n = static_cast<int64_t>(v.size());
    ld = "((int32_t)lb_w_" + id + "[i])";
  } else {
    const std::vector<uint8_t> packed = pack_weights(w);
    emit_array(params_, "uint8_t", "lb_w_" + id, packed);
    n = static_cast<int64_t>(packed.size());
    ld = w.kind == intnet::WeightKind::bipolar ? "(2 * (int32_t)lb_field(lb_w_" + id + ", i, 1) - 1)"
                                                : "lb_sext(lb_field(lb_w_" + id + ", i, " + b + "), " + b + ")";
  }
  bytes_[static_cast<size_t>(s)].weights += n;
  code_ << "#define W_" << id << "(i) " << ld << "\n";
}

void Writer::emit_post_params(int s, const intnet::Node& post) {
  const std::string id = std::to_string(s);
  if (const auto* a = std::get_if<intnet::RequantizeAttrs>(&post.attrs)) {
    const int64_t g = static_cast<int64_t>(a->m0.size());
    emit_array(params_, "int32_t", "lb_m0_" + id, a->m0);
    // shift (g), weight zero point (g, symmetric: 0), input and output zero points, zero padding
    std::vector<int32_t> q(static_cast<size_t>(align4(2 * g + 2)), 0);
    for (int64_t c = 0; c < g; ++c) q[static_cast<size_t>(c)] = a->shift[static_cast<size_t>(c)];
    q[static_cast<size_t>(2 * g)] = static_cast<int8_t>(a->input_zero_point);
    q[static_cast<size_t>(2 * g + 1)] = static_cast<int8_t>(a->output_zero_point);
    emit_array(params_, "int8_t", "lb_q_" + id, q);
    bytes_[static_cast<size_t>(s)].params += 4 * g + static_cast<int64_t>(q.size());
  }
  if (const auto* t = std::get_if<intnet::ThresholdAttrs>(&post.attrs)) {
    for (int64_t v : t->thresholds)
      LB_CHECK(v >= INT32_MIN && v <= INT32_MAX, "mcu export: threshold ", v, " of ", post.name, " beyond int32");
    emit_array(params_, "int32_t", "lb_t_" + id, t->thresholds);
    bytes_[static_cast<size_t>(s)].params += 4 * static_cast<int64_t>(t->thresholds.size());
    if (std::any_of(t->descending.begin(), t->descending.end(), [](uint8_t d) { return d != 0; })) {
      std::vector<uint8_t> d = t->descending;
      d.resize(static_cast<size_t>(align4(static_cast<int64_t>(d.size()))), 0);
      emit_array(params_, "uint8_t", "lb_d_" + id, d);
      bytes_[static_cast<size_t>(s)].params += static_cast<int64_t>(d.size());
    }
  }
}

std::string Writer::post_code(int s, const Step& st, const std::string& c, const std::string& idx,
                              const std::string& acc) {
  const std::string id = std::to_string(s), out = std::to_string(st.output);
  if (st.post < 0) return "ST_" + out + "(" + idx + ", " + acc + ");";
  const intnet::Node& post = net_.nodes[static_cast<size_t>(st.post)];
  if (const auto* r = std::get_if<intnet::RequantizeAttrs>(&post.attrs)) {
    const std::string k = r->m0.size() == 1 ? "0" : c;
    std::ostringstream os;
    os << "{ int32_t v = " << rq_call(r->input_zero_point ? acc + " - " + std::to_string(r->input_zero_point) : acc,
                                      "lb_m0_" + id + "[" + k + "]", "lb_q_" + id + "[" + k + "]");
    if (r->output_zero_point) os << " + " << r->output_zero_point;
    os << "; ST_" << out << "(" << idx << ", v < " << r->lo << " ? " << r->lo << " : (v > " << r->hi << " ? " << r->hi
       << " : v)); }";
    return os.str();
  }
  const auto& t = std::get<intnet::ThresholdAttrs>(post.attrs);
  std::ostringstream os;
  const std::string tk = "lb_t_" + id + "[" + c + " * " + std::to_string(t.per_channel) + " + k]";
  const bool any_desc = std::any_of(t.descending.begin(), t.descending.end(), [](uint8_t d) { return d != 0; });
  os << "{ int32_t k, n = 0; for (k = 0; k < " << t.per_channel << "; ++k) n += ";
  if (any_desc)
    os << "lb_d_" << id << "[" << c << "] ? " << acc << " <= " << tk << " : " << acc << " >= " << tk << ";";
  else
    os << acc << " >= " << tk << ";";
  os << " ST_" << out << "(" << idx << ", " << t.base << " + " << t.step << " * n); }";
  return os.str();
}

void Writer::emit_step(int s, const std::vector<float>& pixel_values) {
  const Step& st = plan_.steps[static_cast<size_t>(s)];
  const intnet::Node& node = net_.nodes[static_cast<size_t>(st.node)];
  const intnet::Value& out = net_.value(st.output);
  const std::string id = std::to_string(s), o = std::to_string(st.output);
  auto in_id = [&](size_t k) { return std::to_string(st.inputs.at(k)); };
  if (st.post >= 0) emit_post_params(s, net_.nodes[static_cast<size_t>(st.post)]);
  code_ << "\n/* step " << s << ": " << step_kind_name(st.kind) << " " << st.name << (st.in_place ? " (in place)" : "")
        << " */\n";
  switch (st.kind) {
    case StepKind::input: {
      const auto& q = std::get<intnet::QuantizeAttrs>(node.attrs);
      const int64_t c = net_.input_shape.at(0), hw = out.numel() / c;
      std::vector<int32_t> table;
      for (int64_t ch = 0; ch < c; ++ch)
        for (int p = 0; p < 256; ++p) {
          bool inside;
          const float x = kernels::fq_act(pixel_values.at(static_cast<size_t>(ch * 256 + p)), q.elem);
          table.push_back(static_cast<int32_t>(kernels::fq_quantize(x, q.scale, q.zero_point, q.elem, &inside)));
        }
      const auto [lo, hi] = std::minmax_element(table.begin(), table.end());
      const TableType t = table_type(*lo, *hi);
      emit_array(params_, t.name, "lb_in_table", table);
      bytes_[static_cast<size_t>(s)].tables += align4(static_cast<int64_t>(table.size()) * t.bytes);
      code_ << "static void lb_step_" << id << "(const uint8_t *image, uint8_t *a) {\n  int32_t c, i;\n"
            << "  for (c = 0; c < " << c << "; ++c)\n    for (i = 0; i < " << hw << "; ++i) ST_" << o << "(c * " << hw
            << " + i, lb_in_table[c * 256 + image[c * " << hw << " + i]]);\n}\n";
      return;
    }
    case StepKind::conv: {
      const auto& a = std::get<intnet::ConvAttrs>(node.attrs);
      const intnet::Value& in = net_.value(st.inputs[0]);
      const intnet::Value& acc = net_.value(node.output);
      emit_weights(s, a.weight);
      emit_array(params_, "int32_t", "lb_b_" + id, a.bias);
      bytes_[static_cast<size_t>(s)].params += 4 * static_cast<int64_t>(a.bias.size());
      const int64_t cin_g = in.shape[0] / a.groups, cout_g = acc.shape[0] / a.groups;
      const int64_t h = in.shape[1], w = in.shape[2], oh = acc.shape[1], ow = acc.shape[2];
      const PostCode post = [&](const std::string& c, const std::string& idx, const std::string& v) {
        return post_code(s, st, c, idx, v);
      };
      if (dsp_ok(a.weight, a.groups, in, a.input_zero_point, a.acc_bound >> a.acc_shift, a.bias)) {
        DspConv d;
        d.load_input = "LD_" + in_id(0);
        d.cin = in.shape[0], d.h = h, d.w = w, d.cout = acc.shape[0], d.oh = oh, d.ow = ow;
        d.kh = a.kernel_h, d.kw = a.kernel_w, d.stride_h = a.stride_h, d.stride_w = a.stride_w;
        d.dil_h = a.dil_h, d.dil_w = a.dil_w, d.pad_top = a.pad_top, d.pad_left = a.pad_left;
        d.input_zero_point = a.input_zero_point;
        code_ << dsp_conv_code(d, DspWeights{id, a.weight.bits, a.weight.per_output(), a.acc_shift}, post);
        return;
      }
      const std::string zp = a.input_zero_point ? " - " + std::to_string(a.input_zero_point) : "";
      code_ << "static void lb_step_" << id << "(uint8_t *a) {\n"
            << "  int32_t oc, oy, ox, ci, ky, kx;\n"
            << "  for (oc = 0; oc < " << acc.shape[0] << "; ++oc) {\n"
            << "    const int32_t ic0 = (oc / " << cout_g << ") * " << cin_g << ";\n"
            << "    for (oy = 0; oy < " << oh << "; ++oy)\n"
            << "      for (ox = 0; ox < " << ow << "; ++ox) {\n"
            << "        int32_t acc = 0;\n"
            << "        for (ci = 0; ci < " << cin_g << "; ++ci)\n"
            << "          for (ky = 0; ky < " << a.kernel_h << "; ++ky) {\n"
            << "            const int32_t iy = oy * " << a.stride_h << " + ky * " << a.dil_h << " - " << a.pad_top << ";\n"
            << "            if (iy < 0 || iy >= " << h << ") continue;\n"
            << "            for (kx = 0; kx < " << a.kernel_w << "; ++kx) {\n"
            << "              const int32_t ix = ox * " << a.stride_w << " + kx * " << a.dil_w << " - " << a.pad_left << ";\n"
            << "              if (ix < 0 || ix >= " << w << ") continue;\n"
            << "              acc += W_" << id << "(((oc * " << cin_g << " + ci) * " << a.kernel_h << " + ky) * " << a.kernel_w
            << " + kx) * (LD_" << in_id(0) << "(((ic0 + ci) * " << h << " + iy) * " << w << " + ix)" << zp << ");\n"
            << "            }\n          }\n"
            << "        acc = " << with_bias("acc", "lb_b_" + id + "[oc]", a.acc_shift) << ";\n"
            << "        " << post_code(s, st, "oc", "(oc * " + std::to_string(oh) + " + oy) * " + std::to_string(ow) + " + ox")
            << "\n      }\n  }\n}\n";
      return;
    }
    case StepKind::matmul: {
      const auto& a = std::get<intnet::MatmulAttrs>(node.attrs);
      emit_weights(s, a.weight);
      emit_array(params_, "int32_t", "lb_b_" + id, a.bias);
      bytes_[static_cast<size_t>(s)].params += 4 * static_cast<int64_t>(a.bias.size());
      const int64_t outs = a.weight.shape[0], ins = a.weight.shape[1];
      const std::string zp = a.input_zero_point ? " - " + std::to_string(a.input_zero_point) : "";
      if (dsp_ok(a.weight, 1, net_.value(st.inputs[0]), a.input_zero_point, a.acc_bound >> a.acc_shift, a.bias)) {
        code_ << dsp_matmul_code(DspWeights{id, a.weight.bits, ins, a.acc_shift}, "LD_" + in_id(0), outs, a.input_zero_point,
                                 [&](const std::string& c, const std::string& idx, const std::string& v) {
                                   return post_code(s, st, c, idx, v);
                                 });
        return;
      }
      code_ << "static void lb_step_" << id << "(uint8_t *a) {\n  int32_t o, i;\n"
            << "  for (o = 0; o < " << outs << "; ++o) {\n    int32_t acc = 0;\n"
            << "    for (i = 0; i < " << ins << "; ++i) acc += W_" << id << "(o * " << ins << " + i) * (LD_" << in_id(0)
            << "(i)" << zp << ");\n    acc = " << with_bias("acc", "lb_b_" + id + "[o]", a.acc_shift) << ";\n    "
            << post_code(s, st, "o", "o") << "\n  }\n}\n";
      return;
    }
    case StepKind::max_pool:
    case StepKind::avg_pool: {
      const auto& a = std::get<intnet::PoolAttrs>(node.attrs);
      const intnet::Value& in = net_.value(st.inputs[0]);
      const bool is_max = st.kind == StepKind::max_pool;
      const int64_t h = in.shape[1], w = in.shape[2], oh = out.shape[1], ow = out.shape[2];
      code_ << "static void lb_step_" << id << "(uint8_t *a) {\n  int32_t c, oy, ox, ky, kx;\n"
            << "  for (c = 0; c < " << in.shape[0] << "; ++c)\n    for (oy = 0; oy < " << oh << "; ++oy)\n"
            << "      for (ox = 0; ox < " << ow << "; ++ox) {\n"
            << (is_max ? "        int32_t m = INT32_MIN;\n" : "        int64_t m = 0;\n")
            << "        for (ky = 0; ky < " << a.kernel_h << "; ++ky) {\n"
            << "          const int32_t iy = oy * " << a.stride_h << " + ky - " << a.pad_h << ";\n"
            << "          if (iy < 0 || iy >= " << h << ") continue;\n"
            << "          for (kx = 0; kx < " << a.kernel_w << "; ++kx) {\n"
            << "            const int32_t ix = ox * " << a.stride_w << " + kx - " << a.pad_w << ";\n"
            << "            int32_t v;\n"
            << "            if (ix < 0 || ix >= " << w << ") continue;\n"
            << "            v = LD_" << in_id(0) << "((c * " << h << " + iy) * " << w << " + ix);\n"
            << (is_max ? "            if (v > m) m = v;\n" : "            m += v - " + std::to_string(a.input_zero_point) + ";\n")
            << "          }\n        }\n";
      const std::string idx = "(c * " + std::to_string(oh) + " + oy) * " + std::to_string(ow) + " + ox";
      if (is_max)
        code_ << "        ST_" << o << "(" << idx << ", m);\n";
      else
        code_ << "        m = lb_asr64(m, " << a.shift << ");\n        ST_" << o << "(" << idx << ", m < " << a.lo << " ? "
              << a.lo << " : (m > " << a.hi << " ? " << a.hi << " : (int32_t)m));\n";
      code_ << "      }\n}\n";
      return;
    }
    case StepKind::add:
    case StepKind::requantize:
    case StepKind::lut:
    case StepKind::threshold: {
      const int64_t n = out.numel(), channels = out.shape.empty() ? 1 : out.shape[0], inner = n / channels;
      Step as_post = st;
      if (st.kind == StepKind::requantize || st.kind == StepKind::threshold) {
        as_post.post = st.node;  // the element itself is the "accumulator"
        emit_post_params(s, node);
      }
      code_ << "static void lb_step_" << id << "(uint8_t *a) {\n  int32_t i;\n  for (i = 0; i < " << n << "; ++i) {\n"
            << "    const int32_t c = i / " << inner << ";\n    int32_t acc = 0;\n    (void)c;\n";
      if (st.kind == StepKind::add) {
        for (size_t k = 0; k < st.inputs.size(); ++k) {
          const intnet::Value& iv = net_.value(st.inputs[k]);
          code_ << "    acc += LD_" << in_id(k) << "(i)";
          if (iv.zero_point.size() == 1) {
            if (iv.zero_point[0]) code_ << " - " << iv.zero_point[0];
          } else {
            const std::string zn = "lb_zp_" + id + "_" + std::to_string(k);
            emit_array(params_, "int32_t", zn, iv.zero_point);
            bytes_[static_cast<size_t>(s)].params += 4 * static_cast<int64_t>(iv.zero_point.size());
            code_ << " - " << zn << "[c]";
          }
          code_ << ";\n";
        }
        code_ << "    " << post_code(s, st, "c", "i") << "\n";
      } else if (st.kind == StepKind::lut) {
        const auto& l = std::get<intnet::LutAttrs>(node.attrs);
        const auto [lo, hi] = std::minmax_element(l.table.begin(), l.table.end());
        const TableType t = table_type(*lo, *hi);
        emit_array(params_, t.name, "lb_lut_" + id, l.table);
        bytes_[static_cast<size_t>(s)].tables += align4(static_cast<int64_t>(l.table.size()) * t.bytes);
        code_ << "    acc = LD_" << in_id(0) << "(i);\n    ST_" << o << "(i, lb_lut_" << id << "[acc - " << l.in_lo << "]);\n";
      } else {
        code_ << "    acc = LD_" << in_id(0) << "(i);\n    " << post_code(s, as_post, "c", "i") << "\n";
      }
      code_ << "  }\n}\n";
      return;
    }
    case StepKind::concat: {
      code_ << "static void lb_step_" << id << "(uint8_t *a) {\n  int32_t i;\n";
      int64_t offset = 0;
      for (size_t k = 0; k < st.inputs.size(); ++k) {
        const int64_t n = net_.value(st.inputs[k]).numel();
        code_ << "  for (i = 0; i < " << n << "; ++i) ST_" << o << "(" << offset << " + i, LD_" << in_id(k) << "(i));\n";
        offset += n;
      }
      code_ << "}\n";
      return;
    }
  }
}

CSource Writer::write(const std::vector<float>& pixel_values, const std::string& source) {
  const std::string up = [&] {
    std::string u = name_;
    for (char& ch : u) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
    return u;
  }();
  const intnet::Value& out = net_.value(net_.output);
  const int64_t classes = out.numel();
  const int steps = static_cast<int>(plan_.steps.size());
  for (int s = 0; s < steps; ++s) emit_step(s, pixel_values);

  std::ostringstream src;
  src << "/* " << name_ << ".c: generated by `lowbit export mcu` from " << source << ". Do not edit.\n"
      << "   Integer-only inference: no float, no malloc; requantization rounding: " << intnet::rounding_name(net_.rounding)
      << ".\n\n   Arena layout (offsets in bytes; a buffer is reused by values whose lifetimes do not overlap):\n";
  for (size_t b = 0; b < plan_.buffers.size(); ++b) {
    const Buffer& buf = plan_.buffers[b];
    src << "     [" << buf.offset << ", " << buf.offset + buf.bytes << ")";
    for (int v : buf.values) {
      const int first = plan_.step_of_value[static_cast<size_t>(v)], last = plan_.last_read[static_cast<size_t>(v)];
      src << "  " << net_.values[static_cast<size_t>(v)].name << " (" << storage_of(net_.values[static_cast<size_t>(v)]).bits
          << "-bit, steps " << first << "-" << std::max(first, last) << ")";
    }
    src << "\n";
  }
  src << "   arena: " << plan_.arena_bytes << " bytes */\n#include \"" << name_ << ".h\"\n#include \"lowbit_rt.h\"\n\n";
  src << params_.str() << "\n";
  // Logit scales, exactly (mantissa * 2^exponent): the class is the first largest logit * scale.
  std::vector<uint64_t> mant;
  std::vector<int32_t> expo, sign;
  for (int64_t c = 0; c < classes; ++c) {
    const kernels::ExactScale e = kernels::exact_scale(out.scale_of(c));
    mant.push_back(e.mantissa);
    expo.push_back(e.exponent);
    sign.push_back(e.sign);
  }
  src << "static const uint64_t lb_logit_mant[" << classes << "] = {";
  for (uint64_t m : mant) src << "\n  " << m << "ULL,";
  src << "\n};\n";
  std::ostringstream logit;
  emit_array(logit, "int16_t", "lb_logit_exp", expo);
  emit_array(logit, "int8_t", "lb_logit_sign", sign);
  src << logit.str() << "\n";
  emit_value_macros(src);
  src << code_.str();
  src << "\nconst " << name_ << "_step_info " << name_ << "_steps[" << up << "_STEPS] = {\n";
  for (int s = 0; s < steps; ++s) {
    const Step& st = plan_.steps[static_cast<size_t>(s)];
    const intnet::Value& v = net_.value(st.output);
    src << "  {\"" << st.name << "\", \"" << step_kind_name(st.kind) << "\", " << st.output << ", " << st.macs << "u, "
        << off(st.output) << "u, " << v.numel() << "u, " << storage_of(v).bits << ", " << static_cast<int>(storage_of(v).enc)
        << "},\n";
  }
  src << "};\n\nint " << name_ << "_classify_traced(const uint8_t *image, " << name_ << "_arena_t *arena, int32_t *logits,\n"
      << "    " << name_ << "_step_hook hook, void *ctx) {\n  uint8_t *a = (uint8_t *)arena->words;\n  int32_t c;\n";
  for (int s = 0; s < steps; ++s)
    src << "  lb_step_" << s << (s == 0 ? "(image, a)" : "(a)") << ";\n  if (hook) hook(ctx, " << s << ");\n";
  src << "  for (c = 0; c < " << classes << "; ++c) logits[c] = LD_" << net_.output << "(c);\n"
      << "  return lb_class_of(logits, lb_logit_mant, lb_logit_exp, lb_logit_sign, " << classes << ");\n}\n\n"
      << "int " << name_ << "_classify(const uint8_t *image, " << name_ << "_arena_t *arena, int32_t *logits) {\n"
      << "  return " << name_ << "_classify_traced(image, arena, logits, 0, 0);\n}\n";

  std::ostringstream hdr;
  const std::vector<int64_t>& ishape = net_.input_shape;
  hdr << "/* " << name_ << ".h: the integer-only " << net_.name << " classifier, generated by `lowbit export mcu` from " << source
      << ".\n   C99; no float, no malloc, no libc beyond memcpy; reentrant given its arena.\n"
      << "   Requantization rounding: " << intnet::rounding_name(net_.rounding) << " (docs/mcu-export.md). */\n"
      << "#ifndef " << up << "_H\n#define " << up << "_H\n#include <stdint.h>\n\n"
      << "#define " << up << "_INPUT_CHANNELS " << ishape.at(0) << "\n#define " << up << "_INPUT_HEIGHT " << ishape.at(1)
      << "\n#define " << up << "_INPUT_WIDTH " << ishape.at(2) << "\n#define " << up << "_INPUT_BYTES "
      << ishape[0] * ishape[1] * ishape[2] << "  /* uint8 (C, H, W) row-major, as the dataset stores it */\n"
      << "#define " << up << "_CLASSES " << classes << "\n#define " << up << "_ARENA_BYTES " << plan_.arena_bytes
      << "\n#define " << up << "_STEPS " << steps << "\n#define " << up << "_ROUNDING \"" << intnet::rounding_name(net_.rounding)
      << "\"\n/* real logit c = logits[c] * scale[c] (an initializer for a double array; the inference never uses it) */\n"
      << "#define " << up << "_LOGIT_SCALES {";
  for (int64_t c = 0; c < classes; ++c) {
    char buf[40];
    std::snprintf(buf, sizeof buf, "%.17g", out.scale_of(c));
    hdr << (c ? ", " : "") << buf;
  }
  hdr << "}\n\n/* The working memory of one inference (4-byte aligned); one per concurrent caller. */\n"
      << "typedef struct { uint32_t words[(" << up << "_ARENA_BYTES + 3) / 4]; } " << name_ << "_arena_t;\n\n"
      << "/* image: " << up << "_INPUT_BYTES bytes; logits: " << up << "_CLASSES int32. Returns the class: the first\n"
      << "   largest logit * scale (compared exactly in integers). */\n"
      << "int " << name_ << "_classify(const uint8_t *image, " << name_ << "_arena_t *arena, int32_t *logits);\n\n"
      << "/* The same, calling hook(ctx, step) after each step (profiling, dumps). */\n"
      << "typedef void (*" << name_ << "_step_hook)(void *ctx, int step);\n"
      << "int " << name_ << "_classify_traced(const uint8_t *image, " << name_ << "_arena_t *arena, int32_t *logits,\n    "
      << name_ << "_step_hook hook, void *ctx);\n\n"
      << "/* Per step: the value it writes (name, id in the integer network), its multiply-accumulates, where\n"
      << "   the value lies in the arena (offset, element count, bits per element; encoding 0 two's\n"
      << "   complement, 1 unsigned, 2 bipolar: 1 = +1, 0 = -1). */\n"
      << "typedef struct {\n  const char *name, *kind;\n  int32_t value;\n  uint32_t macs, offset, count;\n"
      << "  uint8_t bits, encoding;\n} "
      << name_ << "_step_info;\nextern const " << name_ << "_step_info " << name_ << "_steps[" << up << "_STEPS];\n\n#endif\n";
  return CSource{hdr.str(), src.str(), bytes_};
}

}  // namespace

std::vector<uint8_t> pack_weights(const intnet::WeightTensor& w) { return pack_fields(weight_fields(w), w.bits); }

CSource write_c_source(const intnet::Network& net, const MemoryPlan& plan, const std::string& name,
                       const std::vector<float>& pixel_values, const std::string& source) {
  LB_CHECK(net.input_shape.size() == 3, "mcu export: the network input must be an image (C, H, W)");
  LB_CHECK(static_cast<int64_t>(pixel_values.size()) == net.input_shape[0] * 256, "mcu export: expected ",
           net.input_shape[0] * 256, " input pixel values, got ", pixel_values.size());
  Writer w(net, plan, name);
  return w.write(pixel_values, source);
}

}  // namespace lowbit::mcu
