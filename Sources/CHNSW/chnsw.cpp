#include "chnsw.h"

#include <hnswlib/hnswlib.h>

#include <cstring>
#include <exception>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

struct chnsw_index {
    std::unique_ptr<hnswlib::SpaceInterface<float>> space;
    std::unique_ptr<hnswlib::HierarchicalNSW<float>> graph;
    size_t dimension = 0;
    // hnswlib keeps the search breadth and a few counters in the index itself, and marking a vector deleted
    // writes into the graph: searches and edits take turns.
    std::mutex lock;
};

namespace {

void report(const char *text, char *message, size_t capacity) {
    if (message == nullptr || capacity == 0) return;
    std::strncpy(message, text, capacity - 1);
    message[capacity - 1] = '\0';
}

std::unique_ptr<hnswlib::SpaceInterface<float>> makeSpace(int space, size_t dimension) {
    if (space == CHNSW_SQUARED_L2) return std::make_unique<hnswlib::L2Space>(dimension);
    return std::make_unique<hnswlib::InnerProductSpace>(dimension);
}

}  // namespace

extern "C" {

chnsw_index *chnsw_create(int space, size_t dimension, size_t capacity, size_t m, size_t ef_construction,
                          size_t seed, char *message, size_t message_capacity) {
    try {
        auto index = std::make_unique<chnsw_index>();
        index->dimension = dimension;
        index->space = makeSpace(space, dimension);
        index->graph = std::make_unique<hnswlib::HierarchicalNSW<float>>(
            index->space.get(), capacity > 0 ? capacity : 1, m, ef_construction, seed);
        return index.release();
    } catch (const std::exception &error) {
        report(error.what(), message, message_capacity);
        return nullptr;
    }
}

chnsw_index *chnsw_load(const char *path, int space, size_t dimension, char *message, size_t message_capacity) {
    try {
        auto index = std::make_unique<chnsw_index>();
        index->dimension = dimension;
        index->space = makeSpace(space, dimension);
        index->graph = std::make_unique<hnswlib::HierarchicalNSW<float>>(index->space.get(), std::string(path));
        // hnswlib 0.6's loading constructor leaves the deleted count uninitialised: count the marks.
        auto *graph = index->graph.get();
        graph->num_deleted_ = 0;
        for (hnswlib::tableint element = 0; element < graph->cur_element_count; element++) {
            if (graph->isMarkedDeleted(element)) graph->num_deleted_ += 1;
        }
        return index.release();
    } catch (const std::exception &error) {
        report(error.what(), message, message_capacity);
        return nullptr;
    }
}

void chnsw_free(chnsw_index *index) { delete index; }

int chnsw_add(chnsw_index *index, const float *vectors, const uint64_t *labels, size_t count, int thread_count,
              char *message, size_t message_capacity) {
    std::lock_guard<std::mutex> guard(index->lock);
    try {
        auto *graph = index->graph.get();
        if (graph->cur_element_count + count > graph->max_elements_) {
            graph->resizeIndex(graph->cur_element_count + count);
        }
        size_t threads = thread_count > 1 ? static_cast<size_t>(thread_count) : 1;
        if (threads > count) threads = count > 0 ? count : 1;
        std::vector<std::exception_ptr> failures(threads);
        auto work = [&](size_t worker) {
            try {
                for (size_t row = worker; row < count; row += threads) {
                    graph->addPoint(vectors + row * index->dimension, labels[row]);
                }
            } catch (...) {
                failures[worker] = std::current_exception();
            }
        };
        if (threads == 1) {
            work(0);
        } else {
            std::vector<std::thread> pool;
            for (size_t worker = 0; worker < threads; worker++) pool.emplace_back(work, worker);
            for (auto &thread : pool) thread.join();
        }
        for (auto &failure : failures) {
            if (failure) std::rethrow_exception(failure);
        }
        return 0;
    } catch (const std::exception &error) {
        report(error.what(), message, message_capacity);
        return 1;
    }
}

int chnsw_mark_deleted(chnsw_index *index, uint64_t label) {
    std::lock_guard<std::mutex> guard(index->lock);
    try {
        index->graph->markDelete(label);
        return 0;
    } catch (const std::exception &) {
        return 1;
    }
}

int chnsw_vector(const chnsw_index *index, uint64_t label, float *out) {
    auto *mutableIndex = const_cast<chnsw_index *>(index);
    std::lock_guard<std::mutex> guard(mutableIndex->lock);
    try {
        auto values = index->graph->getDataByLabel<float>(label);
        if (values.size() != index->dimension) return 1;
        std::memcpy(out, values.data(), values.size() * sizeof(float));
        return 0;
    } catch (const std::exception &) {
        return 1;
    }
}

long chnsw_search(chnsw_index *index, const float *query, size_t k, size_t ef, uint64_t *labels, float *distances) {
    std::lock_guard<std::mutex> guard(index->lock);
    try {
        index->graph->setEf(ef);
        auto found = index->graph->searchKnn(query, k);
        long count = static_cast<long>(found.size());
        // The queue pops the farthest first.
        for (long position = count - 1; position >= 0; position--) {
            labels[position] = found.top().second;
            distances[position] = found.top().first;
            found.pop();
        }
        return count;
    } catch (const std::exception &) {
        return -1;
    }
}

int chnsw_save(chnsw_index *index, const char *path, char *message, size_t message_capacity) {
    std::lock_guard<std::mutex> guard(index->lock);
    try {
        index->graph->saveIndex(std::string(path));
        return 0;
    } catch (const std::exception &error) {
        report(error.what(), message, message_capacity);
        return 1;
    }
}

size_t chnsw_count(const chnsw_index *index) { return index->graph->cur_element_count; }
size_t chnsw_deleted_count(const chnsw_index *index) { return index->graph->num_deleted_; }
size_t chnsw_m(const chnsw_index *index) { return index->graph->M_; }
size_t chnsw_ef_construction(const chnsw_index *index) { return index->graph->ef_construction_; }

}
