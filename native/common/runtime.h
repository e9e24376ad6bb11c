// Process-wide runtime facts and settings: thread counts for ATen and the BLAS, which BLAS
// library serves matrix products, and what libtorch was built with.
#pragma once

#include <string>

namespace dpo {

// Sets ATen's intra-op threads and, when the BLAS is OpenBLAS, its thread pool too.
void set_threads(int n);
int get_threads();

// The shared library that provides sgemm_ (the BLAS libtorch calls for CPU matrix products),
// or "" when none is exported (a BLAS linked into libtorch, such as MKL).
std::string blas_library();

// True when `library` is the unoptimised reference BLAS (libblas.so.3 from netlib).
bool blas_is_reference(const std::string& library);

}  // namespace dpo
