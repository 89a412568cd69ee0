// Element types and devices a tensor can have.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

namespace lowbit {

enum class DType : uint8_t { f32, s32, s8, u8 };
enum class Device : uint8_t { cpu, cuda };

size_t dtype_size(DType t);
const char* dtype_name(DType t);
const char* device_name(Device d);

template <typename T> constexpr DType dtype_of();
template <> constexpr DType dtype_of<float>() { return DType::f32; }
template <> constexpr DType dtype_of<int32_t>() { return DType::s32; }
template <> constexpr DType dtype_of<int8_t>() { return DType::s8; }
template <> constexpr DType dtype_of<uint8_t>() { return DType::u8; }

}  // namespace lowbit
