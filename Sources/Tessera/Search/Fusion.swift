/// Fusion of ranked lists, as Qdrant's query API does it: reciprocal rank fusion and distribution-based score
/// fusion. Both work in `Float`, like Qdrant, so that fused scores match its to the last bit.
///
/// A point in several lists keeps the payload and matches of its first appearance (lists in order, then
/// positions). Qdrant leaves the order of equal fused scores unspecified; here ties keep the order of first
/// appearance, so results are reproducible.
public enum Fusion {
    /// Qdrant's default reciprocal-rank constant.
    public static let defaultRankConstant = 2

    /// Reciprocal rank fusion: the point at 0-based `position` of a list with weight `w` gets
    /// `1 / ((position + 1) / w + k − 1)` — `1 / (position + k)` at weight 1 —, summed over the lists it is in.
    /// A list of weight 0 or less adds 0 to its points (they are still part of the result).
    ///
    /// Qdrant's positions start at 0 and its constant is 2, so the best point of a list scores 1/2; Cormack et
    /// al.'s `1 / (60 + rank)` with ranks from 1 is `rankConstant: 61` here.
    /// - Parameters:
    ///   - lists: Ranked lists, best first.
    ///   - rankConstant: `k`, at least 1 (default 2).
    ///   - weights: One weight per list, or `nil` for 1 each.
    /// - Returns: Every point of every list, by fused score, best first.
    /// - Throws: ``TesseraError/Code/invalidArgument`` when `rankConstant < 1` or the weights do not match the
    ///   lists.
    public static func reciprocalRank(
        _ lists: [[ScoredPoint]],
        rankConstant: Int = defaultRankConstant,
        weights: [Float]? = nil
    ) throws(TesseraError) -> [ScoredPoint] {
        guard rankConstant >= 1 else {
            throw TesseraError(
                .invalidArgument,
                "rrf k must be at least 1, not \(rankConstant)",
                location: .init(field: "k")
            )
        }
        let weights = try checkedWeights(weights, listCount: lists.count)
        var fused = FusedPoints()
        for (list, weight) in zip(lists, weights) {
            for (position, point) in list.enumerated() {
                let score: Float =
                    weight > 0 ? 1 / (Float(position + 1) / weight + Float(rankConstant) - 1) : 0
                fused.add(point, score: score)
            }
        }
        return fused.ranked()
    }

    /// Distribution-based score fusion (Qdrant's `dbsf`): each list's scores are normalised with the list's
    /// mean ± 3 sample standard deviations as 0 and 1 (not clipped), multiplied by the list's weight and summed
    /// per point. A list of one point gives it 0.5; a list whose scores are all equal gives each 0.5.
    /// - Parameters:
    ///   - lists: Ranked lists, best first, higher scores better.
    ///   - weights: One weight per list, or `nil` for 1 each.
    /// - Returns: Every point of every list, by fused score, best first.
    /// - Throws: ``TesseraError/Code/invalidArgument`` when the weights do not match the lists.
    public static func distributionBased(
        _ lists: [[ScoredPoint]],
        weights: [Float]? = nil
    ) throws(TesseraError) -> [ScoredPoint] {
        let weights = try checkedWeights(weights, listCount: lists.count)
        var fused = FusedPoints()
        for (list, weight) in zip(lists, weights) {
            for (point, normalised) in zip(list, normalisedScores(list.map(\.score))) {
                fused.add(point, score: normalised * weight)
            }
        }
        return fused.ranked()
    }

    /// Scores mapped so that mean − 3σ is 0 and mean + 3σ is 1 (σ the sample standard deviation, from
    /// Welford's one-pass recurrence in `Float`, as Qdrant computes it).
    static func normalisedScores(_ scores: [Float]) -> [Float] {
        guard scores.count >= 2 else { return scores.map { _ in 0.5 } }
        var mean: Float = 0
        var aggregate: Float = 0
        for (index, score) in scores.enumerated() {
            let before = score - mean
            mean += before / Float(index + 1)
            aggregate += before * (score - mean)
        }
        let deviation = (aggregate / Float(scores.count - 1)).squareRoot()
        let low = mean - 3 * deviation
        let high = mean + 3 * deviation
        guard low != high else { return scores.map { _ in 0.5 } }
        return scores.map { ($0 - low) / (high - low) }
    }

    private static func checkedWeights(_ weights: [Float]?, listCount: Int) throws(TesseraError) -> [Float] {
        guard let weights else { return Array(repeating: 1, count: listCount) }
        guard weights.count == listCount else {
            throw TesseraError(
                .invalidArgument,
                "\(weights.count) fusion weights for \(listCount) prefetch lists",
                location: .init(field: "weights")
            )
        }
        return weights
    }
}

/// Points accumulated across lists, in order of first appearance.
private struct FusedPoints {
    var points: [ScoredPoint] = []
    var positions: [PointID: Int] = [:]

    mutating func add(_ point: ScoredPoint, score: Float) {
        if let position = positions[point.id] {
            points[position].score += score
        } else {
            positions[point.id] = points.count
            var first = point
            first.score = score
            points.append(first)
        }
    }

    func ranked() -> [ScoredPoint] {
        points.enumerated()
            .sorted {
                $0.element.score > $1.element.score || ($0.element.score == $1.element.score && $0.offset < $1.offset)
            }
            .map(\.element)
    }
}
