// Arithmetic expressions in model files: `out_channels: int(64*width)`.
// Grammar: numbers, parameter names, + - * / // (floor division), unary -, parentheses,
// and the functions int() (truncate), floor(), ceil(), round() (half away from zero).
#pragma once
#include <map>
#include <string>

namespace lowbit::io {

// Throws lowbit::Error naming the expression and the problem (unknown name, syntax).
double eval_expr(const std::string& text, const std::map<std::string, double>& vars);

}  // namespace lowbit::io
