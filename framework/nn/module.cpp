#include "nn/module.h"

namespace lowbit::nn {

Variable Module::forward_multi(const std::vector<Variable>& xs) {
  LB_CHECK(xs.size() == 1, type_name(), " takes one input, got ", xs.size());
  return forward(xs[0]);
}

void Module::train(bool on) {
  training_ = on;
  for (auto& [name, child] : children_) child->train(on);
}

static std::string join(const std::string& prefix, const std::string& name) {
  return prefix.empty() ? name : prefix + "." + name;
}

std::vector<std::pair<std::string, Variable>> Module::named_parameters(const std::string& prefix) const {
  std::vector<std::pair<std::string, Variable>> out;
  for (const auto& [name, v] : params_) out.emplace_back(join(prefix, name), v);
  for (const auto& [name, child] : children_) {
    auto sub = child->named_parameters(join(prefix, name));
    out.insert(out.end(), sub.begin(), sub.end());
  }
  return out;
}

std::vector<std::pair<std::string, Tensor*>> Module::named_buffers(const std::string& prefix) {
  std::vector<std::pair<std::string, Tensor*>> out;
  for (auto& [name, t] : buffers_) out.emplace_back(join(prefix, name), t.get());
  for (auto& [name, child] : children_) {
    auto sub = child->named_buffers(join(prefix, name));
    out.insert(out.end(), sub.begin(), sub.end());
  }
  return out;
}

std::vector<std::pair<std::string, Module*>> Module::named_modules(const std::string& prefix) {
  std::vector<std::pair<std::string, Module*>> out{{prefix, this}};
  for (auto& [name, child] : children_) {
    auto sub = child->named_modules(join(prefix, name));
    out.insert(out.end(), sub.begin(), sub.end());
  }
  return out;
}

std::vector<Variable> Module::parameters() const {
  std::vector<Variable> out;
  for (auto& [name, v] : named_parameters()) out.push_back(v);
  return out;
}

Variable Module::register_parameter(const std::string& name, Tensor value, bool requires_grad) {
  for (auto& [n, v] : params_) LB_CHECK(n != name, "parameter '", name, "' registered twice");
  params_.emplace_back(name, Variable(std::move(value), requires_grad));
  return params_.back().second;
}

void Module::register_existing_parameter(const std::string& name, Variable v) {
  for (auto& [n, p] : params_) LB_CHECK(n != name, "parameter '", name, "' registered twice");
  params_.emplace_back(name, std::move(v));
}

Tensor* Module::register_buffer(const std::string& name, Tensor value) {
  buffers_.emplace_back(name, std::make_unique<Tensor>(std::move(value)));
  return buffers_.back().second.get();
}

void Module::register_module(const std::string& name, std::shared_ptr<Module> m) {
  for (auto& [n, c] : children_) LB_CHECK(n != name, "module '", name, "' registered twice");
  children_.emplace_back(name, std::move(m));
}

void Module::prepend_child(const std::string& name, std::shared_ptr<Module> m) {
  for (auto& [n, c] : children_) LB_CHECK(n != name, "module '", name, "' registered twice");
  children_.insert(children_.begin(), {name, std::move(m)});
}

void Module::replace_child(const std::string& name, std::shared_ptr<Module> m) {
  for (auto& [n, c] : children_)
    if (n == name) { c = std::move(m); return; }
  LB_FAIL("no child module '", name, "' to replace");
}

}  // namespace lowbit::nn
