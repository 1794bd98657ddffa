import TesseraTestSupport
import Testing

@testable import TesseraIndex

/// Residual-like training data: each dimension with its own scale and offset.
private func trainingResiduals(rows: Int, dimension: Int, seed: UInt64) -> [Float] {
    var random = SeededRandom(seed: seed)
    var values: [Float] = []
    values.reserveCapacity(rows * dimension)
    for _ in 0..<rows {
        for component in 0..<dimension {
            let scale = 0.05 + 0.01 * Float(component % 7)
            let offset = 0.01 * Float(component % 3) - 0.01
            // A sum of two uniforms: peaked like real residuals.
            values.append(offset + scale * (random.signedUnit() + random.signedUnit()))
        }
    }
    return values
}

@Suite("Residual codec")
struct ResidualCodecTests {
    @Test("round trip: a value decodes to its bucket's weight, within the bucket's width", arguments: [1, 2, 4])
    func roundTripWithinBucketBound(bits: Int) throws {
        let dimension = 16
        let training = trainingResiduals(rows: 2000, dimension: dimension, seed: 1)
        let codec = try ResidualCodec.fit(residuals: training, dimension: dimension, bitCount: bits)
        #expect(codec.bytesPerToken == dimension * bits / 8)
        let buckets = 1 << bits
        // The training range closes the outer buckets.
        var low = [Float](repeating: .infinity, count: dimension)
        var high = [Float](repeating: -.infinity, count: dimension)
        for (position, value) in training.enumerated() {
            low[position % dimension] = min(low[position % dimension], value)
            high[position % dimension] = max(high[position % dimension], value)
        }
        let test = trainingResiduals(rows: 300, dimension: dimension, seed: 2)
        let decoded = codec.decode(codec.encode(residuals: test))
        #expect(decoded.count == test.count)
        for (position, value) in test.enumerated() {
            let component = position % dimension
            guard value >= low[component], value <= high[component] else { continue }
            // The bucket the value belongs to, and its edges.
            var bucket = 0
            while bucket < buckets - 1, value >= codec.cutoffs[component * (buckets - 1) + bucket] { bucket += 1 }
            let lower = bucket == 0 ? low[component] : codec.cutoffs[component * (buckets - 1) + bucket - 1]
            let upper = bucket == buckets - 1 ? high[component] : codec.cutoffs[component * (buckets - 1) + bucket]
            #expect(decoded[position] == codec.weights[component * buckets + bucket])
            #expect(abs(decoded[position] - value) <= (upper - lower) + 1e-6, "value \(value) in [\(lower), \(upper)]")
        }
    }

    @Test("more bits, smaller error; the buckets hold equal shares of the training data")
    func errorFallsWithBits() throws {
        let dimension = 8
        let training = trainingResiduals(rows: 4000, dimension: dimension, seed: 3)
        var errors: [Double] = []
        for bits in [1, 2, 4] {
            let codec = try ResidualCodec.fit(residuals: training, dimension: dimension, bitCount: bits)
            let decoded = codec.decode(codec.encode(residuals: training))
            errors.append(zip(training, decoded).reduce(0.0) { $0 + Double(($1.0 - $1.1) * ($1.0 - $1.1)) })
            // Equal shares: each bucket of dimension 0 holds about 1/B of the training values.
            let codes = codec.encode(residuals: training)
            var counts = [Int](repeating: 0, count: 1 << bits)
            for row in 0..<4000 { counts[Int(codes[row * codec.bytesPerToken]) & ((1 << bits) - 1)] += 1 }
            for count in counts {
                #expect(abs(count - 4000 / (1 << bits)) <= 4000 / (1 << bits) / 10 + 2, "bits \(bits)")
            }
        }
        #expect(errors[1] < errors[0] / 2)
        #expect(errors[2] < errors[1] / 2)
    }

    @Test("packing: dimension d at byte d·bits/8, bit (d·bits) mod 8, lowest first")
    func packingLayout() throws {
        // Two dimensions per byte at 4 bits; cutoffs 1, 2, …, 15 give value v the bucket ⌊v⌋.
        let dimension = 4
        let cutoffs = (0..<dimension).flatMap { _ in (1...15).map { Float($0) } }
        let weights = (0..<dimension).flatMap { _ in (0..<16).map { Float($0) } }
        let codec = try ResidualCodec(dimension: dimension, bitCount: 4, cutoffs: cutoffs, weights: weights)
        var codes: [UInt8] = []
        let residual: [Float] = [3.5, 12, 0, 15.9]
        codec.encode(residual.span, appendingTo: &codes)
        #expect(codes == [0xC3, 0xF0])
        #expect(codec.decode(codes) == [3, 12, 0, 15])
        // At 2 bits: four dimensions per byte.
        let two = try ResidualCodec(
            dimension: 4,
            bitCount: 2,
            cutoffs: (0..<4).flatMap { _ in [1, 2, 3] as [Float] },
            weights: (0..<4).flatMap { _ in [0, 1, 2, 3] as [Float] }
        )
        var packed: [UInt8] = []
        two.encode(([1, 0, 3, 2] as [Float]).span, appendingTo: &packed)
        #expect(packed == [0b10_11_00_01])
    }

    @Test("the lookup-table score of a code equals the dot product with its decoded residual", arguments: [1, 2, 4])
    func lookupTableEqualsDecodedDot(bits: Int) throws {
        let dimension = 32
        let training = trainingResiduals(rows: 1000, dimension: dimension, seed: 4)
        let codec = try ResidualCodec.fit(residuals: training, dimension: dimension, bitCount: bits)
        var random = SeededRandom(seed: 5)
        let query = random.signedUnits(dimension)
        let table = codec.lookupTable(query: query.span)
        #expect(table.count == codec.bytesPerToken * 256)
        let test = trainingResiduals(rows: 100, dimension: dimension, seed: 6)
        let codes = codec.encode(residuals: test)
        let decoded = codec.decode(codes)
        for row in 0..<100 {
            var viaTable: Float = 0
            for byte in 0..<codec.bytesPerToken {
                viaTable += table[byte * 256 + Int(codes[row * codec.bytesPerToken + byte])]
            }
            var direct: Double = 0
            for d in 0..<dimension { direct += Double(query[d]) * Double(decoded[row * dimension + d]) }
            #expect(abs(Double(viaTable) - direct) <= 1e-5, "row \(row)")
        }
        // Every byte value, not only those the data produced.
        for byte in 0..<codec.bytesPerToken {
            for value in 0..<256 {
                var code = [UInt8](repeating: 0, count: codec.bytesPerToken)
                code[byte] = UInt8(value)
                let residual = codec.decode(code)
                var expected: Double = 0
                let perByte = 8 / bits
                for d in (byte * perByte)..<((byte + 1) * perByte) {
                    expected += Double(query[d]) * Double(residual[d])
                }
                #expect(abs(Double(table[byte * 256 + value]) - expected) <= 1e-5)
            }
        }
    }

    @Test("bad tables are errors that name the table")
    func badTables() {
        #expect { try ResidualCodec(dimension: 4, bitCount: 3, cutoffs: [], weights: []) } throws: {
            ($0 as? IndexError)?.field == "bitCount"
        }
        #expect { try ResidualCodec(dimension: 3, bitCount: 2, cutoffs: [], weights: []) } throws: {
            ($0 as? IndexError)?.field == "dimension"
        }
        #expect { try ResidualCodec(dimension: 4, bitCount: 2, cutoffs: [1], weights: []) } throws: {
            ($0 as? IndexError)?.field == "cutoffs"
        }
        let decreasing: [Float] = [1, 0.5, 2] + Array(repeating: 0, count: 9)
        #expect {
            try ResidualCodec(dimension: 4, bitCount: 2, cutoffs: decreasing, weights: Array(repeating: 0, count: 16))
        } throws: { ($0 as? IndexError)?.field == "cutoffs" && ($0 as? IndexError)?.offset == 1 }
        #expect {
            try ResidualCodec(
                dimension: 4,
                bitCount: 2,
                cutoffs: Array(repeating: 0, count: 12),
                weights: [.nan] + Array(repeating: 0, count: 15)
            )
        } throws: { ($0 as? IndexError)?.field == "weights" }
        #expect { try ResidualCodec.fit(residuals: [], dimension: 4, bitCount: 2) } throws: {
            ($0 as? IndexError)?.field == "residuals"
        }
    }
}
