// tune_allocator(): finds tcmalloc at run time (dlsym), so this compiles and links with or without it.
#include "embrec/util/allocator.h"

#include <dlfcn.h>

#if __has_include(<gperftools/malloc_extension.h>)
#include <gperftools/malloc_extension.h>
#define EMBREC_HAVE_GPERFTOOLS_HEADER 1
#endif

namespace embrec {

// Without tcmalloc linked, MallocExtension's type information is absent, so UBSan's vptr check (which needs it)
// must stay out of this function for the sanitizer builds to link.
__attribute__((no_sanitize_undefined)) bool tune_allocator() {
#ifdef EMBREC_HAVE_GPERFTOOLS_HEADER
  // MallocExtension::instance(), looked up by its mangled name: present only when tcmalloc is linked.
  using InstanceFunction = MallocExtension* (*)();
  auto instance = reinterpret_cast<InstanceFunction>(::dlsym(RTLD_DEFAULT, "_ZN15MallocExtension8instanceEv"));
  if (instance == nullptr) return false;
  instance()->SetMemoryReleaseRate(0.0);
  return true;
#else
  return false;
#endif
}

}  // namespace embrec
