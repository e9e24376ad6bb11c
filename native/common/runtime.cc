// Thread and BLAS settings, found at run time with dlsym so no BLAS header is needed.
#include "common/runtime.h"

#include <ATen/Parallel.h>
#include <dlfcn.h>

namespace dpo {

void set_threads(int n) {
  if (n < 1) n = 1;
  at::set_num_threads(n);
  // OpenBLAS keeps a pool of its own that at::set_num_threads does not reach.
  using SetFn = void (*)(int);
  if (auto fn = reinterpret_cast<SetFn>(dlsym(RTLD_DEFAULT, "openblas_set_num_threads"))) fn(n);
}

int get_threads() { return at::get_num_threads(); }

std::string blas_library() {
  void* sym = dlsym(RTLD_DEFAULT, "sgemm_");
  if (!sym) return "";
  Dl_info info{};
  if (dladdr(sym, &info) == 0 || !info.dli_fname) return "";
  // libblas.so.3 is usually an alternatives link; name the library behind it.
  char resolved[4096];
  return realpath(info.dli_fname, resolved) ? std::string(resolved) : std::string(info.dli_fname);
}

bool blas_is_reference(const std::string& library) {
  if (library.empty()) return false;
  for (const char* fast : {"openblas", "mkl", "blis", "atlas", "accelerate"})
    if (library.find(fast) != std::string::npos) return false;
  // libblas.so.3 resolving to the netlib build is the slow case.
  char resolved[4096];
  if (realpath(library.c_str(), resolved)) {
    std::string real(resolved);
    for (const char* fast : {"openblas", "mkl", "blis", "atlas"})
      if (real.find(fast) != std::string::npos) return false;
  }
  return true;
}

}  // namespace dpo
