// LB_HD marks math shared by CPU code and CUDA kernels (__host__ __device__ under nvcc).
#pragma once
#if defined(__CUDACC__)
#define LB_HD __host__ __device__ __forceinline__
#else
#define LB_HD inline
#endif
