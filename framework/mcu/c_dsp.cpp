#include "mcu/c_dsp.h"

#include <sstream>

namespace lowbit::mcu {

namespace {

std::string str(int64_t v) { return std::to_string(v); }

// Fields of `bits` bits per byte.
int64_t per_byte(int bits) { return 8 / bits; }
// Elements per 32-bit weight word.
int64_t group(int bits) { return 4 * per_byte(bits); }

// The dual-MAC loop over whole weight words for rows wa_p / wb_p (packed, byte aligned) and
// columns c0 (and c1), then the scalar tail in natural order. Sub-byte fields are moved to the top
// of their byte (masked, so each byte holds 2^(8 - bits) * w as an int8) and sign-extended in pairs:
// the raw sums carry that factor, which the caller shifts out.
void emit_dual_loop(std::ostringstream& os, const std::string& ind, const DspWeights& w, bool two_columns) {
  const int64_t g = group(w.bits), p = per_byte(w.bits), kg = w.k / g * g;
  const std::string top = w.bits == 4 ? "0xF0F0F0F0u" : "0xC0C0C0C0u";
  os << ind << "for (k = 0; k < " << kg << "; k += " << g << ") {\n"
     << ind << "  uint32_t wa, wb, ma, mb, c, wa02, wa13, wb02, wb13;\n"
     << ind << "  memcpy(&wa, wa_p + k / " << p << ", 4);\n" << ind << "  memcpy(&wb, wb_p + k / " << p << ", 4);\n";
  for (int64_t f = 0; f < p; ++f) {
    const int64_t shift = 8 - w.bits * (f + 1);
    if (w.bits == 8) {
      os << ind << "  ma = wa;\n" << ind << "  mb = wb;\n";
    } else {
      os << ind << "  ma = (wa" << (shift ? " << " + str(shift) : "") << ") & " << top << ";\n"
         << ind << "  mb = (wb" << (shift ? " << " + str(shift) : "") << ") & " << top << ";\n";
    }
    os << ind << "  wa02 = lb_sxtb16(ma); wa13 = lb_sxtb16_ror8(ma); wb02 = lb_sxtb16(mb); wb13 = lb_sxtb16_ror8(mb);\n";
    const std::string at = "k + " + str(4 * f);
    os << ind << "  memcpy(&c, c0 + " << at << ", 4); a00 = lb_smlad(wa02, c, a00); a10 = lb_smlad(wb02, c, a10);\n"
       << ind << "  memcpy(&c, c0 + " << at << " + 2, 4); a00 = lb_smlad(wa13, c, a00); a10 = lb_smlad(wb13, c, a10);\n";
    if (two_columns)
      os << ind << "  memcpy(&c, c1 + " << at << ", 4); a01 = lb_smlad(wa02, c, a01); a11 = lb_smlad(wb02, c, a11);\n"
         << ind << "  memcpy(&c, c1 + " << at << " + 2, 4); a01 = lb_smlad(wa13, c, a01); a11 = lb_smlad(wb13, c, a11);\n";
  }
  os << ind << "  (void)wa13; (void)wb13;\n" << ind << "}\n";
  if (kg < w.k) {
    const std::string scale = w.bits == 8 ? "" : " * " + str(int64_t{1} << (8 - w.bits));
    os << ind << "for (k = " << kg << "; k < " << w.k << "; ++k) {\n"
       << ind << "  const int32_t xa = W_" << w.id << "(oa * " << w.k << " + k)" << scale << ", xb = W_" << w.id << "(ob * "
       << w.k << " + k)" << scale << ";\n"
       << ind << "  a00 += xa * c0[k]; a10 += xb * c0[k];\n";
    if (two_columns) os << ind << "  a01 += xa * c1[k]; a11 += xb * c1[k];\n";
    os << ind << "}\n";
  }
}

// Natural order -> the order the loop reads: in each group of 4 * P elements (P fields per byte),
// word 2f holds elements (f, 2P + f) and word 2f + 1 holds (P + f, 3P + f).
void emit_permute(std::ostringstream& os, const std::string& ind, const std::string& col, int bits, int64_t k) {
  const int64_t g = group(bits), p = per_byte(bits), kg = k / g * g;
  if (kg == 0) return;
  os << ind << "{\n" << ind << "  int16_t *t, nat[" << g << "];\n"
     << ind << "  for (t = " << col << "; t < " << col << " + " << kg << "; t += " << g << ") {\n"
     << ind << "    memcpy(nat, t, sizeof nat);\n";
  for (int64_t f = 0; f < p; ++f)
    os << ind << "    t[" << 4 * f << "] = nat[" << f << "]; t[" << 4 * f + 1 << "] = nat[" << 2 * p + f << "]; t["
       << 4 * f + 2 << "] = nat[" << p + f << "]; t[" << 4 * f + 3 << "] = nat[" << 3 * p + f << "];\n";
  os << ind << "  }\n" << ind << "}\n";
}

// Bias plus the raw sum with the field factor shifted out.
std::string total(const DspWeights& w, const std::string& channel, const std::string& raw) {
  const std::string b = "lb_b_" + w.id + "[" + channel + "]";
  const std::string dot = w.bits == 8 ? raw : "lb_asr32(" + raw + ", " + str(8 - w.bits) + ")";
  return b + " + " + dot + (w.acc_shift ? " * " + str(int64_t{1} << w.acc_shift) : "");
}

}  // namespace

bool dsp_weight_bits_ok(int bits, int64_t k) { return (bits == 8 || bits == 4 || bits == 2) && (k * bits) % 8 == 0; }

std::string dsp_conv_code(const DspConv& c, const DspWeights& w, const PostCode& post) {
  const int64_t k = w.k, pixels = c.oh * c.ow, row_bytes = k * w.bits / 8;
  std::ostringstream os;
  const std::string zp = c.input_zero_point ? " - " + str(c.input_zero_point) : "";
  // Padding or windows that reach past the input need the bounds checks.
  const bool padded = c.pad_top > 0 || c.pad_left > 0 || (c.oh - 1) * c.stride_h + (c.kh - 1) * c.dil_h - c.pad_top >= c.h ||
                      (c.ow - 1) * c.stride_w + (c.kw - 1) * c.dil_w - c.pad_left >= c.w;
  os << "static void lb_step_" << w.id << "(uint8_t *a) {\n"
     << "  int16_t col[2][" << (k + 1) / 2 * 2 << "];  /* two im2col columns (x - zero point) in the loop's order */\n"
     << "  int32_t p, oa, k;\n"
     << "  for (p = 0; p < " << pixels << "; p += 2) {\n"
     << "    const int16_t *c0 = col[0], *c1 = col[1];\n"
     << "    int32_t j;\n"
     << "    for (j = 0; j < 2; ++j) {\n"
     << "      const int32_t q = p + j < " << pixels << " ? p + j : p, oy = q / " << c.ow << ", ox = q % " << c.ow << ";\n"
     << "      int16_t *t = col[j];\n"
     << "      int32_t ci, ky, kx;\n"
     << "      for (ci = 0; ci < " << c.cin << "; ++ci)\n"
     << "        for (ky = 0; ky < " << c.kh << "; ++ky) {\n"
     << "          const int32_t iy = oy * " << c.stride_h << " + ky * " << c.dil_h << " - " << c.pad_top << ";\n"
     << "          const int32_t row = (ci * " << c.h << " + iy) * " << c.w << ";\n";
  if (padded)
    os << "          for (kx = 0; kx < " << c.kw << "; ++kx) {\n"
       << "            const int32_t ix = ox * " << c.stride_w << " + kx * " << c.dil_w << " - " << c.pad_left << ";\n"
       << "            *t++ = (int16_t)(iy < 0 || iy >= " << c.h << " || ix < 0 || ix >= " << c.w << " ? 0 : "
       << c.load_input << "(row + ix)" << zp << ");\n"
       << "          }\n";
  else  // every window lies inside the input
    os << "          for (kx = 0; kx < " << c.kw << "; ++kx) *t++ = (int16_t)(" << c.load_input << "(row + ox * "
       << c.stride_w << " + kx * " << c.dil_w << ")" << zp << ");\n";
  os << "        }\n";
  emit_permute(os, "      ", "col[j]", w.bits, k);
  os << "    }\n"
     << "    for (oa = 0; oa < " << c.cout << "; oa += 2) {\n"
     << "      const int32_t ob = oa + 1 < " << c.cout << " ? oa + 1 : oa;\n"
     << "      const uint8_t *wa_p = (const uint8_t *)lb_w_" << w.id << " + oa * " << row_bytes
     << ", *wb_p = (const uint8_t *)lb_w_" << w.id << " + ob * " << row_bytes << ";\n"
     << "      int32_t a00 = 0, a01 = 0, a10 = 0, a11 = 0;\n";
  emit_dual_loop(os, "      ", w, true);
  os << "      {\n        const int32_t v00 = " << total(w, "oa", "a00") << ", v01 = " << total(w, "oa", "a01")
     << ", v10 = " << total(w, "ob", "a10") << ", v11 = " << total(w, "ob", "a11") << ";\n"
     << "        " << post("oa", "oa * " + str(pixels) + " + p", "v00") << "\n"
     << "        if (p + 1 < " << pixels << ") " << post("oa", "oa * " + str(pixels) + " + p + 1", "v01") << "\n"
     << "        if (ob != oa) {\n          " << post("ob", "ob * " + str(pixels) + " + p", "v10") << "\n"
     << "          if (p + 1 < " << pixels << ") " << post("ob", "ob * " + str(pixels) + " + p + 1", "v11") << "\n"
     << "        }\n      }\n"
     << "    }\n  }\n}\n";
  return os.str();
}

std::string dsp_matmul_code(const DspWeights& w, const std::string& load_input, int64_t outs, int32_t input_zero_point,
                            const PostCode& post) {
  const int64_t ins = w.k, row_bytes = ins * w.bits / 8;
  std::ostringstream os;
  const std::string zp = input_zero_point ? " - " + str(input_zero_point) : "";
  os << "static void lb_step_" << w.id << "(uint8_t *a) {\n"
     << "  int16_t col[" << (ins + 1) / 2 * 2 << "];  /* x - zero point in the loop's order */\n"
     << "  const int16_t *c0 = col;\n  int32_t oa, k, n;\n"
     << "  for (n = 0; n < " << ins << "; ++n) col[n] = (int16_t)(" << load_input << "(n)" << zp << ");\n";
  emit_permute(os, "  ", "col", w.bits, ins);
  os << "  for (oa = 0; oa < " << outs << "; oa += 2) {\n"
     << "    const int32_t ob = oa + 1 < " << outs << " ? oa + 1 : oa;\n"
     << "    const uint8_t *wa_p = (const uint8_t *)lb_w_" << w.id << " + oa * " << row_bytes
     << ", *wb_p = (const uint8_t *)lb_w_" << w.id << " + ob * " << row_bytes << ";\n"
     << "    int32_t a00 = 0, a10 = 0;\n";
  emit_dual_loop(os, "    ", w, false);
  os << "    {\n      const int32_t v00 = " << total(w, "oa", "a00") << ", v10 = " << total(w, "ob", "a10") << ";\n"
     << "      " << post("oa", "oa", "v00") << "\n"
     << "      if (ob != oa) " << post("ob", "ob", "v10") << "\n    }\n  }\n}\n";
  return os.str();
}

}  // namespace lowbit::mcu
