import MaxSim

/// An example of a recommendation, discovery or context query: a stored point (its vector in the node's field;
/// the point itself is left out of the results) or a vector given with the query.
public enum QueryExample: Sendable, Equatable {
    /// The stored vector of this point.
    case point(PointID)
    /// A dense vector or a multivector.
    case vector(VectorValue)
}

/// How a recommendation combines its examples (Qdrant's `RecommendStrategy`).
public enum RecommendStrategy: String, Sendable, Equatable, CaseIterable {
    /// One query from the examples: `2·mean(positive) − mean(negative)` for a dense field (the mean of the
    /// positives alone without negatives); the positive tokens and the negated negative tokens for a multivector
    /// field. Searched as any query, with the field's index.
    case averageVector = "average_vector"
    /// Each candidate scored by its best positive similarity when that beats its best negative one
    /// (`sigmoid(best positive)`), else by `−sigmoid(best negative)`; an exact scan.
    case bestScore = "best_score"
    /// Each candidate scored by the sum of its positive similarities minus the sum of its negative ones.
    case sumScores = "sum_scores"
}

/// Positive and negative examples with the strategy combining them.
public struct Recommendation: Sendable, Equatable {
    /// Examples the results should resemble.
    public var positive: [QueryExample]
    /// Examples the results should not resemble.
    public var negative: [QueryExample]
    /// How they are combined.
    public var strategy: RecommendStrategy

    /// Creates a recommendation.
    public init(positive: [QueryExample], negative: [QueryExample] = [], strategy: RecommendStrategy = .averageVector) {
        self.positive = positive
        self.negative = negative
        self.strategy = strategy
    }
}

/// A pair of examples: results should be nearer the positive than the negative.
public struct ContextPair: Sendable, Equatable {
    /// The example to be nearer to.
    public var positive: QueryExample
    /// The example to be farther from.
    public var negative: QueryExample

    /// Creates a pair.
    public init(positive: QueryExample, negative: QueryExample) {
        self.positive = positive
        self.negative = negative
    }
}

/// A query scored from example vectors (resolved against a field), as Qdrant scores its recommendation (best or
/// summed scores), discovery and context queries: similarities are the field's raw scores (dot products,
/// cosines, MaxSim sums; minus the squared distance for Euclid fields), so larger is better for every field.
struct ExampleScoring {
    enum Kind {
        case best(positive: [[Float]], negative: [[Float]])
        case sum(positive: [[Float]], negative: [[Float]])
        case discover(target: [Float], context: [(positive: [Float], negative: [Float])])
        case context([(positive: [Float], negative: [Float])])
    }

    var kind: Kind
    /// The method recorded for the stage.
    var method: StageMethod

    /// Every example vector, each scored once per candidate.
    var examples: [[Float]] {
        switch kind {
        case .best(let positive, let negative), .sum(let positive, let negative): positive + negative
        case .discover(let target, let context): [target] + context.flatMap { [$0.positive, $0.negative] }
        case .context(let context): context.flatMap { [$0.positive, $0.negative] }
        }
    }

    /// `x / (1 + |x|)`, Qdrant's fast sigmoid (NaN and infinities pass through).
    static func fastSigmoid(_ x: Float) -> Float {
        guard x.isFinite else { return x }
        return x / (1 + abs(x))
    }

    /// The fast sigmoid mapped to 0...1.
    static func scaledFastSigmoid(_ x: Float) -> Float { 0.5 * (fastSigmoid(x) + 1) }

    /// The candidates' scores, given each example's similarities (`similarities[example][candidate]`, examples in
    /// the order of ``examples``).
    func scores(_ similarities: [[Float]], candidateCount: Int) -> [Float] {
        var scores = [Float](repeating: 0, count: candidateCount)
        switch kind {
        case .best(let positive, _):
            let positives = similarities.prefix(positive.count)
            let negatives = similarities.dropFirst(positive.count)
            for candidate in 0..<candidateCount {
                let best = positives.map { $0[candidate] }.max() ?? -.infinity
                let worst = negatives.map { $0[candidate] }.max() ?? -.infinity
                scores[candidate] = best > worst ? Self.scaledFastSigmoid(best) : -Self.scaledFastSigmoid(worst)
            }
        case .sum(let positive, _):
            for candidate in 0..<candidateCount {
                var sum: Float = 0
                for (index, list) in similarities.enumerated() {
                    sum += index < positive.count ? list[candidate] : -list[candidate]
                }
                scores[candidate] = sum
            }
        case .discover(_, let context):
            for candidate in 0..<candidateCount {
                var rank: Float = 0
                for pair in 0..<context.count {
                    let positive = similarities[1 + 2 * pair][candidate]
                    let negative = similarities[2 + 2 * pair][candidate]
                    rank += positive > negative ? 1 : positive == negative ? 0 : -1
                }
                scores[candidate] = rank + Self.scaledFastSigmoid(similarities[0][candidate])
            }
        case .context(let context):
            for candidate in 0..<candidateCount {
                var sum: Float = 0
                for pair in 0..<context.count {
                    let difference =
                        similarities[2 * pair][candidate] - similarities[2 * pair + 1][candidate] - Float.ulpOfOne
                    sum += Self.fastSigmoid(min(difference, 0))
                }
                scores[candidate] = sum
            }
        }
        return scores
    }
}

extension VectorColumn {
    /// The field's raw similarity of `example` (row-major tokens) to each of `slots`, in their order: the dot
    /// product (the cosine for unit vectors) or MaxSim sum, or minus the squared distance for a Euclid field.
    func similarities(
        of example: [Float],
        field: VectorField,
        slots: [Int],
        kernel: MaxSimKernel
    ) throws(TesseraError) -> [Float] {
        guard !slots.isEmpty else { return [] }
        if case .dense(.euclid) = field.kind {
            return slots.map { slot in
                let values = floatValues(ofSlot: slot)
                var sum: Float = 0
                for index in 0..<values.count {
                    let difference = values[index] - example[index]
                    sum += difference * difference
                }
                return -sum
            }
        }
        do {
            let hits = try topK(
                slots.count,
                query: Multivector(example, dimension: field.dimension),
                candidates: slots,
                kernel: kernel
            )
            var bySlot: [Int: Float] = [:]
            bySlot.reserveCapacity(hits.count)
            for hit in hits { bySlot[hit.slot] = hit.score }
            return slots.map { bySlot[$0] ?? -.infinity }
        } catch {
            throw TesseraError(.invalidArgument, "scoring failed: \(error)", location: .init(field: "query"))
        }
    }
}
