import TesseraPlatform
import TesseraTestSupport
import Testing

@testable import TesseraIndex

/// Points around `clusters` well-separated centres, `perCluster` each, shuffled by a seeded generator.
private func plantedClusters(
    clusters: Int,
    perCluster: Int,
    dimension: Int,
    spread: Float,
    seed: UInt64
) -> (points: [Float], labels: [Int], centres: [Float]) {
    var random = SeededRandom(seed: seed)
    var centres: [Float] = []
    for _ in 0..<clusters { centres += random.signedUnits(dimension).map { $0 * 10 } }
    var order: [Int] = []
    for cluster in 0..<clusters { order += Array(repeating: cluster, count: perCluster) }
    order.shuffle(using: &random)
    var points: [Float] = []
    for cluster in order {
        for component in 0..<dimension {
            points.append(centres[cluster * dimension + component] + spread * random.signedUnit())
        }
    }
    return (points, order, centres)
}

@Suite("k-means")
struct KMeansTests {
    @Test("planted clusters are recovered: every cluster maps to one centroid, near its centre")
    func recoversPlantedClusters() throws {
        let dimension = 16
        let (points, labels, centres) = plantedClusters(
            clusters: 12,
            perCluster: 60,
            dimension: dimension,
            spread: 0.5,
            seed: 3
        )
        let centroids = try KMeans.train(
            points: points,
            dimension: dimension,
            options: KMeansOptions(centroidCount: 12, iterationCount: 20, seed: 11)
        )
        #expect(centroids.count == 12 * dimension)
        let assigned = KMeans.assign(points: points, dimension: dimension, centroids: centroids)
        // Same partition: points of one planted cluster share a centroid, and different clusters do not.
        var centroidOfCluster = [Int32?](repeating: nil, count: 12)
        for (point, label) in labels.enumerated() {
            if let known = centroidOfCluster[label] {
                #expect(known == assigned[point], "point \(point) of cluster \(label)")
            } else {
                centroidOfCluster[label] = assigned[point]
            }
        }
        #expect(Set(centroidOfCluster.compactMap { $0 }).count == 12)
        // And the centroid is the cluster's mean: within the noise of 60 points around the centre.
        for cluster in 0..<12 {
            let centroid = Int(centroidOfCluster[cluster]!)
            for component in 0..<dimension {
                let error = abs(centroids[centroid * dimension + component] - centres[cluster * dimension + component])
                #expect(error < 0.25, "cluster \(cluster), component \(component)")
            }
        }
    }

    @Test("the same seed gives the same centroids; another seed starts elsewhere")
    func deterministic() throws {
        let dimension = 8
        let (points, _, _) = plantedClusters(clusters: 5, perCluster: 40, dimension: dimension, spread: 3, seed: 5)
        let options = KMeansOptions(centroidCount: 9, iterationCount: 4, seed: 1)
        let first = try KMeans.train(points: points, dimension: dimension, options: options)
        let second = try KMeans.train(points: points, dimension: dimension, options: options)
        #expect(first == second)
        var other = options
        other.seed = 2
        #expect(try KMeans.train(points: points, dimension: dimension, options: other) != first)
        var oneThread = options
        oneThread.threadCount = 1
        #expect(try KMeans.train(points: points, dimension: dimension, options: oneThread) == first)
    }

    @Test("an empty cluster is split off a large one, so no centroid ends without points")
    func emptyClustersAreSplit() throws {
        // 3 distinct locations, duplicated: seeding 3 centroids may pick duplicates, leaving clusters empty.
        let dimension = 4
        var points: [Float] = []
        for copy in 0..<30 {
            let location = copy % 3
            points += [Float(location) * 5, 0, 0, Float(location)]
        }
        for seed in 0..<8 {
            let centroids = try KMeans.train(
                points: points,
                dimension: dimension,
                options: KMeansOptions(centroidCount: 3, iterationCount: 10, seed: UInt64(seed))
            )
            let assigned = KMeans.assign(points: points, dimension: dimension, centroids: centroids)
            #expect(Set(assigned).count == 3, "seed \(seed): \(centroids)")
        }
        // The splitting step on its own: counts [0, 10, 0, 4] → no empty cluster, total preserved.
        var counts = [0, 10, 0, 4]
        var centroids: [Float] = [0, 0, 1, 1, 0, 0, 2, 2]
        var generator = SplitMix64(seed: 9)
        KMeans.splitEmptyClusters(centroids: &centroids, counts: &counts, dimension: 2, generator: &generator)
        #expect(!counts.contains(0))
        #expect(counts.reduce(0, +) == 14)
    }

    @Test("assignment equals a brute-force nearest centroid, across block boundaries")
    func assignmentMatchesBruteForce() {
        let dimension = 24
        var random = SeededRandom(seed: 77)
        let pointCount = KMeans.assignmentBlockRows * 2 + 37
        let points = random.signedUnits(pointCount * dimension)
        let centroids = random.signedUnits(50 * dimension)
        let assigned = KMeans.assign(points: points, dimension: dimension, centroids: centroids)
        var mismatches = 0
        for point in 0..<pointCount {
            var distances: [(distance: Double, centroid: Int)] = []
            for centroid in 0..<50 {
                var distance = 0.0
                for d in 0..<dimension {
                    let delta = Double(points[point * dimension + d]) - Double(centroids[centroid * dimension + d])
                    distance += delta * delta
                }
                distances.append((distance, centroid))
            }
            distances.sort { $0.distance < $1.distance }
            let bestCentroid = distances[0].centroid
            let bestMargin = distances[1].distance - distances[0].distance
            // Only a float near-tie may differ.
            if Int(assigned[point]) != bestCentroid, bestMargin > 1e-4 { mismatches += 1 }
        }
        #expect(mismatches == 0)
    }

    @Test("bad arguments are errors that name the argument")
    func badArguments() throws {
        #expect(throws: IndexError(.invalidArgument, "no points to cluster", field: "points")) {
            try KMeans.train(points: [], dimension: 4, options: KMeansOptions(centroidCount: 2))
        }
        #expect {
            try KMeans.train(points: [1, 2, 3], dimension: 2, options: KMeansOptions(centroidCount: 1))
        } throws: {
            ($0 as? IndexError)?.field == "dimension"
        }
        #expect { try KMeans.train(points: [1, 2], dimension: 2, options: KMeansOptions(centroidCount: 0)) } throws: {
            ($0 as? IndexError)?.field == "centroidCount"
        }
        // More centroids than points: one per point.
        #expect(
            try KMeans.train(points: [1, 2, 3, 4], dimension: 2, options: KMeansOptions(centroidCount: 5)).count == 4
        )
    }
}
