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

#if !defined(__APPLE__)
#include <stdlib.h>
#include <stddef.h>

// LAPACK's Fortran entry point in OpenBLAS; the trailing arguments are gfortran's hidden string lengths.
extern void ssyevd_(const char *jobz, const char *uplo, const int *n, float *a, const int *lda, float *w,
                    float *work, const int *lwork, int *iwork, const int *liwork, int *info, size_t jobz_length,
                    size_t uplo_length);
#endif

int tsr_symmetric_eigen(int dimension, float *matrix, float *eigenvalues) {
#if defined(__APPLE__)
    (void)dimension;
    (void)matrix;
    (void)eigenvalues;
    return -1000;
#else
    // Column-major LAPACK sees the row-major symmetric matrix unchanged; its column-major eigenvector columns
    // are our rows.
    int info = 0;
    int query = -1;
    float work_size = 0;
    int iwork_size = 0;
    ssyevd_("V", "U", &dimension, matrix, &dimension, eigenvalues, &work_size, &query, &iwork_size, &query, &info,
            1, 1);
    if (info != 0) return info;
    int lwork = (int)work_size;
    int liwork = iwork_size;
    float *work = malloc(sizeof(float) * (size_t)lwork);
    int *iwork = malloc(sizeof(int) * (size_t)liwork);
    if (work == NULL || iwork == NULL) {
        free(work);
        free(iwork);
        return -1001;
    }
    ssyevd_("V", "U", &dimension, matrix, &dimension, eigenvalues, work, &lwork, iwork, &liwork, &info, 1, 1);
    free(work);
    free(iwork);
    return info;
#endif
}
