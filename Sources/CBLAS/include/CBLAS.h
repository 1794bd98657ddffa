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

/// Eigen-decomposition of a symmetric matrix (LAPACK `ssyevd`, divide and conquer).
/// `matrix` is `[dimension, dimension]`, row-major and symmetric. Eigenvalues come back in ascending order in
/// `eigenvalues` (`dimension` floats), and row i of `matrix` then holds the unit eigenvector of eigenvalue i. Returns LAPACK's `info`: 0 on success, non-zero on failure,
/// -1000 where the platform's LAPACK is not wired.
int tsr_symmetric_eigen(int dimension, float *matrix, float *eigenvalues);

#endif
