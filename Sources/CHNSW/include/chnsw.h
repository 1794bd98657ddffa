#ifndef CHNSW_H
#define CHNSW_H

// A C interface to hnswlib (Debian's header-only libhnswlib-dev): build, add, mark deleted, search, save, load.
// Every function catches C++ exceptions and reports failure through its return value; `message` (when not
// NULL) receives a NUL-terminated description of at most `message_capacity` bytes.

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct chnsw_index chnsw_index;

/// The space: 0 = inner product (distance 1 − q·d), 1 = squared Euclidean distance.
enum { CHNSW_INNER_PRODUCT = 0, CHNSW_SQUARED_L2 = 1 };

/// A new empty index for up to `capacity` vectors, or NULL (see `message`).
chnsw_index *chnsw_create(int space, size_t dimension, size_t capacity, size_t m, size_t ef_construction,
                          size_t seed, char *message, size_t message_capacity);
/// Loads an index written by `chnsw_save`, or returns NULL (see `message`).
chnsw_index *chnsw_load(const char *path, int space, size_t dimension, char *message, size_t message_capacity);
void chnsw_free(chnsw_index *index);

/// Adds `count` vectors (row-major, `dimension` floats each) with labels `labels[i]`, across `thread_count`
/// threads. Returns 0 on success.
int chnsw_add(chnsw_index *index, const float *vectors, const uint64_t *labels, size_t count, int thread_count,
              char *message, size_t message_capacity);
/// Marks the vector with this label deleted: searches no longer return it. Returns 0 on success, 1 when the
/// label is unknown or already deleted.
int chnsw_mark_deleted(chnsw_index *index, uint64_t label);
/// Copies the stored vector of a label into `out` (`dimension` floats). Returns 0 on success.
int chnsw_vector(const chnsw_index *index, uint64_t label, float *out);
/// The `k` nearest live vectors to `query` with search breadth `ef`, nearest first: labels and distances.
/// Returns how many were found (at most k), or −1 on failure.
long chnsw_search(chnsw_index *index, const float *query, size_t k, size_t ef, uint64_t *labels, float *distances);
/// Writes the index to `path`. Returns 0 on success.
int chnsw_save(chnsw_index *index, const char *path, char *message, size_t message_capacity);

size_t chnsw_count(const chnsw_index *index);
size_t chnsw_deleted_count(const chnsw_index *index);
size_t chnsw_m(const chnsw_index *index);
size_t chnsw_ef_construction(const chnsw_index *index);

#ifdef __cplusplus
}
#endif

#endif
