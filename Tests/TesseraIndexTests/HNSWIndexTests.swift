import Foundation
import TesseraTestSupport
import Testing

@testable import TesseraIndex

@Suite("HNSW graph (hnswlib behind CHNSW)")
struct HNSWIndexTests {
    /// Random unit vectors.
    static func unitVectors(_ count: Int, dimension: Int, seed: UInt64) -> [Float] {
        var random = SeededRandom(seed: seed)
        var values: [Float] = []
        for _ in 0..<count {
            let raw = random.signedUnits(dimension)
            let norm = raw.reduce(0) { $0 + $1 * $1 }.squareRoot()
            values += raw.map { $0 / norm }
        }
        return values
    }

    /// The exact `k` nearest labels by dot product.
    static func exactNearest(
        _ values: [Float],
        query: [Float],
        dimension: Int,
        k: Int,
        skipping: Set<Int> = []
    )
        -> [Int]
    {
        let count = values.count / dimension
        let scores = (0..<count).map { row in
            (row, (0..<dimension).reduce(Float(0)) { $0 + values[row * dimension + $1] * query[$1] })
        }
        return scores.filter { !skipping.contains($0.0) }.sorted { $0.1 > $1.1 }.prefix(k).map(\.0)
    }

    @Test("recall@10 against exact search on random unit vectors is at least 0.97 at ef 128")
    func recall() throws {
        let dimension = 24
        let count = 3000
        let values = Self.unitVectors(count, dimension: dimension, seed: 5)
        let index = try HNSWIndex(metric: .innerProduct, dimension: dimension, capacity: count)
        try index.add(values, labels: (0..<count).map { UInt64($0) }, threadCount: 2)
        #expect(index.count == count)
        let queries = Self.unitVectors(50, dimension: dimension, seed: 6)
        var found = 0
        for q in 0..<50 {
            let query = Array(queries[(q * dimension)..<((q + 1) * dimension)])
            let truth = Set(Self.exactNearest(values, query: query, dimension: dimension, k: 10))
            let answer = index.search(query, k: 10, ef: 128)
            #expect(answer.count == 10)
            // Distances are 1 − dot and come nearest first.
            #expect(zip(answer, answer.dropFirst()).allSatisfy { $0.distance <= $1.distance })
            found += answer.filter { truth.contains(Int($0.label)) }.count
        }
        let recall = Double(found) / 500
        print("HNSW recall@10 at ef 128: \(recall)")
        #expect(recall >= 0.97)
    }

    @Test("a label marked deleted is never returned; the stored vector reads back")
    func deletes() throws {
        let dimension = 8
        let values = Self.unitVectors(400, dimension: dimension, seed: 9)
        let index = try HNSWIndex(metric: .innerProduct, dimension: dimension, capacity: 10)  // grows
        try index.add(values, labels: (0..<400).map { UInt64($0) }, threadCount: 1)
        #expect(index.vector(label: 7) == Array(values[(7 * dimension)..<(8 * dimension)]))
        let query = Array(values[(7 * dimension)..<(8 * dimension)])
        #expect(index.search(query, k: 1, ef: 64).first?.label == 7)
        #expect(index.markDeleted(7))
        #expect(!index.markDeleted(7))
        #expect(!index.markDeleted(10_000))
        #expect(index.deletedCount == 1)
        #expect(index.vector(label: 7) == nil)
        let answer = index.search(query, k: 20, ef: 200)
        #expect(!answer.contains { $0.label == 7 })
        #expect(answer.count == 20)
    }

    @Test("squared Euclidean distances are exact for the nearest vectors")
    func euclidean() throws {
        let index = try HNSWIndex(metric: .squaredEuclidean, dimension: 2, capacity: 4)
        try index.add([0, 0, 1, 0, 0, 2, 3, 4], labels: [10, 11, 12, 13])
        let answer = index.search([0, 0], k: 4, ef: 10)
        #expect(answer.map(\.label) == [10, 11, 12, 13])
        #expect(answer.map(\.distance) == [0, 1, 4, 25])
    }

    @Test("bad arguments are refused with the argument named")
    func badArguments() throws {
        #expect(throws: IndexError.self) { try HNSWIndex(metric: .innerProduct, dimension: 0, capacity: 1) }
        #expect(throws: IndexError.self) {
            try HNSWIndex(metric: .innerProduct, dimension: 4, capacity: 1, options: HNSWOptions(m: 1))
        }
        let index = try HNSWIndex(metric: .innerProduct, dimension: 4, capacity: 1)
        do {
            try index.add([1, 2, 3], labels: [0])
            Issue.record("a short vector was accepted")
        } catch {
            #expect(error.field == "vectors")
        }
        #expect(index.search([1, 0, 0, 0], k: 3, ef: 10).isEmpty)
    }

    @Test("save and load give the same graph and keys; every torn or altered file is detected")
    func persistence() throws {
        let dimension = 12
        let count = 500
        let values = Self.unitVectors(count, dimension: dimension, seed: 21)
        let index = try HNSWIndex(metric: .innerProduct, dimension: dimension, capacity: count)
        try index.add(values, labels: (0..<count).map { UInt64($0) }, threadCount: 2)
        let keys = (0..<count).map { Array("key-\($0)".utf8) }
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("hnsw-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let base = directory + "/graph"
        try HNSWFiles.save(index, keys: keys, base: base)
        let (loaded, loadedKeys) = try HNSWFiles.load(base: base, metric: .innerProduct, dimension: dimension)
        #expect(loadedKeys == keys)
        #expect(loaded.count == count)
        #expect(loaded.m == 16)
        let queries = Self.unitVectors(10, dimension: dimension, seed: 22)
        for q in 0..<10 {
            let query = Array(queries[(q * dimension)..<((q + 1) * dimension)])
            #expect(loaded.search(query, k: 5, ef: 50).map(\.label) == index.search(query, k: 5, ef: 50).map(\.label))
        }
        // Wrong metric or dimension.
        #expect(throws: IndexError.self) {
            try HNSWFiles.load(base: base, metric: .squaredEuclidean, dimension: dimension)
        }
        #expect(throws: IndexError.self) { try HNSWFiles.load(base: base, metric: .innerProduct, dimension: 13) }
        // Cut or flip either file: the load fails as corrupted, naming the file.
        var random = SeededRandom(seed: 23)
        for path in [HNSWFiles.graphPath(base), HNSWFiles.keysPath(base)] {
            let original = try Data(contentsOf: URL(fileURLWithPath: path))
            for trial in 0..<6 {
                var damaged = original
                if trial % 2 == 0 {
                    damaged = damaged.prefix(random.int(in: 0...(original.count - 1)))
                } else {
                    let offset = random.int(in: 0...(original.count - 1))
                    damaged[offset] ^= 0x5A
                }
                try damaged.write(to: URL(fileURLWithPath: path))
                do {
                    _ = try HNSWFiles.load(base: base, metric: .innerProduct, dimension: dimension)
                    Issue.record("damaged \(path) (trial \(trial)) loaded")
                } catch {
                    #expect(error.code == .corrupted)
                    #expect(error.path == path)
                }
            }
            try original.write(to: URL(fileURLWithPath: path))
        }
        _ = try HNSWFiles.load(base: base, metric: .innerProduct, dimension: dimension)
    }
}
