/// A value points are ordered by: a number, or a date-time as microseconds since the epoch (Qdrant's
/// `order_value`).
public enum OrderValue: Hashable, Sendable, Comparable {
    case integer(Int64)
    case double(Double)

    /// The order value of a payload value: an integer, a float, or a date or date-time string (RFC 3339, read as
    /// UTC without an offset) as microseconds; `nil` for anything else (booleans included).
    public init?(_ value: JSONValue) {
        switch value {
        case .integer(let number): self = .integer(number)
        case .double(let number): self = .double(number)
        case .string(let text):
            guard let micros = PayloadIndexType.dateTimeMicroseconds(text) else { return nil }
            self = .integer(micros)
        default: return nil
        }
    }

    /// The value as JSON.
    public var jsonValue: JSONValue {
        switch self {
        case .integer(let number): .integer(number)
        case .double(let number): .double(number)
        }
    }

    public static func < (lhs: OrderValue, rhs: OrderValue) -> Bool {
        switch (lhs, rhs) {
        case (.integer(let a), .integer(let b)): a < b
        case (.integer(let a), .double(let b)): Double(a) < b
        case (.double(let a), .integer(let b)): a < Double(b)
        case (.double(let a), .double(let b)): a < b
        }
    }
}

/// Qdrant's `order_by` for a scroll: points ordered by the values at a payload key.
///
/// A point is listed once for each distinct order value at the key (an array of three numbers lists it up to three
/// times); points with no such value are left out. Equal values list in id order. `startFrom` skips values before
/// it in the direction of the order.
public struct OrderBy: Hashable, Sendable {
    /// Ascending or descending.
    public enum Direction: String, Hashable, Sendable {
        case ascending = "asc"
        case descending = "desc"
    }

    /// The payload key.
    public var key: PayloadKey
    /// The direction; ascending by default.
    public var direction: Direction
    /// The first value listed (inclusive), in the order's direction.
    public var startFrom: OrderValue?

    /// Creates an order.
    public init(key: PayloadKey, direction: Direction = .ascending, startFrom: OrderValue? = nil) {
        self.key = key
        self.direction = direction
        self.startFrom = startFrom
    }
}

/// A point of an ordered scroll and the value it was listed for.
public struct OrderedRecord: Hashable, Sendable {
    /// The point.
    public var record: Record
    /// The value at the order key it is listed for.
    public var orderValue: OrderValue
}

extension CollectionStore {
    /// The first `limit` points passing `filter`, ordered by the values at a payload key (Qdrant's scroll with
    /// `order_by`; there is no next page offset: the next page starts from the last value with ``OrderBy/startFrom``).
    /// - Parameters:
    ///   - order: The key, direction and start.
    ///   - filter: A payload filter.
    ///   - limit: At most this many entries (≥ 1).
    ///   - withPayload: Return payloads.
    ///   - withVectors: Return vectors.
    /// - Returns: The entries in order.
    /// - Throws: ``TesseraError/Code/invalidArgument`` for a limit below 1, ``TesseraError/Code/io``.
    /// - Complexity: O(n log n) over the points holding the key.
    public func scroll(
        orderedBy order: OrderBy,
        filter: Filter? = nil,
        limit: Int = 10,
        withPayload: Bool = true,
        withVectors: Bool = false
    ) throws(TesseraError) -> [OrderedRecord] {
        guard limit >= 1 else {
            throw TesseraError(
                .invalidArgument,
                "scroll limit must be at least 1, got \(limit)",
                location: .init(field: "limit")
            )
        }
        var entries: [(value: OrderValue, id: PointID)] = []
        withScoringView { view in
            let allowed = filter.flatMap { $0.isEmpty ? nil : $0 }.map { allowedSlots(filter: $0, in: view) }
            let slots = view.liveSlots.slots.filter { allowed?.contains($0) ?? true }
            entries = Self.ordered(slots, by: order, in: view).map { ($0.value, view.pointIDs[$0.slot]) }
        }
        let chosen = entries.prefix(limit)
        let records = try get(ids: Array(Set(chosen.map(\.id))), withPayload: withPayload, withVectors: withVectors)
        let byID = Dictionary(records.map { ($0.id, $0) }, uniquingKeysWith: { first, _ in first })
        return chosen.compactMap { entry in byID[entry.id].map { OrderedRecord(record: $0, orderValue: entry.value) } }
    }

    /// `slots` listed once per distinct order value at the key, in the order's direction (ties in id order), values
    /// before ``OrderBy/startFrom`` left out.
    static func ordered(
        _ slots: [Int],
        by order: OrderBy,
        in view: ScoringView
    ) -> [(value: OrderValue, slot: Int)] {
        var entries: [(value: OrderValue, slot: Int)] = []
        for slot in slots {
            var values = Set<OrderValue>()
            for value in order.key.values(in: view.payload(ofSlot: slot)) {
                if case .array(let elements) = value {
                    values.formUnion(elements.compactMap(OrderValue.init))
                } else if let orderValue = OrderValue(value) {
                    values.insert(orderValue)
                }
            }
            for value in values {
                if let start = order.startFrom {
                    if order.direction == .ascending ? value < start : start < value { continue }
                }
                entries.append((value, slot))
            }
        }
        entries.sort { a, b in
            if a.value != b.value { return order.direction == .ascending ? a.value < b.value : b.value < a.value }
            return view.pointIDs[a.slot] < view.pointIDs[b.slot]
        }
        return entries
    }
}
