/// Per-dimension scalar quantisation of residuals (a token minus its centroid) to 1, 2 or 4 bits.
///
/// Dimension `d` has `B = 2^bitCount` buckets, separated by `B − 1` increasing ``cutoffs`` (a value goes to
/// the first bucket whose upper cutoff exceeds it), and one reconstruction ``weights`` value per bucket.
/// ``fit(residuals:dimension:bitCount:)`` puts the cutoffs at the quantiles `1/B, 2/B, …` of each dimension's
/// training residuals, so that every bucket holds the same share of them, and the weights at the mean of each
/// bucket's residuals, which minimises the squared error for those cutoffs.
///
/// A code packs the buckets of all dimensions, `bitCount` bits each, lowest bits first: dimension `d` lives in
/// byte `d·bitCount/8` at bit `(d·bitCount) mod 8`. ``lookupTable(query:into:)`` turns a query token into the
/// contribution of every possible byte, so the dot product of the query with a decoded residual is a sum of
/// ``bytesPerToken`` table entries.
public struct ResidualCodec: Sendable, Equatable, Codable {
    /// The dimension.
    public let dimension: Int
    /// Bits per dimension: 1, 2 or 4.
    public let bitCount: Int
    /// `[dimension, bucketCount − 1]`, row-major, increasing along each row.
    public let cutoffs: [Float]
    /// `[dimension, bucketCount]`, row-major.
    public let weights: [Float]

    /// Buckets per dimension, `2^bitCount`.
    public var bucketCount: Int { 1 << bitCount }

    /// Bytes of one token's code, `dimension·bitCount/8`.
    public var bytesPerToken: Int { dimension * bitCount / 8 }

    /// Creates a codec from its tables.
    /// - Parameters:
    ///   - dimension: The dimension; `dimension·bitCount` must be a multiple of 8.
    ///   - bitCount: 1, 2 or 4.
    ///   - cutoffs: `dimension × (2^bitCount − 1)` values, non-decreasing per dimension.
    ///   - weights: `dimension × 2^bitCount` values.
    /// - Throws: ``IndexError/Code/invalidArgument`` naming the table and position that is wrong.
    public init(dimension: Int, bitCount: Int, cutoffs: [Float], weights: [Float]) throws(IndexError) {
        guard [1, 2, 4].contains(bitCount) else {
            throw IndexError(.invalidArgument, "bitCount \(bitCount) (expected 1, 2 or 4)", field: "bitCount")
        }
        guard dimension > 0, (dimension * bitCount) % 8 == 0 else {
            throw IndexError(
                .invalidArgument,
                "dimension \(dimension) × \(bitCount) bits is not a whole number of bytes",
                field: "dimension"
            )
        }
        let buckets = 1 << bitCount
        guard cutoffs.count == dimension * (buckets - 1) else {
            throw IndexError(
                .invalidArgument,
                "\(cutoffs.count) cutoffs, expected \(dimension * (buckets - 1))",
                field: "cutoffs"
            )
        }
        guard weights.count == dimension * buckets else {
            throw IndexError(
                .invalidArgument,
                "\(weights.count) weights, expected \(dimension * buckets)",
                field: "weights"
            )
        }
        for (position, value) in cutoffs.enumerated() where !value.isFinite {
            throw IndexError(.invalidArgument, "cutoff \(value) is not finite", field: "cutoffs", offset: position)
        }
        for (position, value) in weights.enumerated() where !value.isFinite {
            throw IndexError(.invalidArgument, "weight \(value) is not finite", field: "weights", offset: position)
        }
        for component in 0..<dimension {
            for bucket in 1..<max(1, buckets - 1) {
                let position = component * (buckets - 1) + bucket
                guard cutoffs[position] >= cutoffs[position - 1] else {
                    throw IndexError(
                        .invalidArgument,
                        "cutoffs of dimension \(component) decrease",
                        field: "cutoffs",
                        offset: position
                    )
                }
            }
        }
        self.dimension = dimension
        self.bitCount = bitCount
        self.cutoffs = cutoffs
        self.weights = weights
    }

    /// Fits a codec to training residuals.
    /// - Parameters:
    ///   - residuals: `[n, dimension]`, row-major, `n ≥ 1`.
    ///   - dimension: The dimension.
    ///   - bitCount: 1, 2 or 4.
    /// - Returns: The codec.
    /// - Throws: ``IndexError/Code/invalidArgument`` for no residuals or a shape the codec cannot pack.
    /// - Complexity: O(n log n) per dimension.
    public static func fit(residuals: [Float], dimension: Int, bitCount: Int) throws(IndexError) -> ResidualCodec {
        guard dimension > 0, residuals.count % dimension == 0, !residuals.isEmpty else {
            throw IndexError(
                .invalidArgument,
                "\(residuals.count) residual values are not a positive number of rows of \(dimension)",
                field: "residuals"
            )
        }
        guard [1, 2, 4].contains(bitCount) else {
            throw IndexError(.invalidArgument, "bitCount \(bitCount) (expected 1, 2 or 4)", field: "bitCount")
        }
        let rows = residuals.count / dimension
        let buckets = 1 << bitCount
        var cutoffs = [Float](repeating: 0, count: dimension * (buckets - 1))
        var weights = [Float](repeating: 0, count: dimension * buckets)
        var column = [Float](repeating: 0, count: rows)
        for component in 0..<dimension {
            for row in 0..<rows { column[row] = residuals[row * dimension + component] }
            column.sort()
            // Bucket b holds sorted positions [bounds[b], bounds[b + 1]).
            var bounds = [0]
            for bucket in 1..<buckets {
                let position = min(rows - 1, rows * bucket / buckets)
                cutoffs[component * (buckets - 1) + bucket - 1] = column[position]
                // Everything below the cutoff goes to lower buckets; equal values go up.
                var first = position
                while first > 0, column[first - 1] >= column[position] { first -= 1 }
                bounds.append(max(first, bounds[bucket - 1]))
            }
            bounds.append(rows)
            for bucket in 0..<buckets {
                let range = bounds[bucket]..<bounds[bucket + 1]
                if range.isEmpty {
                    // No training value fell here: reconstruct at the bucket's lower cutoff (or the first value).
                    weights[component * buckets + bucket] =
                        bucket == 0 ? column[0] : cutoffs[component * (buckets - 1) + bucket - 1]
                } else {
                    var sum: Double = 0
                    for position in range { sum += Double(column[position]) }
                    weights[component * buckets + bucket] = Float(sum / Double(range.count))
                }
            }
        }
        return try ResidualCodec(dimension: dimension, bitCount: bitCount, cutoffs: cutoffs, weights: weights)
    }

    /// The bucket of value `value` in dimension `component`.
    @inline(__always)
    func bucket(of value: Float, component: Int) -> Int {
        let base = component * (bucketCount - 1)
        var bucket = 0
        while bucket < bucketCount - 1, value >= cutoffs[base + bucket] { bucket += 1 }
        return bucket
    }

    /// Appends the code of one residual.
    /// - Parameters:
    ///   - residual: `dimension` values.
    ///   - codes: Where ``bytesPerToken`` bytes are appended.
    public func encode(_ residual: Span<Float>, appendingTo codes: inout [UInt8]) {
        precondition(residual.count == dimension, "residual has \(residual.count) values, expected \(dimension)")
        let perByte = 8 / bitCount
        for byte in 0..<bytesPerToken {
            var packed = 0
            for slot in 0..<perByte {
                let component = byte * perByte + slot
                packed |= bucket(of: residual[component], component: component) << (slot * bitCount)
            }
            codes.append(UInt8(packed))
        }
    }

    /// The codes of many residuals.
    /// - Parameter residuals: `[n, dimension]`, row-major.
    /// - Returns: `n × bytesPerToken` bytes.
    public func encode(residuals: [Float]) -> [UInt8] {
        precondition(residuals.count % dimension == 0, "residuals are not rows of \(dimension)")
        var codes: [UInt8] = []
        codes.reserveCapacity(residuals.count / dimension * bytesPerToken)
        let span = residuals.span
        for row in 0..<(residuals.count / dimension) {
            encode(span.extracting((row * dimension)..<((row + 1) * dimension)), appendingTo: &codes)
        }
        return codes
    }

    /// Decodes codes back to residuals (for tests and diagnostics; search never decodes).
    /// - Parameter codes: A multiple of ``bytesPerToken`` bytes.
    /// - Returns: `[codes.count / bytesPerToken, dimension]`, row-major.
    public func decode(_ codes: [UInt8]) -> [Float] {
        precondition(codes.count % bytesPerToken == 0, "codes are not whole tokens")
        let tokens = codes.count / bytesPerToken
        let perByte = 8 / bitCount
        let mask = bucketCount - 1
        var values = [Float](repeating: 0, count: tokens * dimension)
        for token in 0..<tokens {
            for byte in 0..<bytesPerToken {
                let packed = Int(codes[token * bytesPerToken + byte])
                for slot in 0..<perByte {
                    let component = byte * perByte + slot
                    let bucket = (packed >> (slot * bitCount)) & mask
                    values[token * dimension + component] = weights[component * bucketCount + bucket]
                }
            }
        }
        return values
    }

    /// The lookup table of a query token: entry `[b][v]` (at `b·256 + v`) is the dot product of the query with
    /// the decoded dimensions that byte `b` holds when its value is `v`.
    /// - Parameter query: `dimension` values.
    /// - Returns: `bytesPerToken × 256` floats.
    public func lookupTable(query: Span<Float>) -> [Float] {
        var table = [Float](repeating: 0, count: bytesPerToken * 256)
        lookupTable(query: query, into: &table)
        return table
    }

    /// Fills a query token's lookup table (see ``lookupTable(query:)``).
    /// - Parameters:
    ///   - query: `dimension` values.
    ///   - table: `bytesPerToken × 256` floats, overwritten.
    /// - Complexity: O(bytesPerToken × 256).
    public func lookupTable(query: Span<Float>, into table: inout [Float]) {
        precondition(query.count == dimension, "query has \(query.count) values, expected \(dimension)")
        precondition(table.count == bytesPerToken * 256, "table has \(table.count) entries")
        let perByte = 8 / bitCount
        let buckets = bucketCount
        var contributions = [Float](repeating: 0, count: perByte * buckets)
        table.withUnsafeMutableBufferPointer { output in
            for byte in 0..<bytesPerToken {
                for slot in 0..<perByte {
                    let component = byte * perByte + slot
                    for bucket in 0..<buckets {
                        contributions[slot * buckets + bucket] =
                            query[component] * weights[component * buckets + bucket]
                    }
                }
                // Entry v = Σ_slot contribution[slot][bucket of slot in v]; built by doubling over slots:
                // entries [0, buckets^(s+1)) from entries [0, buckets^s) plus slot s's contribution.
                let row = output.baseAddress! + byte * 256
                for bucket in 0..<buckets { row[bucket] = contributions[bucket] }
                var filled = buckets
                for slot in 1..<max(1, perByte) {
                    for bucket in stride(from: buckets - 1, through: 0, by: -1) {
                        let add = contributions[slot * buckets + bucket]
                        let target = row + bucket * filled
                        for low in 0..<filled { target[low] = row[low] + add }
                    }
                    filled *= buckets
                }
            }
        }
    }
}
