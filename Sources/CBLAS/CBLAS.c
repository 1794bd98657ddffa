#include "CBLAS.h"

void tsr_blas_set_thread_count(int thread_count) {
#if defined(__APPLE__)
    (void)thread_count;
#else
    openblas_set_num_threads(thread_count);
#endif
}

int tsr_blas_thread_count(void) {
#if defined(__APPLE__)
    return 0;
#else
    return openblas_get_num_threads();
#endif
}
