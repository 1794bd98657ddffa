import CHNSW
import Foundation
import TesseraPlatform

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// How an HNSW graph compares vectors.
public enum HNSWMetric: UInt32, Sendable {
    /// Distance `1 − q·d`: dot product and cosine (on normalised vectors), nearest = largest dot product.
    case innerProduct = 0
    /// Squared Euclidean distance.
    case squaredEuclidean = 1
}

/// How an HNSW graph is built. The defaults are hnswlib's and Qdrant's `m`; `efConstruction` is hnswlib's.
public struct HNSWOptions: Sendable, Equatable {
    /// Links per node in the upper layers (twice as many in the bottom layer).
    public var m: Int
    /// The candidate list length while inserting: larger builds a better graph, slower.
    public var efConstruction: Int
    /// Seeds the level generator, so that a build of the same vectors in the same order is repeatable.
    public var seed: Int

    /// Creates build options.
    /// - Parameters:
    ///   - m: Links per node, 2 or more.
    ///   - efConstruction: Candidate list length while inserting, `m` or more.
    ///   - seed: The level generator's seed.
    public init(m: Int = 16, efConstruction: Int = 200, seed: Int = 100) {
        self.m = m
        self.efConstruction = efConstruction
        self.seed = seed
    }
}

/// A hierarchical navigable small world graph over dense vectors (hnswlib), with labels chosen by the caller.
///
/// Searches and edits take turns on one lock inside the graph: a search runs in well under a millisecond at
/// the sizes this index serves, and hnswlib keeps its search breadth in the graph itself.
public final class HNSWIndex: @unchecked Sendable {
    // The handle is owned by this object and every C call on it is serialised by the C side's lock.
    private let handle: OpaquePointer
    /// The comparison.
    public let metric: HNSWMetric
    /// Components per vector.
    public let dimension: Int

    /// Creates an empty graph.
    /// - Parameters:
    ///   - metric: The comparison.
    ///   - dimension: Components per vector, 1 or more.
    ///   - capacity: Vectors to reserve room for (the graph grows beyond it when needed).
    ///   - options: `m`, `efConstruction`, seed.
    /// - Throws: ``IndexError/Code/invalidArgument`` for a bad dimension or options.
    public init(
        metric: HNSWMetric,
        dimension: Int,
        capacity: Int,
        options: HNSWOptions = HNSWOptions()
    )
        throws(IndexError)
    {
        guard dimension >= 1 else {
            throw IndexError(.invalidArgument, "dimension \(dimension); expected 1 or more", field: "dimension")
        }
        guard options.m >= 2, options.m <= 512 else {
            throw IndexError(.invalidArgument, "m is \(options.m); expected 2...512", field: "m")
        }
        guard options.efConstruction >= 1 else {
            throw IndexError(
                .invalidArgument,
                "efConstruction is \(options.efConstruction); expected 1 or more",
                field: "efConstruction"
            )
        }
        var message = [CChar](repeating: 0, count: 256)
        guard
            let handle = chnsw_create(
                Int32(metric.rawValue),
                dimension,
                max(capacity, 1),
                options.m,
                options.efConstruction,
                options.seed,
                &message,
                message.count
            )
        else {
            throw IndexError(.io, "creating the graph failed: \(cString(message))")
        }
        self.handle = handle
        self.metric = metric
        self.dimension = dimension
    }

    private init(handle: OpaquePointer, metric: HNSWMetric, dimension: Int) {
        self.handle = handle
        self.metric = metric
        self.dimension = dimension
    }

    deinit { chnsw_free(handle) }

    /// Vectors added, deleted ones included.
    public var count: Int { chnsw_count(handle) }
    /// Vectors marked deleted.
    public var deletedCount: Int { chnsw_deleted_count(handle) }
    /// The `m` the graph was built with.
    public var m: Int { chnsw_m(handle) }
    /// The `efConstruction` the graph was built with.
    public var efConstruction: Int { chnsw_ef_construction(handle) }

    /// Adds vectors.
    /// - Parameters:
    ///   - vectors: `labels.count × dimension` values, row-major.
    ///   - labels: One label per vector; a label already present replaces its vector.
    ///   - threadCount: Threads inserting at once.
    /// - Throws: ``IndexError/Code/invalidArgument`` for a size mismatch; ``IndexError/Code/io`` when hnswlib fails.
    public func add(_ vectors: [Float], labels: [UInt64], threadCount: Int = 1) throws(IndexError) {
        guard vectors.count == labels.count * dimension else {
            throw IndexError(
                .invalidArgument,
                "\(vectors.count) values for \(labels.count) labels of dimension \(dimension)",
                field: "vectors"
            )
        }
        guard !labels.isEmpty else { return }
        var message = [CChar](repeating: 0, count: 256)
        let status = chnsw_add(handle, vectors, labels, labels.count, Int32(threadCount), &message, message.count)
        guard status == 0 else { throw IndexError(.io, "adding vectors failed: \(cString(message))") }
    }

    /// Marks a label deleted: searches skip it from now on.
    /// - Returns: `false` when the label is unknown or already deleted.
    @discardableResult
    public func markDeleted(_ label: UInt64) -> Bool { chnsw_mark_deleted(handle, label) == 0 }

    /// The stored vector of a live label.
    public func vector(label: UInt64) -> [Float]? {
        var values = [Float](repeating: 0, count: dimension)
        return chnsw_vector(handle, label, &values) == 0 ? values : nil
    }

    /// The `k` nearest live vectors, nearest first.
    /// - Parameters:
    ///   - query: `dimension` values.
    ///   - k: How many to return.
    ///   - ef: The search breadth (at least `k` is used): larger finds more of the true nearest, slower.
    /// - Returns: Labels with their distances (see ``HNSWMetric``).
    public func search(_ query: [Float], k: Int, ef: Int) -> [(label: UInt64, distance: Float)] {
        precondition(query.count == dimension, "query has \(query.count) values, the graph \(dimension)")
        guard k > 0, count > 0 else { return [] }
        var labels = [UInt64](repeating: 0, count: k)
        var distances = [Float](repeating: 0, count: k)
        let found = chnsw_search(handle, query, k, max(ef, k), &labels, &distances)
        guard found > 0 else { return [] }
        return (0..<found).map { (labels[$0], distances[$0]) }
    }
}

// MARK: - Files

/// The files of a saved graph: hnswlib's own serialisation (`<base>.hnsw`), and a keys file (`<base>.keys`)
/// holding one caller key per label (label = position), the graph file's size and checksum, and its own checksum.
///
/// Keys file (little-endian): magic `TSHNSWK1`; format version, metric, dimension (UInt32 each); label count,
/// graph byte count, graph checksum, keys byte count (UInt64 each); the keys, each a UInt16 length and its bytes;
/// then a checksum of every byte before it. Both files are written under temporary names, fsynced and renamed,
/// keys last, so that a crash leaves no keys file naming a graph that is not whole.
public enum HNSWFiles {
    static let magic: [UInt8] = Array("TSHNSWK1".utf8)
    static let version: UInt32 = 1
    static let headerByteCount = 8 + 12 + 32

    /// The graph file of a base path.
    public static func graphPath(_ base: String) -> String { base + ".hnsw" }
    /// The keys file of a base path.
    public static func keysPath(_ base: String) -> String { base + ".keys" }

    /// Saves a graph and its label keys (label `i` has key `keys[i]`).
    /// - Throws: ``IndexError/Code/io``; ``IndexError/Code/invalidArgument`` for a key over 65,535 bytes.
    public static func save(_ index: HNSWIndex, keys: [[UInt8]], base: String) throws(IndexError) {
        let graph = graphPath(base)
        let temporary = AtomicFile.temporaryPath(for: graph)
        var message = [CChar](repeating: 0, count: 256)
        guard chnsw_save(index.handleForSaving, temporary, &message, message.count) == 0 else {
            try? Syscalls.unlink(temporary)
            throw IndexError(.io, "writing the graph failed: \(cString(message))", path: temporary)
        }
        let (graphBytes, graphChecksum): (Int, UInt64)
        do throws(IndexError) {
            let mapped = try MappedFile.index(at: temporary)
            graphBytes = mapped.byteCount
            graphChecksum = mapped.withUnsafeBytes { IndexFileFormat.checksum($0) }
            do { try AtomicFile.commit(temporaryPath: temporary, to: graph) } catch { throw IndexError(error) }
        } catch {
            try? Syscalls.unlink(temporary)
            throw error
        }
        var body: [UInt8] = []
        for (label, key) in keys.enumerated() {
            guard key.count <= Int(UInt16.max) else {
                throw IndexError(.invalidArgument, "key of label \(label) has \(key.count) bytes", field: "keys")
            }
            append(&body, UInt16(key.count))
            body += key
        }
        var bytes = magic
        append(&bytes, version)
        append(&bytes, index.metric.rawValue)
        append(&bytes, UInt32(index.dimension))
        append(&bytes, UInt64(keys.count))
        append(&bytes, UInt64(graphBytes))
        append(&bytes, graphChecksum)
        append(&bytes, UInt64(body.count))
        bytes += body
        let checksum = bytes.withUnsafeBytes { IndexFileFormat.checksum($0) }
        append(&bytes, checksum)
        let keysFile = keysPath(base)
        let result: Result<Void, IndexError> = bytes.withUnsafeBytes { buffer in
            Result { () throws(IndexError) in try writeFileAtomically(path: keysFile, chunks: [buffer]) }
        }
        try result.get()
    }

    /// Loads a saved graph after checking both files whole.
    /// - Returns: The graph and its label keys.
    /// - Throws: ``IndexError/Code/corrupted`` for a missing, short, torn or mismatched file (with the byte
    ///   offset where it applies); ``IndexError/Code/io``.
    public static func load(
        base: String,
        metric: HNSWMetric,
        dimension: Int
    ) throws(IndexError) -> (
        index: HNSWIndex, keys: [[UInt8]]
    ) {
        let keysFile = keysPath(base)
        let graphFile = graphPath(base)
        func corrupted(_ message: String, _ path: String, offset: Int? = nil) -> IndexError {
            IndexError(.corrupted, message, path: path, offset: offset)
        }
        let mappedKeys: MappedFile
        do { mappedKeys = try MappedFile.index(at: keysFile) } catch { throw corrupted(error.message, keysFile) }
        let (labelCount, graphBytes, graphChecksum, keys) = try mappedKeys.withUnsafeBytes {
            bytes throws(IndexError) -> (Int, Int, UInt64, [[UInt8]]) in
            guard bytes.count >= headerByteCount + 8 else {
                throw corrupted("the keys file has \(bytes.count) bytes, shorter than its header", keysFile, offset: 0)
            }
            guard Array(bytes[0..<8]) == magic else {
                throw corrupted("not a keys file (bad magic)", keysFile, offset: 0)
            }
            let stored = bytes.loadUnaligned(fromByteOffset: bytes.count - 8, as: UInt64.self)
            guard IndexFileFormat.checksum(UnsafeRawBufferPointer(rebasing: bytes[0..<(bytes.count - 8)])) == stored
            else {
                throw corrupted("the keys file's checksum does not match (a torn or altered file)", keysFile)
            }
            let fileVersion = bytes.loadUnaligned(fromByteOffset: 8, as: UInt32.self)
            let fileMetric = bytes.loadUnaligned(fromByteOffset: 12, as: UInt32.self)
            let fileDimension = Int(bytes.loadUnaligned(fromByteOffset: 16, as: UInt32.self))
            let labelCount = Int(bytes.loadUnaligned(fromByteOffset: 20, as: UInt64.self))
            let graphBytes = Int(bytes.loadUnaligned(fromByteOffset: 28, as: UInt64.self))
            let graphChecksum = bytes.loadUnaligned(fromByteOffset: 36, as: UInt64.self)
            let bodyBytes = Int(bytes.loadUnaligned(fromByteOffset: 44, as: UInt64.self))
            guard fileVersion == version else {
                throw corrupted(
                    "keys file format version \(fileVersion); this build reads \(version)",
                    keysFile,
                    offset: 8
                )
            }
            guard fileMetric == metric.rawValue, fileDimension == dimension else {
                throw corrupted(
                    "the graph was built for metric \(fileMetric), dimension \(fileDimension); the field needs "
                        + "metric \(metric.rawValue), dimension \(dimension)",
                    keysFile,
                    offset: 12
                )
            }
            guard headerByteCount + bodyBytes + 8 == bytes.count else {
                throw corrupted("the keys section has the wrong length", keysFile, offset: 44)
            }
            var keys: [[UInt8]] = []
            keys.reserveCapacity(labelCount)
            var offset = headerByteCount
            for _ in 0..<labelCount {
                guard offset + 2 <= headerByteCount + bodyBytes else {
                    throw corrupted("the keys section ends early", keysFile, offset: offset)
                }
                let length = Int(bytes.loadUnaligned(fromByteOffset: offset, as: UInt16.self))
                guard offset + 2 + length <= headerByteCount + bodyBytes else {
                    throw corrupted("a key runs past the keys section", keysFile, offset: offset)
                }
                keys.append(Array(bytes[(offset + 2)..<(offset + 2 + length)]))
                offset += 2 + length
            }
            return (labelCount, graphBytes, graphChecksum, keys)
        }
        do throws(IndexError) {
            let graph = try MappedFile.index(at: graphFile)
            guard graph.byteCount == graphBytes else {
                throw corrupted(
                    "the graph file has \(graph.byteCount) bytes; its keys file says \(graphBytes)",
                    graphFile,
                    offset: min(graph.byteCount, graphBytes)
                )
            }
            guard
                graph.withUnsafeBytes({ IndexFileFormat.checksum($0) }) == graphChecksum
            else {
                throw corrupted("the graph file's checksum does not match (a torn or altered file)", graphFile)
            }
        } catch let error where error.code == .corrupted {
            throw error
        } catch {
            throw corrupted(error.message, graphFile)
        }
        var message = [CChar](repeating: 0, count: 256)
        guard let handle = chnsw_load(graphFile, Int32(metric.rawValue), dimension, &message, message.count) else {
            throw corrupted("hnswlib cannot read the graph: \(cString(message))", graphFile)
        }
        let index = HNSWIndex(loaded: handle, metric: metric, dimension: dimension)
        guard index.count == labelCount else {
            throw corrupted("the graph has \(index.count) vectors; its keys file names \(labelCount)", graphFile)
        }
        return (index, keys)
    }

    private static func append<T: FixedWidthInteger>(_ bytes: inout [UInt8], _ value: T) {
        withUnsafeBytes(of: value.littleEndian) { bytes += $0 }
    }
}

/// The text before the first NUL of a C message buffer.
private func cString(_ message: [CChar]) -> String {
    String(decoding: message.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
}

extension HNSWIndex {
    fileprivate var handleForSaving: OpaquePointer { handle }

    fileprivate convenience init(loaded handle: OpaquePointer, metric: HNSWMetric, dimension: Int) {
        self.init(handle: handle, metric: metric, dimension: dimension)
    }
}
