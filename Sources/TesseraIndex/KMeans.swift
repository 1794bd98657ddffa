import CBLAS
import Foundation
import TesseraPlatform

/// How to train centroids.
public struct KMeansOptions: Sendable, Equatable {
    /// The number of centroids.
    public var centroidCount: Int
    /// Lloyd iterations after seeding.
    public var iterationCount: Int
    /// The seed for choosing the initial centroids and for splitting empty clusters.
    public var seed: UInt64
    /// Threads for the arg-max scan of the assignment step, `nil` for all (BLAS uses its own).
    public var threadCount: Int?

    /// Creates options.
    /// - Parameters:
    ///   - centroidCount: Centroids.
    ///   - iterationCount: Lloyd iterations (default 8).
    ///   - seed: The seed.
    ///   - threadCount: Threads for the arg-max scan (`nil`: active processors).
    public init(
        centroidCount: Int,
        iterationCount: Int = 8,
        seed: UInt64 = 0x7E55_E7A,
        threadCount: Int? = nil
    ) {
        self.centroidCount = centroidCount
        self.iterationCount = iterationCount
        self.seed = seed
        self.threadCount = threadCount
    }
}

/// Euclidean k-means (Lloyd's algorithm) with BLAS assignment.
///
/// Seeding is greedy k-means++ (each next centroid the best of three draws made with probability proportional
/// to squared distance from the centroids so far) run on a uniform subsample of `2k` points (at least 2,048,
/// at most 8,192): on the whole sample it would take `k` sequential passes over every point, more than the
/// training itself at thousands of centroids, while the subsample keeps the spread that stops Lloyd's
/// iterations from starting with two centroids in one cluster
/// and none in another. A cluster left empty by an iteration takes half of a large cluster: its centroid
/// becomes a slightly perturbed copy of the large one's, and the next assignment splits the points.
public enum KMeans {
    /// Rows assigned per BLAS call: bounds the score buffer to `rows × k` floats.
    static let assignmentBlockRows = 1024

    /// Trains centroids.
    /// - Parameters:
    ///   - points: `[n, dimension]`, row-major.
    ///   - dimension: The dimension.
    ///   - options: Centroids, iterations, seed.
    ///   - progress: Called before seeding and after every iteration with (iterations done, iterations in all).
    /// - Returns: `[k, dimension]` centroids, row-major, with `k = min(centroidCount, n)`.
    /// - Throws: ``IndexError/Code/invalidArgument`` when there are no points, the dimension does not divide
    ///   the value count, or `centroidCount < 1`.
    /// - Complexity: O(iterations × n × k × dimension) flops, through `sgemm`.
    public static func train(
        points: [Float],
        dimension: Int,
        options: KMeansOptions,
        progress: ((Int, Int) -> Void)? = nil
    ) throws(IndexError) -> [Float] {
        guard dimension > 0, points.count % dimension == 0 else {
            throw IndexError(
                .invalidArgument,
                "\(points.count) values are not rows of \(dimension)",
                field: "dimension"
            )
        }
        let pointCount = points.count / dimension
        guard pointCount > 0 else { throw IndexError(.invalidArgument, "no points to cluster", field: "points") }
        guard options.centroidCount >= 1 else {
            throw IndexError(.invalidArgument, "centroidCount must be at least 1", field: "centroidCount")
        }
        let k = min(options.centroidCount, pointCount)
        var generator = SplitMix64(seed: options.seed)

        progress?(0, options.iterationCount)
        var centroids = seed(points: points, dimension: dimension, count: k, generator: &generator)

        var sums = [Double](repeating: 0, count: k * dimension)
        var counts = [Int](repeating: 0, count: k)
        for iteration in 0..<options.iterationCount {
            let assigned = assign(
                points: points,
                dimension: dimension,
                centroids: centroids,
                threadCount: options.threadCount
            )
            for index in sums.indices { sums[index] = 0 }
            for index in counts.indices { counts[index] = 0 }
            points.withUnsafeBufferPointer { values in
                sums.withUnsafeMutableBufferPointer { total in
                    for row in 0..<pointCount {
                        let cell = Int(assigned[row])
                        counts[cell] += 1
                        let target = total.baseAddress! + cell * dimension
                        let source = values.baseAddress! + row * dimension
                        for component in 0..<dimension { target[component] += Double(source[component]) }
                    }
                }
            }
            for cell in 0..<k where counts[cell] > 0 {
                let scale = 1 / Double(counts[cell])
                for component in 0..<dimension {
                    centroids[cell * dimension + component] = Float(sums[cell * dimension + component] * scale)
                }
            }
            splitEmptyClusters(centroids: &centroids, counts: &counts, dimension: dimension, generator: &generator)
            progress?(iteration + 1, options.iterationCount)
        }
        return centroids
    }

    /// The seeding subsample: `2k` points, at least 2,048 and at most 8,192 (all points when there are fewer).
    /// Greedy k-means++ costs `k × subsample × 3 draws × 2·dimension` flops: 77 GFLOP at k = 4,096, d = 384.
    static func seedingPointCount(centroidCount k: Int, pointCount: Int) -> Int {
        min(pointCount, min(8192, max(2048, 2 * k)))
    }

    /// Greedy k-means++ on a uniform subsample (``seedingPointCount(centroidCount:pointCount:)``); when more
    /// than 4,096 centroids are asked of more points than the subsample holds, `k` distinct random points.
    static func seed(points: [Float], dimension: Int, count k: Int, generator: inout SplitMix64) -> [Float] {
        let pointCount = points.count / dimension
        var subsampleCount = seedingPointCount(centroidCount: k, pointCount: pointCount)
        let randomSeeding = 2 * k > subsampleCount && subsampleCount < pointCount
        if randomSeeding { subsampleCount = k }
        // A uniform subsample: a partial Fisher–Yates shuffle of the indices.
        var indices = Array(0..<pointCount)
        var subsample = [Float](repeating: 0, count: subsampleCount * dimension)
        for slot in 0..<subsampleCount {
            let pick = slot + Int(generator.next() % UInt64(pointCount - slot))
            indices.swapAt(slot, pick)
            let row = indices[slot]
            for component in 0..<dimension {
                subsample[slot * dimension + component] = points[row * dimension + component]
            }
        }
        indices = []
        if randomSeeding { return subsample }
        var norms = [Float](repeating: 0, count: subsampleCount)
        for row in 0..<subsampleCount {
            var sum: Float = 0
            for component in 0..<dimension {
                sum += subsample[row * dimension + component] * subsample[row * dimension + component]
            }
            norms[row] = sum
        }
        var centroids = [Float](repeating: 0, count: k * dimension)
        var nearest = [Float](repeating: .infinity, count: subsampleCount)
        // Greedy k-means++: each step draws a few candidates by D² and keeps the one that lowers the total
        // squared distance most (a single draw lands inside an already covered cluster now and then).
        let trialCount = 3
        var candidates = [Int](repeating: 0, count: trialCount)
        var candidateValues = [Float](repeating: 0, count: trialCount * dimension)
        var dots = [Float](repeating: 0, count: subsampleCount * trialCount)
        var chosen = Int(generator.next() % UInt64(subsampleCount))
        var chosenDots = [Float](repeating: 0, count: subsampleCount)
        for slot in 0..<k {
            for component in 0..<dimension {
                centroids[slot * dimension + component] = subsample[chosen * dimension + component]
            }
            // Distances to the new centroid: ‖x‖² − 2 x·c + ‖c‖²; the products from the last step's block
            // (or one sgemv for the first centroid).
            if slot == 0 {
                subsample.withUnsafeBufferPointer { values in
                    chosenDots.withUnsafeMutableBufferPointer { output in
                        cblas_sgemv(
                            CblasRowMajor,
                            CblasNoTrans,
                            Int32(subsampleCount),
                            Int32(dimension),
                            1,
                            values.baseAddress,
                            Int32(dimension),
                            values.baseAddress! + chosen * dimension,
                            1,
                            0,
                            output.baseAddress,
                            1
                        )
                    }
                }
            }
            var total: Double = 0
            for row in 0..<subsampleCount {
                let distance = max(0, norms[row] - 2 * chosenDots[row] + norms[chosen])
                if distance < nearest[row] { nearest[row] = distance }
                total += Double(nearest[row])
            }
            guard slot + 1 < k else { break }
            guard total > 0 else {
                // Every point coincides with a centroid: repeat one; the empty-cluster split separates them.
                chosen = Int(generator.next() % UInt64(subsampleCount))
                for row in 0..<subsampleCount { chosenDots[row] = norms[chosen] }
                continue
            }
            for trial in 0..<trialCount {
                var target = Double(generator.next() >> 11) / Double(UInt64(1) << 53) * total
                var pick = -1
                for row in 0..<subsampleCount where nearest[row] > 0 {
                    pick = row
                    target -= Double(nearest[row])
                    if target < 0 { break }
                }
                candidates[trial] = pick
                for component in 0..<dimension {
                    candidateValues[trial * dimension + component] = subsample[pick * dimension + component]
                }
            }
            GEMM.multiplyTransposed(
                subsample,
                candidateValues,
                rows: subsampleCount,
                columns: trialCount,
                depth: dimension,
                into: &dots
            )
            var bestTrial = 0
            var bestPotential = Double.infinity
            for trial in 0..<trialCount {
                let candidateNorm = norms[candidates[trial]]
                var potential: Double = 0
                for row in 0..<subsampleCount {
                    let distance = max(0, norms[row] - 2 * dots[row * trialCount + trial] + candidateNorm)
                    potential += Double(min(nearest[row], distance))
                }
                if potential < bestPotential {
                    bestPotential = potential
                    bestTrial = trial
                }
            }
            chosen = candidates[bestTrial]
            for row in 0..<subsampleCount { chosenDots[row] = dots[row * trialCount + bestTrial] }
        }
        return centroids
    }

    /// Gives every empty cluster half of a large one: picks a cluster with probability proportional to its
    /// size beyond one point, and moves the two centroids apart symmetrically by a small relative step.
    static func splitEmptyClusters(
        centroids: inout [Float],
        counts: inout [Int],
        dimension: Int,
        generator: inout SplitMix64
    ) {
        let k = counts.count
        let epsilon: Float = 1.0 / 1024
        for empty in 0..<k where counts[empty] == 0 {
            let surplus = counts.reduce(0) { $0 + max(0, $1 - 1) }
            guard surplus > 0 else { return }
            var target = Int(generator.next() % UInt64(surplus))
            var donor = 0
            while target >= max(0, counts[donor] - 1) {
                target -= max(0, counts[donor] - 1)
                donor += 1
            }
            for component in 0..<dimension {
                let value = centroids[donor * dimension + component]
                let sign: Float = component % 2 == 0 ? 1 : -1
                centroids[empty * dimension + component] = value * (1 + sign * epsilon)
                centroids[donor * dimension + component] = value * (1 - sign * epsilon)
            }
            counts[empty] = counts[donor] / 2
            counts[donor] -= counts[empty]
        }
    }

    /// The nearest centroid of every point, by Euclidean distance: `argmax_c (x·c − ‖c‖²/2)`, the products by
    /// `sgemm` a block of rows at a time (ties to the lower centroid).
    /// - Parameters:
    ///   - points: `[n, dimension]`, row-major.
    ///   - dimension: The dimension.
    ///   - centroids: `[k, dimension]`, row-major, `k ≥ 1`.
    ///   - threadCount: Threads for the arg-max scan (`nil`: active processors).
    /// - Returns: `n` centroid numbers.
    public static func assign(
        points: [Float],
        dimension: Int,
        centroids: [Float],
        threadCount: Int? = nil
    ) -> [Int32] {
        precondition(dimension > 0 && points.count % dimension == 0 && centroids.count % dimension == 0)
        let pointCount = points.count / dimension
        let k = centroids.count / dimension
        precondition(k >= 1, "no centroids")
        guard pointCount > 0 else { return [] }
        var halfNorms = [Float](repeating: 0, count: k)
        for cell in 0..<k {
            var sum: Float = 0
            for component in 0..<dimension {
                let value = centroids[cell * dimension + component]
                sum += value * value
            }
            halfNorms[cell] = sum / 2
        }
        var assigned = [Int32](repeating: 0, count: pointCount)
        let blockRows = min(assignmentBlockRows, pointCount)
        var scores = [Float](repeating: 0, count: blockRows * k)
        let threads = max(1, threadCount ?? ProcessInfo.processInfo.activeProcessorCount)
        points.withUnsafeBufferPointer { values in
            centroids.withUnsafeBufferPointer { centroidValues in
                scores.withUnsafeMutableBufferPointer { scoreBuffer in
                    assigned.withUnsafeMutableBufferPointer { output in
                        halfNorms.withUnsafeBufferPointer { norms in
                            var start = 0
                            while start < pointCount {
                                let rows = min(blockRows, pointCount - start)
                                GEMM.multiply(
                                    rows: rows,
                                    columns: k,
                                    depth: dimension,
                                    alpha: 1,
                                    a: values.baseAddress! + start * dimension,
                                    aStride: dimension,
                                    b: centroidValues.baseAddress!,
                                    bStride: dimension,
                                    bTransposed: true,
                                    beta: 0,
                                    c: scoreBuffer.baseAddress!,
                                    cStride: k
                                )
                                let scoreBase = SharedPointer(UnsafeMutablePointer(scoreBuffer.baseAddress!))
                                let normBase = SharedPointer(UnsafeMutablePointer(mutating: norms.baseAddress!))
                                let outputBase = SharedPointer(output.baseAddress! + start)
                                // Each row's argmax is independent: which worker takes which part changes nothing.
                                let parts = min(threads, rows)
                                ParallelFor.run(taskCount: parts, workerCount: parts) { part in
                                    let first = rows * part / parts
                                    let end = rows * (part + 1) / parts
                                    for row in first..<end {
                                        outputBase.base[row] = argmax(
                                            scoreBase.base + row * k,
                                            bias: normBase.base,
                                            count: k
                                        )
                                    }
                                }
                                start += rows
                            }
                        }
                    }
                }
            }
        }
        return assigned
    }

    /// `argmax_c (scores[c] − halfNorms[c])`, ties to the lower index; NaN never wins.
    @inline(__always)
    static func argmax(_ scores: UnsafePointer<Float>, bias: UnsafePointer<Float>, count: Int) -> Int32 {
        var best = -Float.infinity
        var bestIndex = 0
        for cell in 0..<count {
            let value = scores[cell] - bias[cell]
            if value > best {
                best = value
                bestIndex = cell
            }
        }
        return Int32(bestIndex)
    }
}

/// A pointer handed to the workers of one parallel loop, each touching its own part of the buffer.
struct SharedPointer<Element>: @unchecked Sendable {
    let base: UnsafeMutablePointer<Element>
    init(_ base: UnsafeMutablePointer<Element>) { self.base = base }
}
