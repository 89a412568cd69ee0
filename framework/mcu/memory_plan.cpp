#include "mcu/memory_plan.h"

#include <algorithm>
#include <numeric>

#include "core/error.h"

namespace lowbit::mcu {

namespace {

int64_t align4(int64_t b) { return (b + 3) / 4 * 4; }

// The input elements a pool output reads, lowest first: every output must read no element below
// its own index for the pool to write over its input (elements below it are overwritten).
bool pool_in_place_ok(const intnet::PoolAttrs& a, const intnet::Value& in, const intnet::Value& out) {
  const int64_t c = in.shape[0], h = in.shape[1], w = in.shape[2], oh = out.shape[1], ow = out.shape[2];
  for (int64_t ch = 0; ch < c; ++ch)
    for (int64_t oy = 0; oy < oh; ++oy)
      for (int64_t ox = 0; ox < ow; ++ox) {
        const int64_t o = (ch * oh + oy) * ow + ox;
        const int64_t iy = std::max<int64_t>(0, oy * a.stride_h - a.pad_h), ix = std::max<int64_t>(0, ox * a.stride_w - a.pad_w);
        if ((ch * h + iy) * w + ix < o) return false;
      }
  return true;
}

bool same_storage(const Storage& a, const Storage& b) { return a.bits == b.bits && a.enc == b.enc; }

struct Member {
  int value;
  int64_t bytes;
  int first, last;
};

bool overlap_in_time(const Member& a, const Member& b) { return a.first <= b.last && b.first <= a.last; }

}  // namespace

const char* step_kind_name(StepKind k) {
  switch (k) {
    case StepKind::input: return "input";
    case StepKind::conv: return "conv2d";
    case StepKind::matmul: return "matmul";
    case StepKind::requantize: return "requantize";
    case StepKind::max_pool: return "max_pool";
    case StepKind::avg_pool: return "avg_pool";
    case StepKind::add: return "add";
    case StepKind::concat: return "concat";
    case StepKind::lut: return "lut";
    case StepKind::threshold: return "threshold";
  }
  return "?";
}

Storage storage_of(const intnet::Value& v) {
  Storage s;
  auto fits = [&](int64_t lo, int64_t hi) { return v.lo >= lo && v.hi <= hi; };
  if (v.bits == 1 && v.is_signed) {
    LB_CHECK(fits(-1, 1), "mcu export: value ", v.name, " is bipolar (1 bit, signed) but spans [", v.lo, ", ", v.hi, "]");
    s.bits = 1;
    s.enc = Encoding::bipolar;
    return s;
  }
  if (v.bits >= 1 && v.bits <= 8) {
    s.bits = v.bits;
    s.enc = v.is_signed ? Encoding::twos : Encoding::unsigned_int;
    const int64_t lo = v.is_signed ? -(int64_t{1} << (v.bits - 1)) : 0;
    const int64_t hi = v.is_signed ? (int64_t{1} << (v.bits - 1)) - 1 : (int64_t{1} << v.bits) - 1;
    LB_CHECK(fits(lo, hi), "mcu export: value ", v.name, " is ", v.bits, "-bit ", v.is_signed ? "signed" : "unsigned",
             " but spans [", v.lo, ", ", v.hi, "]: the integer network is inconsistent (lower it again)");
    return s;
  }
  s.bits = intnet::storage_bits(v.bits);
  if (s.bits == 16 && !fits(INT16_MIN, INT16_MAX)) s.bits = 32;  // an unsigned 16-bit range
  return s;
}

int64_t storage_bytes(const intnet::Value& v) { return align4((v.numel() * storage_of(v).bits + 7) / 8); }

MemoryPlan plan_memory(const intnet::Network& net) {
  net.validate();
  const size_t nv = net.values.size();
  std::vector<std::vector<int>> readers(nv);
  for (size_t k = 0; k < net.nodes.size(); ++k)
    for (int i : net.nodes[k].inputs) readers[static_cast<size_t>(i)].push_back(static_cast<int>(k));
  std::vector<int> alias_of(nv, -1);  // reshape outputs: the value whose bytes they are
  auto root = [&](int v) {
    while (alias_of[static_cast<size_t>(v)] >= 0) v = alias_of[static_cast<size_t>(v)];
    return v;
  };

  MemoryPlan p;
  std::vector<bool> fused(net.nodes.size(), false);
  for (size_t k = 0; k < net.nodes.size(); ++k) {
    if (fused[k]) continue;
    const intnet::Node& n = net.nodes[k];
    Step s;
    s.node = static_cast<int>(k);
    s.inputs = n.inputs;
    s.output = n.output;
    s.name = n.name;
    switch (n.op) {
      case intnet::OpKind::reshape: alias_of[static_cast<size_t>(n.output)] = n.inputs.at(0); continue;
      case intnet::OpKind::quantize: s.kind = StepKind::input; break;
      case intnet::OpKind::conv2d: s.kind = StepKind::conv; break;
      case intnet::OpKind::matmul: s.kind = StepKind::matmul; break;
      case intnet::OpKind::add: s.kind = StepKind::add; break;
      case intnet::OpKind::requantize: s.kind = StepKind::requantize; break;
      case intnet::OpKind::max_pool: s.kind = StepKind::max_pool; break;
      case intnet::OpKind::avg_pool: s.kind = StepKind::avg_pool; break;
      case intnet::OpKind::concat: s.kind = StepKind::concat; break;
      case intnet::OpKind::lut: s.kind = StepKind::lut; break;
      case intnet::OpKind::threshold: s.kind = StepKind::threshold; break;
    }
    if (s.kind == StepKind::conv || s.kind == StepKind::matmul || s.kind == StepKind::add) {
      const std::vector<int>& r = readers[static_cast<size_t>(n.output)];
      if (r.size() == 1 && n.output != net.output) {
        const intnet::Node& post = net.nodes[static_cast<size_t>(r[0])];
        if (post.op == intnet::OpKind::requantize || post.op == intnet::OpKind::threshold) {
          s.post = r[0];
          s.output = post.output;
          s.name = post.name;
          fused[static_cast<size_t>(r[0])] = true;
        }
      }
    }
    const intnet::Value& out = net.value(n.output);
    const int64_t outs = out.numel();
    if (const auto* c = std::get_if<intnet::ConvAttrs>(&n.attrs)) s.macs = outs * c->weight.per_output();
    if (const auto* m = std::get_if<intnet::MatmulAttrs>(&n.attrs)) s.macs = outs * m->weight.per_output();
    p.steps.push_back(s);
  }

  const int steps = static_cast<int>(p.steps.size());
  p.step_of_value.assign(nv, -1);
  p.last_read.assign(nv, -1);
  for (int s = 0; s < steps; ++s) {
    p.step_of_value[static_cast<size_t>(p.steps[static_cast<size_t>(s)].output)] = s;
    for (int i : p.steps[static_cast<size_t>(s)].inputs) p.last_read[static_cast<size_t>(root(i))] = s;
  }
  p.last_read[static_cast<size_t>(root(net.output))] = steps;  // the logits are copied out at the end
  for (size_t v = 0; v < nv; ++v)
    if (alias_of[v] >= 0) p.step_of_value[v] = p.step_of_value[static_cast<size_t>(root(static_cast<int>(v)))];

  // Buffers: a new one per stored value, unless the step may write over an input that dies there.
  p.buffer_of_value.assign(nv, -1);
  std::vector<std::vector<Member>> members;
  for (int s = 0; s < steps; ++s) {
    Step& st = p.steps[static_cast<size_t>(s)];
    const intnet::Value& out = net.value(st.output);
    const Storage so = storage_of(out);
    const int64_t bytes = storage_bytes(out);
    int buffer = -1;
    const bool elementwise = st.kind == StepKind::requantize || st.kind == StepKind::lut || st.kind == StepKind::threshold ||
                             (st.kind == StepKind::add && st.post >= 0);
    const bool pool = st.kind == StepKind::max_pool || st.kind == StepKind::avg_pool;
    for (size_t k = 0; k < st.inputs.size() && buffer < 0 && (elementwise || pool); ++k) {
      const int in = root(st.inputs[k]);
      const intnet::Value& iv = net.value(st.inputs[k]);
      if (p.last_read[static_cast<size_t>(in)] != s || !same_storage(storage_of(iv), so)) continue;
      if (pool && !pool_in_place_ok(std::get<intnet::PoolAttrs>(net.nodes[static_cast<size_t>(st.node)].attrs), iv, out)) continue;
      if (pool && k > 0) continue;
      buffer = p.buffer_of_value[static_cast<size_t>(in)];
      if (k > 0) std::swap(st.inputs[0], st.inputs[k]);  // the overwritten input is input 0
      st.in_place = true;
    }
    if (buffer < 0) {
      buffer = static_cast<int>(p.buffers.size());
      p.buffers.emplace_back();
      members.emplace_back();
    }
    Buffer& b = p.buffers[static_cast<size_t>(buffer)];
    b.values.push_back(st.output);
    b.bytes = std::max(b.bytes, bytes);
    members[static_cast<size_t>(buffer)].push_back({st.output, bytes, s, std::max(s, p.last_read[static_cast<size_t>(st.output)])});
    p.buffer_of_value[static_cast<size_t>(st.output)] = buffer;
  }
  for (size_t v = 0; v < nv; ++v)
    if (alias_of[v] >= 0) p.buffer_of_value[v] = p.buffer_of_value[static_cast<size_t>(root(static_cast<int>(v)))];

  // Placement: buffers in some order, each at the lowest offset where it collides with no placed
  // buffer alive at the same time (TFLite Micro's greedy planner, largest first). The order
  // matters (an in-place pool's small output can share a region a large buffer would block), so
  // several orders are tried, every order when there are at most 8 buffers, and the smallest
  // arena wins; it stops early at the lower bound (the most bytes alive in one step).
  const size_t nb = p.buffers.size();
  int64_t bound = 0;
  for (int st = 0; st < steps; ++st) {
    int64_t alive = 0;
    for (const auto& ms : members)
      for (const Member& m : ms) alive += (m.first <= st && st <= m.last) ? m.bytes : 0;
    bound = std::max(bound, alive);
  }
  std::vector<size_t> order(nb);
  std::iota(order.begin(), order.end(), size_t{0});
  std::vector<std::vector<size_t>> orders;
  auto by = [&](auto less) {
    std::vector<size_t> o = order;
    std::stable_sort(o.begin(), o.end(), less);
    orders.push_back(o);
  };
  auto first_step = [&](size_t b) { return members[b].front().first; };
  by([&](size_t a, size_t b) { return p.buffers[a].bytes > p.buffers[b].bytes; });
  by([&](size_t a, size_t b) { return first_step(a) < first_step(b); });
  by([&](size_t a, size_t b) { return members[a].back().last - first_step(a) > members[b].back().last - first_step(b); });
  std::vector<int64_t> best_offsets;
  int64_t best = INT64_MAX;
  auto try_order = [&](const std::vector<size_t>& o) {
    std::vector<int64_t> offsets(nb, 0);
    std::vector<size_t> placed;
    int64_t arena = 0;
    for (size_t b : o) {
      std::vector<int64_t> candidates{0};
      for (size_t q : placed)
        for (const Member& m : members[q]) candidates.push_back(offsets[q] + m.bytes);
      std::sort(candidates.begin(), candidates.end());
      for (int64_t off : candidates) {
        bool ok = true;
        for (size_t q = 0; q < placed.size() && ok; ++q)
          for (const Member& mq : members[placed[q]])
            for (const Member& mb : members[b])
              if (overlap_in_time(mq, mb) && off < offsets[placed[q]] + mq.bytes && offsets[placed[q]] < off + mb.bytes)
                ok = false;
        if (ok) {
          offsets[b] = off;
          break;
        }
      }
      placed.push_back(b);
      arena = std::max(arena, offsets[b] + p.buffers[b].bytes);
      if (arena >= best) return;
    }
    best = arena;
    best_offsets = offsets;
  };
  for (const auto& o : orders) try_order(o);
  if (nb <= 8) {
    std::vector<size_t> o = order;
    do try_order(o);
    while (best > bound && std::next_permutation(o.begin(), o.end()));
  }
  for (size_t b = 0; b < nb; ++b) p.buffers[b].offset = best_offsets[b];
  p.arena_bytes = best;
  return p;
}

}  // namespace lowbit::mcu
