/// The vector value of one field of one point.
public enum VectorValue: Hashable, Sendable {
    /// One vector `[dimension]`, for a dense field.
    case dense([Float])
    /// Token vectors, one row per token, each `[dimension]`, for a multivector field.
    case multivector([[Float]])
    /// Token vectors packed row-major into one array of `tokenCount × dimension` values, for a multivector field.
    case flat(values: [Float], tokenCount: Int)
    /// A sparse vector, for a sparse field.
    case sparse(SparseVector)

    /// The values row-major, and the number of rows (1 for ``dense(_:)``).
    public var flattened: (values: [Float], tokenCount: Int) {
        switch self {
        case .dense(let values): (values, 1)
        case .multivector(let rows): (rows.flatMap { $0 }, rows.count)
        case .flat(let values, let tokenCount): (values, tokenCount)
        case .sparse(let vector): (vector.packed.values, vector.packed.rowCount)
        }
    }
}

/// A point: an id, a JSON payload and one vector value per field of the collection.
public struct Point: Hashable, Sendable {
    /// The point's id.
    public var id: PointID
    /// The payload, a JSON object (Qdrant's payload).
    public var payload: JSONObject
    /// The vectors by field name. Upserts need one per configured field.
    public var vectors: [String: VectorValue]

    /// Creates a point.
    /// - Parameters:
    ///   - id: The point's id.
    ///   - payload: The payload object.
    ///   - vectors: One vector value per configured field.
    public init(id: PointID, payload: JSONObject = [:], vectors: [String: VectorValue]) {
        self.id = id
        self.payload = payload
        self.vectors = vectors
    }
}

/// A point read back from a collection: the parts that were asked for.
public struct Record: Hashable, Sendable {
    /// The point's id.
    public var id: PointID
    /// The payload, when it was asked for.
    public var payload: JSONObject?
    /// The stored vectors, decoded to `Float`, when they were asked for. Multivector fields come back as
    /// ``VectorValue/multivector(_:)``, dense fields as ``VectorValue/dense(_:)``.
    public var vectors: [String: VectorValue]?

    /// Creates a record.
    /// - Parameters:
    ///   - id: The point's id.
    ///   - payload: The payload, if asked for.
    ///   - vectors: The vectors, if asked for.
    public init(id: PointID, payload: JSONObject? = nil, vectors: [String: VectorValue]? = nil) {
        self.id = id
        self.payload = payload
        self.vectors = vectors
    }
}

/// One page of ``CollectionStore/scroll(filter:limit:offset:withPayload:withVectors:)``.
public struct ScrollPage: Hashable, Sendable {
    /// The points of this page, in id order.
    public var records: [Record]
    /// The id to pass as `offset` for the next page, or `nil` when this page is the last (Qdrant's
    /// `next_page_offset`).
    public var nextPageOffset: PointID?
}
