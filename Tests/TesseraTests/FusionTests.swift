import Testing

@testable import Tessera

private func point(_ id: UInt64, _ score: Float = 0) -> ScoredPoint {
    ScoredPoint(id: .integer(id), score: score, payload: ["n": .integer(Int64(id))], matchedTokens: nil)
}

private func ids(_ points: [ScoredPoint]) -> [UInt64] {
    points.map { if case .integer(let value) = $0.id { value } else { 0 } }
}

@Suite("Fusion")
struct FusionTests {
    @Test("reciprocal rank fusion: 1/(position + 2) per list, summed (hand-computed)")
    func reciprocalRankByHand() throws {
        let fused = try Fusion.reciprocalRank([
            [point(10), point(20), point(30)],
            [point(20), point(40)],
            [point(30), point(10), point(20)],
        ])
        // 20: 1/3 + 1/2 + 1/4; 10: 1/2 + 1/3; 30: 1/4 + 1/2; 40: 1/3.
        #expect(ids(fused) == [20, 10, 30, 40])
        let expected: [Float] = [13.0 / 12, 5.0 / 6, 3.0 / 4, 1.0 / 3]
        for (hit, value) in zip(fused, expected) { #expect(abs(hit.score - value) < 1e-6) }
        #expect(fused[0].payload == ["n": .integer(20)])
    }

    @Test("weights stretch positions: 1/((position + 1)/w + k − 1); weight 0 keeps the point at 0")
    func weightedReciprocalRank() throws {
        let fused = try Fusion.reciprocalRank([[point(1), point(2)], [point(2), point(1)]], weights: [3, 1])
        // 1: 1/(1/3 + 1) + 1/(2 + 1) = 0.75 + 0.3333; 2: 1/(2/3 + 1) + 1/(1 + 1) = 0.6 + 0.5.
        #expect(ids(fused) == [2, 1])
        #expect(abs(fused[0].score - 1.1) < 1e-6)
        #expect(abs(fused[1].score - (0.75 + 1.0 / 3)) < 1e-6)
        let zero = try Fusion.reciprocalRank([[point(1)], [point(2)]], weights: [1, 0])
        #expect(ids(zero) == [1, 2])
        #expect(zero.map(\.score) == [0.5, 0])
        // Cormack et al.'s k = 60 on ranks from 1 is k = 61 on positions from 0.
        let cormack = try Fusion.reciprocalRank([[point(1), point(2)]], rankConstant: 61)
        #expect(abs(cormack[0].score - 1.0 / 61) < 1e-9)
        #expect(abs(cormack[1].score - 1.0 / 62) < 1e-9)
    }

    @Test("ties keep the order of first appearance; empty lists fuse to nothing")
    func tiesAndEmpty() throws {
        let fused = try Fusion.reciprocalRank([[point(7), point(3)], [point(3), point(7)]])
        #expect(fused.map(\.score) == [fused[0].score, fused[0].score])
        #expect(ids(fused) == [7, 3])
        #expect(try Fusion.reciprocalRank([[], []]).isEmpty)
        #expect(try Fusion.distributionBased([]).isEmpty)
    }

    @Test("distribution-based score fusion: mean ± 3σ to 0 and 1, summed (hand-computed)")
    func distributionBasedByHand() throws {
        // List 1: mean 0.6, σ 0.3 → 0 at −0.3, 1 at 1.5. List 2 (two points): each is 1/2 ± √2/12.
        let fused = try Fusion.distributionBased([
            [point(1, 0.9), point(2, 0.6), point(3, 0.3)],
            [point(3, 10), point(4, 2)],
        ])
        #expect(ids(fused) == [3, 1, 2, 4])
        let offset = Float(2.0.squareRoot() / 12)
        let expected: [Float] = [1.0 / 3 + 0.5 + offset, 2.0 / 3, 0.5, 0.5 - offset]
        for (hit, value) in zip(fused, expected) { #expect(abs(hit.score - value) < 1e-5, "\(hit.id)") }
        // One point, or equal scores: 0.5 each; weights multiply.
        let single = try Fusion.distributionBased([[point(1, 42)], [point(2, 5), point(3, 5)]], weights: [2, 1])
        #expect(ids(single) == [1, 2, 3])
        #expect(single.map(\.score) == [1, 0.5, 0.5])
    }

    @Test("bad fusion parameters are errors that name the field")
    func badParameters() {
        #expect { try Fusion.reciprocalRank([[point(1)]], rankConstant: 0) } throws: {
            ($0 as? TesseraError)?.location.field == "k"
        }
        #expect { try Fusion.reciprocalRank([[point(1)], [point(2)]], weights: [1]) } throws: {
            ($0 as? TesseraError)?.location.field == "weights"
        }
        #expect { try Fusion.distributionBased([[point(1)]], weights: [1, 2]) } throws: {
            ($0 as? TesseraError)?.location.field == "weights"
        }
    }
}
