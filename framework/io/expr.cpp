#include "io/expr.h"

#include <cctype>
#include <cmath>
#include <cstdlib>

#include "core/error.h"

namespace lowbit::io {

namespace {

class Parser {
 public:
  Parser(const std::string& s, const std::map<std::string, double>& vars) : s_(s), vars_(vars) {}

  double parse() {
    double v = expr();
    skip();
    if (pos_ != s_.size()) fail("unexpected '" + s_.substr(pos_) + "'");
    return v;
  }

 private:
  [[noreturn]] void fail(const std::string& why) {
    std::string names;
    for (auto& [k, v] : vars_) names += (names.empty() ? "" : ", ") + k;
    LB_FAIL("expression '", s_, "': ", why, " (parameters: ", names.empty() ? "none" : names, ")");
  }
  void skip() { while (pos_ < s_.size() && std::isspace(static_cast<unsigned char>(s_[pos_]))) ++pos_; }
  bool eat(const char* tok) {
    skip();
    size_t n = std::char_traits<char>::length(tok);
    if (s_.compare(pos_, n, tok) == 0) { pos_ += n; return true; }
    return false;
  }
  double expr() {
    double v = term();
    for (;;) {
      if (eat("+")) v += term();
      else if (eat("-")) v -= term();
      else return v;
    }
  }
  double term() {
    double v = factor();
    for (;;) {
      if (eat("//")) { double d = factor(); if (d == 0) fail("division by zero"); v = std::floor(v / d); }
      else if (eat("*")) v *= factor();
      else if (eat("/")) { double d = factor(); if (d == 0) fail("division by zero"); v /= d; }
      else return v;
    }
  }
  double factor() {
    skip();
    if (eat("-")) return -factor();
    if (eat("(")) {
      double v = expr();
      if (!eat(")")) fail("missing ')'");
      return v;
    }
    if (pos_ < s_.size() && (std::isdigit(static_cast<unsigned char>(s_[pos_])) || s_[pos_] == '.')) {
      const char* b = s_.c_str() + pos_;
      char* e = nullptr;
      double v = std::strtod(b, &e);
      pos_ += static_cast<size_t>(e - b);
      return v;
    }
    size_t b = pos_;
    while (pos_ < s_.size() && (std::isalnum(static_cast<unsigned char>(s_[pos_])) || s_[pos_] == '_')) ++pos_;
    std::string id = s_.substr(b, pos_ - b);
    if (id.empty()) fail(pos_ < s_.size() ? "unexpected '" + std::string(1, s_[pos_]) + "'" : "unexpected end");
    if (eat("(")) {
      double a = expr();
      if (!eat(")")) fail("missing ')' after " + id + "(");
      if (id == "int") return std::trunc(a);
      if (id == "floor") return std::floor(a);
      if (id == "ceil") return std::ceil(a);
      if (id == "round") return std::round(a);
      fail("unknown function '" + id + "' (known: int, floor, ceil, round)");
    }
    auto it = vars_.find(id);
    if (it == vars_.end()) fail("unknown name '" + id + "'");
    return it->second;
  }

  const std::string& s_;
  const std::map<std::string, double>& vars_;
  size_t pos_ = 0;
};

}  // namespace

double eval_expr(const std::string& text, const std::map<std::string, double>& vars) {
  return Parser(text, vars).parse();
}

}  // namespace lowbit::io
