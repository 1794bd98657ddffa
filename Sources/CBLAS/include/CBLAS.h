#ifndef TESSERA_CBLAS_H
#define TESSERA_CBLAS_H

// The BLAS that Tessera links: OpenBLAS (Debian's libopenblas-dev) on Linux, Accelerate on Apple platforms.
// Only the CBLAS interface is used, plus the thread-count helpers below.
#if defined(__APPLE__)
#define ACCELERATE_NEW_LAPACK 1
#include <Accelerate/Accelerate.h>
#else
#include <cblas.h>
#endif

/// Sets the number of threads BLAS calls may use (OpenBLAS); a no-op where the BLAS has no such control.
void tsr_blas_set_thread_count(int thread_count);

/// Returns the number of threads BLAS calls may use, or 0 when the BLAS does not say.
int tsr_blas_thread_count(void);

#endif
