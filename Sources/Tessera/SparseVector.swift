/// A sparse vector: values at some of 2³² dimensions (Qdrant's `SparseVector`), indices ascending and unique.
///
/// A sparse field stores each point's vector in the field's column as one row of three values per entry — the
/// index's high and low 16 bits and the value, all exact as `Float` — so the appendable tail, sealed segments,
/// merges and compaction carry it as they carry token vectors. A point without entries holds one placeholder
/// row (index −1), which reads back as an empty vector.
public struct SparseVector: Hashable, Sendable {
    /// The dimensions, ascending.
    public private(set) var indices: [UInt32]
    /// The values at those dimensions.
    public private(set) var values: [Float]

    /// The empty vector.
    public static let empty = SparseVector(sortedIndices: [], values: [])

    /// Creates a vector from indices in any order.
    /// - Throws: ``TesseraError/Code/invalidArgument`` when the lists differ in length, an index repeats or a
    ///   value is not finite.
    public init(indices: [UInt32], values: [Float]) throws(TesseraError) {
        guard indices.count == values.count else {
            throw TesseraError(
                .invalidArgument,
                "a sparse vector needs as many values as indices (\(indices.count) indices, \(values.count) values)"
            )
        }
        if let bad = values.first(where: { !$0.isFinite }) {
            throw TesseraError(.invalidArgument, "a sparse vector's value \(bad) is not finite")
        }
        let order = indices.indices.sorted { indices[$0] < indices[$1] }
        let sorted = order.map { indices[$0] }
        for position in sorted.indices.dropFirst() where sorted[position] == sorted[position - 1] {
            throw TesseraError(.invalidArgument, "a sparse vector's index \(sorted[position]) is given twice")
        }
        self.init(sortedIndices: sorted, values: order.map { values[$0] })
    }

    init(sortedIndices: [UInt32], values: [Float]) {
        self.indices = sortedIndices
        self.values = values
    }

    /// Whether the vector has no entries.
    public var isEmpty: Bool { indices.isEmpty }

    /// The dot product with another vector, or `nil` when they share no index.
    public func dot(_ other: SparseVector) -> Float? {
        var i = 0
        var j = 0
        var sum: Float = 0
        var overlap = false
        while i < indices.count, j < other.indices.count {
            if indices[i] == other.indices[j] {
                sum += values[i] * other.values[j]
                overlap = true
                i += 1
                j += 1
            } else if indices[i] < other.indices[j] {
                i += 1
            } else {
                j += 1
            }
        }
        return overlap ? sum : nil
    }

    /// The vector with each value multiplied by `scale(index)`.
    func scaled(_ scale: (UInt32) -> Float) -> SparseVector {
        SparseVector(sortedIndices: indices, values: zip(indices, values).map { $1 * scale($0) })
    }

    /// The rows stored for the vector (three values per entry; one placeholder row when empty).
    var packed: (values: [Float], rowCount: Int) {
        guard !indices.isEmpty else { return ([-1, -1, 0], 1) }
        var rows: [Float] = []
        rows.reserveCapacity(indices.count * 3)
        for (index, value) in zip(indices, values) {
            rows.append(Float(index >> 16))
            rows.append(Float(index & 0xFFFF))
            rows.append(value)
        }
        return (rows, indices.count)
    }

    /// A vector from its stored rows.
    init(packed rows: [Float]) {
        var indices: [UInt32] = []
        var values: [Float] = []
        indices.reserveCapacity(rows.count / 3)
        values.reserveCapacity(rows.count / 3)
        var position = 0
        while position + 2 < rows.count {
            if rows[position] >= 0 {
                indices.append(UInt32(rows[position]) << 16 | UInt32(rows[position + 1]))
                values.append(rows[position + 2])
            }
            position += 3
        }
        self.init(sortedIndices: indices, values: values)
    }

    /// The values per stored row of a sparse field.
    static let rowWidth = 3
}

/// How a sparse field's query values are weighted (Qdrant's `modifier`).
public enum SparseModifier: String, Hashable, Sendable, Codable {
    /// As given.
    case none
    /// Each query value multiplied by its index's inverse document frequency over the live points holding a
    /// vector in the field, `ln(1 + (N − n + 0.5) / (n + 0.5))`, as Qdrant weighs BM25-style vectors.
    case idf
}
