public import Tessera

extension CorpusStatistics {
    /// The counts as `POST …/points/query/idf` answers them and `params.idf.statistics` takes them:
    /// `{"points": N, "frequencies": [[index, n], …]}`.
    public var json: JSONValue {
        [
            "points": .integer(Int64(points)),
            "frequencies": .array(
                frequencies.sorted { $0.key < $1.key }.map { [.integer(Int64($0.key)), .integer(Int64($0.value))] }
            ),
        ]
    }

    /// Reads ``json``'s form; `nil` when it is not that.
    public init?(json: JSONValue) {
        guard case .object(let fields) = json, case .integer(let points)? = fields["points"] else { return nil }
        var frequencies: [UInt32: Int] = [:]
        if case .array(let pairs)? = fields["frequencies"] {
            for pair in pairs {
                guard case .array(let entry) = pair, entry.count == 2, case .integer(let index) = entry[0],
                    let key = UInt32(exactly: index), case .integer(let count) = entry[1]
                else { return nil }
                frequencies[key] = Int(count)
            }
        }
        self.init(points: Int(points), frequencies: frequencies)
    }
}

extension TextCorpusStatistics {
    /// The counts as `POST …/points/query/idf` answers them and `params.idf.statistics` takes them:
    /// `{"points": N, "total_length": L, "terms": [[word, n], …]}`.
    public var json: JSONValue {
        [
            "points": .integer(Int64(points)), "total_length": .double(totalLength),
            "terms": .array(
                frequencies.sorted { $0.key < $1.key }.map { [.string($0.key), .integer(Int64($0.value))] }
            ),
        ]
    }

    /// Reads ``json``'s form; `nil` when it is not that.
    public init?(json: JSONValue) {
        guard case .object(let fields) = json, case .integer(let points)? = fields["points"],
            case .array(let pairs)? = fields["terms"]
        else { return nil }
        let totalLength: Double
        switch fields["total_length"] {
        case .double(let value)?: totalLength = value
        case .integer(let value)?: totalLength = Double(value)
        default: return nil
        }
        var frequencies: [String: Int] = [:]
        for pair in pairs {
            guard case .array(let entry) = pair, entry.count == 2, case .string(let word) = entry[0],
                case .integer(let count) = entry[1]
            else { return nil }
            frequencies[word] = Int(count)
        }
        self.init(points: Int(points), totalLength: totalLength, frequencies: frequencies)
    }
}
