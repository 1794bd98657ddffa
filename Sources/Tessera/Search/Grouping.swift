import Foundation
public import MaxSim

/// Results sharing one value at a payload key (Qdrant's `PointGroup`).
public struct PointGroup: Sendable, Equatable {
    /// The value: an integer or a string.
    public var id: JSONValue
    /// The group's best results, best first.
    public var hits: [ScoredPoint]
}

/// How many points hold one value at a payload key (Qdrant's `FacetValueHit`).
public struct FacetHit: Sendable, Equatable {
    /// The value: a boolean, an integer or a string (UUIDs in their hyphenated lowercase form).
    public var value: JSONValue
    /// The points holding it.
    public var count: Int
}

/// Each sampled point's nearest neighbours among the other sampled points (Qdrant's distance matrix).
public struct DistanceMatrix: Sendable, Equatable {
    /// The sampled points, in id order.
    public var ids: [PointID]
    /// For each sampled point (in the order of ``ids``), its nearest other sampled points, best first.
    public var neighbours: [[ScoredPoint]]
}

extension CollectionStore {
    /// Runs a query and groups its results by the values at a payload key (Qdrant's `query_points_groups`): every
    /// stage ranks the whole collection (each limit raised to the collection's size), then each result joins the
    /// group of each distinct value it holds at the key, groups listed in the order of their best result.
    ///
    /// A group is named by an integer or a string; a point holding a value of any other kind at the key (a float,
    /// a boolean, an object) joins no group, as in Qdrant, and so does a point without the key.
    /// - Parameters:
    ///   - request: The query; its root limit and offset are not used.
    ///   - key: The payload key.
    ///   - groupSize: Results per group (≥ 1).
    ///   - limit: Groups (≥ 1).
    ///   - encoder: Encodes text queries that name a vector field.
    ///   - kernel: The MaxSim kernel configuration.
    /// - Returns: Up to `limit` groups, each with up to `groupSize` results.
    /// - Throws: ``TesseraError`` as ``query(_:encoder:kernel:)``, or for a size or limit below 1.
    public func queryGroups(
        _ request: QueryRequest,
        groupBy key: PayloadKey,
        groupSize: Int,
        limit: Int,
        encoder: (any QueryTextEncoder)? = nil,
        kernel: MaxSimKernel = MaxSimKernel()
    ) throws(TesseraError) -> [PointGroup] {
        guard groupSize >= 1 else {
            throw TesseraError(
                .invalidArgument,
                "group_size must be at least 1 (got \(groupSize))",
                location: .init(field: "group_size")
            )
        }
        guard limit >= 1 else {
            throw TesseraError(
                .invalidArgument,
                "limit must be at least 1 (got \(limit))",
                location: .init(field: "limit")
            )
        }
        var full = request
        full.offset = 0
        full.withPayload = true
        full.payloadSelector = nil
        Self.raiseLimits(&full.root)
        let points = try query(full, encoder: encoder, kernel: kernel).points
        var groups: [PointGroup] = []
        var position: [JSONValue: Int] = [:]
        for var point in points {
            guard let payload = point.payload, let values = Self.groupValues(key.values(in: payload)) else { continue }
            if !request.withPayload {
                point.payload = nil
            } else if let selector = request.payloadSelector {
                point.payload = selector.apply(to: payload)
            }
            for value in values {
                if let index = position[value] {
                    if groups[index].hits.count < groupSize { groups[index].hits.append(point) }
                } else {
                    position[value] = groups.count
                    groups.append(PointGroup(id: value, hits: [point]))
                }
            }
        }
        return Array(groups.prefix(limit))
    }

    /// Every limit of the tree set to the largest (the planner caps it at the collection's size).
    static func raiseLimits(_ node: inout QueryNode) {
        node.limit = Int.max
        for index in node.prefetch.indices { raiseLimits(&node.prefetch[index]) }
    }

    /// The distinct group values at a key (arrays unwrapped one level) in payload order, or `nil` when a value
    /// cannot name a group (or there is none).
    static func groupValues(_ values: [JSONValue]) -> [JSONValue]? {
        var result: [JSONValue] = []
        var seen = Set<JSONValue>()
        for value in values {
            let items: [JSONValue]
            if case .array(let elements) = value { items = elements } else { items = [value] }
            for item in items {
                switch item {
                case .integer, .unsigned, .string: if seen.insert(item).inserted { result.append(item) }
                default: return nil
                }
            }
        }
        return result.isEmpty ? nil : result
    }

    /// How many points passing `filter` hold each value at a payload key (Qdrant's `facet`), most frequent first,
    /// ties by value (booleans, then integers, then strings; each kind in its own order). A point counts once per
    /// distinct value; arrays count each element; values of other kinds are not counted. No payload index is
    /// needed.
    /// - Parameters:
    ///   - key: The payload key.
    ///   - filter: Only points passing it count.
    ///   - limit: At most this many values (≥ 1).
    /// - Returns: The values and their counts.
    /// - Throws: ``TesseraError/Code/invalidArgument`` for a limit below 1.
    public func facet(key: PayloadKey, filter: Filter? = nil, limit: Int = 10) throws(TesseraError) -> [FacetHit] {
        guard limit >= 1 else {
            throw TesseraError(
                .invalidArgument,
                "limit must be at least 1 (got \(limit))",
                location: .init(field: "limit")
            )
        }
        var counts: [FacetKey: Int] = [:]
        withScoringView { view in
            let allowed = filter.flatMap { $0.isEmpty ? nil : $0 }.map { allowedSlots(filter: $0, in: view) }
            for slot in view.liveSlots.slots {
                if let allowed, !allowed.contains(slot) { continue }
                var values = Set<FacetKey>()
                for value in key.values(in: view.payload(ofSlot: slot)) {
                    if case .array(let elements) = value {
                        values.formUnion(elements.compactMap(FacetKey.init))
                    } else if let facetKey = FacetKey(value) {
                        values.insert(facetKey)
                    }
                }
                for value in values { counts[value, default: 0] += 1 }
            }
        }
        let sorted = counts.sorted { left, right in
            left.value != right.value ? left.value > right.value : left.key < right.key
        }
        return sorted.prefix(limit).map { FacetHit(value: $0.key.jsonValue, count: $0.value) }
    }

    /// Samples up to `sample` points passing `filter` at random and finds, for each, its `limit` nearest other
    /// sampled points in a vector field, exactly (Qdrant's `search_matrix_pairs` and `search_matrix_offsets`).
    /// Fewer than two sampled points give an empty matrix.
    /// - Parameters:
    ///   - field: The vector field (`nil`: the collection's only field).
    ///   - filter: Only points passing it are sampled.
    ///   - sample: Points to sample (≥ 2).
    ///   - limit: Neighbours per point (≥ 1).
    ///   - kernel: The MaxSim kernel configuration.
    /// - Returns: The sampled ids and each one's neighbours.
    /// - Throws: ``TesseraError`` for an unknown field or a sample or limit out of range.
    public func distanceMatrix(
        field: String?,
        filter: Filter? = nil,
        sample: Int = 10,
        limit: Int = 3,
        kernel: MaxSimKernel = MaxSimKernel()
    ) throws(TesseraError) -> DistanceMatrix {
        guard sample >= 2 else {
            throw TesseraError(
                .invalidArgument,
                "sample must be at least 2 (got \(sample))",
                location: .init(field: "sample")
            )
        }
        guard limit >= 1 else {
            throw TesseraError(
                .invalidArgument,
                "limit must be at least 1 (got \(limit))",
                location: .init(field: "limit")
            )
        }
        let view = scoringView()
        let vectorField = try Planner.field(named: field, multivector: nil, in: configuration, path: "query")
        // Points without a vector in the field are not sampled.
        var candidates = view.presentSlots(field: vectorField.name) ?? view.liveSlots
        if let filter, !filter.isEmpty { candidates.formIntersection(allowedSlots(filter: filter, in: view)) }
        var generator = SystemRandomNumberGenerator()
        var pool = candidates.slots
        let count = min(sample, pool.count)
        for index in 0..<count { pool.swapAt(index, Int.random(in: index..<pool.count, using: &generator)) }
        let ids = pool.prefix(count).map { view.pointIDs[$0] }.sorted()
        guard ids.count >= 2 else { return DistanceMatrix(ids: [], neighbours: []) }
        let scope = Filter(must: [.hasID(Set(ids))])
        var neighbours: [[ScoredPoint]] = []
        for id in ids {
            var parameters = QueryParameters()
            parameters.exact = true
            let node = QueryNode(query: .point(id), using: vectorField.name, limit: limit, parameters: parameters)
            var request = QueryRequest(root: node, scope: scope, withPayload: false)
            request.withVectors = []
            neighbours.append(try query(request, kernel: kernel).points)
        }
        return DistanceMatrix(ids: ids, neighbours: neighbours)
    }
}

/// A facet value with Qdrant's order: booleans, then integers, then strings.
private enum FacetKey: Hashable, Comparable {
    case bool(Bool)
    case integer(Int64)
    case unsigned(UInt64)
    case string(String)

    init?(_ value: JSONValue) {
        switch value {
        case .bool(let flag): self = .bool(flag)
        case .integer(let number): self = .integer(number)
        case .unsigned(let number): self = .unsigned(number)
        case .string(let text): self = .string(Self.canonicalUUID(text) ?? text)
        default: return nil
        }
    }

    /// A UUID string (hyphenated or 32 hex digits) in its hyphenated lowercase form.
    static func canonicalUUID(_ text: String) -> String? {
        var hex = text
        if hex.count == 32, hex.allSatisfy(\.isHexDigit) {
            let characters = Array(hex)
            hex = [0..<8, 8..<12, 12..<16, 16..<20, 20..<32].map { String(characters[$0]) }.joined(separator: "-")
        }
        return UUID(uuidString: hex).map { $0.uuidString.lowercased() }
    }

    var jsonValue: JSONValue {
        switch self {
        case .bool(let flag): .bool(flag)
        case .integer(let number): .integer(number)
        case .unsigned(let number): .unsigned(number)
        case .string(let text): .string(text)
        }
    }

    private var rank: Int {
        switch self {
        case .bool: 0
        case .integer, .unsigned: 1
        case .string: 2
        }
    }

    static func < (lhs: FacetKey, rhs: FacetKey) -> Bool {
        switch (lhs, rhs) {
        case (.bool(let a), .bool(let b)): return !a && b
        case (.integer(let a), .integer(let b)): return a < b
        case (.integer(let a), .unsigned(let b)): return a < 0 || UInt64(a) < b
        case (.unsigned(let a), .integer(let b)): return b >= 0 && a < UInt64(b)
        case (.unsigned(let a), .unsigned(let b)): return a < b
        case (.string(let a), .string(let b)): return a.utf8.lexicographicallyPrecedes(b.utf8)
        default: return lhs.rank < rhs.rank
        }
    }
}
