// Generated kernels for conv2d and matmul steps with 8-, 4- or 2-bit integer weights: the input
// window is copied once per output pixel into an int16 column ("im2col": x - zero point, 0 for
// padding, on the stack), then two output channels x two pixels accumulate from it with dual
// 16-bit multiply-accumulates (lb_smlad: the Cortex-M4 SMLAD under __ARM_FEATURE_DSP, plain C
// elsewhere, the same integers).
//
// One 32-bit word of packed weights is unpacked in registers: for each field position f of a byte
// the fields are moved to the top of their bytes and masked, so each byte holds 2^(8 - bits) * w
// as an int8, and SXTB16 (of the word, and of it rotated by 8) gives two int16 pairs. Columns are
// stored in the matching order (emit_permute), and the raw sums carry the factor 2^(8 - bits),
// shifted out exactly before the bias is added: the caller checks that the scaled sums fit int32.
#pragma once
#include <cstdint>
#include <functional>
#include <string>

namespace lowbit::mcu {

// The code after an accumulator: (channel expression, output index expression, accumulator name).
using PostCode = std::function<std::string(const std::string&, const std::string&, const std::string&)>;

struct DspWeights {
  std::string id;  // step number: lb_step_<id>, lb_w_<id>, lb_b_<id>, W_<id>(i) (tail loads)
  int bits = 8;    // 8, 4 or 2 (two's complement)
  int64_t k = 0;   // weights per output channel (row length)
  int acc_shift = 0;  // the dot product is scaled by 2^acc_shift before the bias is added
};

// Rows of k weights of `bits` bits start on byte boundaries, and the width has a kernel.
bool dsp_weight_bits_ok(int bits, int64_t k);

struct DspConv {
  std::string load_input;  // "LD_3": the input value's element load macro
  int64_t cin = 1, h = 1, w = 1, cout = 1, oh = 1, ow = 1;
  int64_t kh = 1, kw = 1, stride_h = 1, stride_w = 1, dil_h = 1, dil_w = 1, pad_top = 0, pad_left = 0;
  int32_t input_zero_point = 0;
};

std::string dsp_conv_code(const DspConv& c, const DspWeights& w, const PostCode& post);

// matmul (out, in = w.k): one column, two outputs at a time.
std::string dsp_matmul_code(const DspWeights& w, const std::string& load_input, int64_t outs, int32_t input_zero_point,
                            const PostCode& post);

}  // namespace lowbit::mcu
