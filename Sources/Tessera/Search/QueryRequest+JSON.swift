import MaxSim
import TesseraIndex

extension QueryRequest {
    /// Decodes the body of Qdrant's `POST /collections/{name}/points/query`: the one JSON form of a query that
    /// `tessera search --pipeline` and the server both accept.
    ///
    /// Fields: `query`, `using`, `prefetch` (an object or a list, nested), `filter`, `limit` (default 10, also in
    /// each prefetch), `offset`, `score_threshold`, `params`, `with_payload` (a bool or a list of keys; none by default, as in Qdrant),
    /// `with_vector` (a bool or a list of fields), and Tessera's `explain` (matched tokens). A `query` is a dense
    /// vector (`[0.1, …]`), a multivector (`[[…], …]`), a point id (an integer or a UUID string),
    /// `{"nearest": …}` of one of those, `{"fusion": "rrf" | "dbsf"}`, `{"rrf": {"k": …, "weights": […]}}`, or
    /// text (`{"text": "…"}`: BM25 when `using` is absent or `"bm25"`, else encoded for that vector field).
    /// `params` takes Qdrant's `hnsw_ef` and `exact`, and Tessera's `nprobe`, `candidates`, `imputation_rank`,
    /// `probe_dimension` (compressed index), `k1`, `b` and `text_fields` (BM25).
    /// - Parameter json: The request body.
    /// - Throws: ``TesseraError/Code/invalidArgument`` naming the offending field (`prefetch[1].query`, …).
    public init(json: JSONValue) throws(TesseraError) {
        guard case .object(let object) = json else {
            throw TesseraError(.invalidArgument, "a query request is a JSON object", location: .init(field: "body"))
        }
        let root = try QueryJSON.node(object, path: "", isRoot: true)
        let offset = try QueryJSON.integer(object["offset"], path: "offset") ?? 0
        // Qdrant returns no payload unless asked.
        var withPayload = false
        var payloadKeys: [String]?
        switch object["with_payload"] {
        case nil, .null: break
        case .bool(let value)?: withPayload = value
        case .array(let keys)?:
            withPayload = true
            payloadKeys = try keys.enumerated().map { index, key throws(TesseraError) in
                guard case .string(let name) = key else {
                    throw TesseraError(
                        .invalidArgument,
                        "with_payload lists payload keys as strings",
                        location: .init(field: "with_payload[\(index)]")
                    )
                }
                return name
            }
        case .object(let selector)?:
            withPayload = true
            if case .array(let keys)? = selector["include"] {
                payloadKeys = keys.compactMap { if case .string(let name) = $0 { name } else { nil } }
            }
        default:
            throw TesseraError(
                .invalidArgument,
                "with_payload is a bool or a list of keys",
                location: .init(field: "with_payload")
            )
        }
        var withVectors = QueryJSON.VectorSelection.none
        switch object["with_vector"] ?? object["with_vectors"] {
        case nil, .null, .bool(false)?: break
        case .bool(true)?: withVectors = .all
        case .array(let names)?:
            withVectors = .named(
                try names.enumerated().map { index, name throws(TesseraError) in
                    guard case .string(let text) = name else {
                        throw TesseraError(
                            .invalidArgument,
                            "with_vector lists vector field names as strings",
                            location: .init(field: "with_vector[\(index)]")
                        )
                    }
                    return text
                }
            )
        default:
            throw TesseraError(
                .invalidArgument,
                "with_vector is a bool or a list of vector field names",
                location: .init(field: "with_vector")
            )
        }
        let explain = try QueryJSON.bool(object["explain"], path: "explain") ?? false
        self.init(root: root, offset: offset, withPayload: withPayload, withVectors: [], withMatches: explain)
        self.payloadKeys = payloadKeys
        switch withVectors {
        case .none: break
        case .all: self.withAllVectors = true
        case .named(let names): self.withVectors = names
        }
    }

    /// Decodes a query request from JSON text.
    /// - Throws: ``TesseraError/Code/invalidArgument`` for bad JSON or a bad field.
    public init(json text: String) throws(TesseraError) {
        try self.init(json: JSONValue.parse(text))
    }
}

/// Parsing helpers for the query JSON.
enum QueryJSON {
    /// Which vector fields a JSON request asked for.
    enum VectorSelection: Sendable, Equatable {
        case none
        case all
        case named([String])
    }

    static let nodeKeys: Set<String> = [
        "query", "using", "prefetch", "filter", "limit", "score_threshold", "params", "lookup_from",
    ]
    static let rootKeys: Set<String> = [
        "offset", "with_payload", "with_vector", "with_vectors", "explain", "shard_key", "timeout", "consistency",
    ]

    static func node(_ object: JSONObject, path: String, isRoot: Bool) throws(TesseraError) -> QueryNode {
        let prefix = path.isEmpty ? "" : path + "."
        for key in object.keys.sorted() where !nodeKeys.contains(key) && !(isRoot && rootKeys.contains(key)) {
            throw TesseraError(
                .invalidArgument,
                "unknown field '\(key)' in a query\(isRoot ? "" : " prefetch")",
                location: .init(field: prefix + key)
            )
        }
        if let lookup = object["lookup_from"], lookup != .null {
            throw TesseraError(
                .invalidArgument,
                "lookup_from (vectors from another collection) is not supported",
                location: .init(field: prefix + "lookup_from")
            )
        }
        var node = QueryNode(query: nil)
        node.limit = try integer(object["limit"], path: prefix + "limit") ?? 10
        if let using = object["using"], using != .null {
            guard case .string(let name) = using else {
                throw TesseraError(
                    .invalidArgument,
                    "using names a vector field",
                    location: .init(field: prefix + "using")
                )
            }
            node.using = name
        }
        if let filter = object["filter"], filter != .null {
            node.filter = try FilterParser.filter(filter, path: prefix + "filter")
        }
        if let threshold = object["score_threshold"], threshold != .null {
            node.scoreThreshold = Float(try number(threshold, path: prefix + "score_threshold"))
        }
        if let params = object["params"], params != .null {
            node.parameters = try parameters(params, path: prefix + "params")
        }
        switch object["prefetch"] {
        case nil, .null?: break
        case .object(let child)?:
            node.prefetch = [try Self.node(child, path: prefix + "prefetch", isRoot: false)]
        case .array(let children)?:
            node.prefetch = try children.enumerated().map { index, child throws(TesseraError) in
                guard case .object(let childObject) = child else {
                    throw TesseraError(
                        .invalidArgument,
                        "a prefetch is a JSON object",
                        location: .init(field: prefix + "prefetch[\(index)]")
                    )
                }
                return try Self.node(childObject, path: prefix + "prefetch[\(index)]", isRoot: false)
            }
        default:
            throw TesseraError(
                .invalidArgument,
                "prefetch is an object or a list of objects",
                location: .init(field: prefix + "prefetch")
            )
        }
        if let query = object["query"], query != .null {
            node.query = try input(query, path: prefix + "query")
        }
        return node
    }

    static func input(_ value: JSONValue, path: String) throws(TesseraError) -> QueryInput {
        switch value {
        case .integer(let number):
            guard number >= 0 else {
                throw TesseraError(
                    .invalidArgument,
                    "a point id is a non-negative integer or a UUID",
                    location: .init(field: path)
                )
            }
            return .point(.integer(UInt64(number)))
        case .string(let text):
            return .point(try PointID(parsing: text))
        case .array(let items):
            if items.isEmpty {
                throw TesseraError(.invalidArgument, "the query vector is empty", location: .init(field: path))
            }
            if case .array = items[0] {
                var rows: [[Float]] = []
                for (index, item) in items.enumerated() {
                    guard case .array(let row) = item else {
                        throw TesseraError(
                            .invalidArgument,
                            "a multivector is a list of vectors",
                            location: .init(field: "\(path)[\(index)]")
                        )
                    }
                    rows.append(try floats(row, path: "\(path)[\(index)]"))
                }
                let dimension = rows[0].count
                guard dimension > 0, rows.allSatisfy({ $0.count == dimension }) else {
                    throw TesseraError(
                        .dimensionMismatch,
                        "the query's token vectors must all have the same, non-zero length",
                        location: .init(field: path)
                    )
                }
                do {
                    return .multivector(try Multivector(rows.flatMap { $0 }, dimension: dimension))
                } catch {
                    throw TesseraError(.invalidArgument, "bad multivector: \(error)", location: .init(field: path))
                }
            }
            return .dense(try floats(items, path: path))
        case .object(let object):
            if let nearest = object["nearest"] { return try input(nearest, path: path + ".nearest") }
            if let fusion = object["fusion"] {
                switch fusion {
                case .string("rrf"): return .fusion(.rrf())
                case .string("dbsf"): return .fusion(.dbsf())
                default:
                    throw TesseraError(
                        .invalidArgument,
                        "fusion is \"rrf\" or \"dbsf\"",
                        location: .init(field: path + ".fusion")
                    )
                }
            }
            if let rrf = object["rrf"] {
                guard case .object(let settings) = rrf else {
                    throw TesseraError(.invalidArgument, "rrf takes an object", location: .init(field: path + ".rrf"))
                }
                let k = try integer(settings["k"], path: path + ".rrf.k") ?? Fusion.defaultRankConstant
                var weights: [Float]?
                if case .array(let values)? = settings["weights"] {
                    weights = try floats(values, path: path + ".rrf.weights")
                }
                return .fusion(.rrf(k: k, weights: weights))
            }
            if let dbsf = object["dbsf"] {
                var weights: [Float]?
                if case .object(let settings) = dbsf, case .array(let values)? = settings["weights"] {
                    weights = try floats(values, path: path + ".dbsf.weights")
                }
                return .fusion(.dbsf(weights: weights))
            }
            if case .string(let text)? = object["text"] { return .text(text) }
            let name = object.keys.sorted().first ?? "{}"
            throw TesseraError(
                .invalidArgument,
                "query '\(name)' is not supported (supported: a vector, a multivector, a point id, nearest, fusion, "
                    + "rrf, dbsf, text)",
                location: .init(field: path + "." + name)
            )
        default:
            throw TesseraError(
                .invalidArgument,
                "a query is a vector, a multivector, a point id or an object",
                location: .init(field: path)
            )
        }
    }

    static func parameters(_ value: JSONValue, path: String) throws(TesseraError) -> QueryParameters {
        guard case .object(let object) = value else {
            throw TesseraError(.invalidArgument, "params is an object", location: .init(field: path))
        }
        var parameters = QueryParameters()
        parameters.exact = try bool(object["exact"], path: path + ".exact") ?? false
        parameters.hnswEf = try positiveInteger(object["hnsw_ef"], path: path + ".hnsw_ef")
        let probes = try positiveInteger(object["nprobe"], path: path + ".nprobe")
        let candidates = try positiveInteger(object["candidates"], path: path + ".candidates")
        let imputation = try positiveInteger(object["imputation_rank"], path: path + ".imputation_rank")
        let probeDimension = try positiveInteger(object["probe_dimension"], path: path + ".probe_dimension")
        if probes != nil || candidates != nil || imputation != nil || probeDimension != nil {
            var settings = CompressedSearchParameters.defaults(limit: candidates ?? 10)
            if let probes { settings.probeCount = probes }
            settings.imputationRank = imputation
            settings.probeDimension = probeDimension
            parameters.compressed = settings
        }
        if let k1 = object["k1"] { parameters.bm25.k1 = Float(try number(k1, path: path + ".k1")) }
        if let b = object["b"] { parameters.bm25.b = Float(try number(b, path: path + ".b")) }
        if case .array(let names)? = object["text_fields"] {
            parameters.textFields = names.compactMap { if case .string(let name) = $0 { name } else { nil } }
        }
        return parameters
    }

    static func integer(_ value: JSONValue?, path: String) throws(TesseraError) -> Int? {
        switch value {
        case nil, .null?: return nil
        case .integer(let number)?: return Int(number)
        // Beyond Int.max: as large as it gets (limits are capped by the collection's size anyway).
        case .unsigned?: return Int.max
        case .double(let number)? where number == number.rounded() && abs(number) < 1e15: return Int(number)
        default: throw TesseraError(.invalidArgument, "\(path) is an integer", location: .init(field: path))
        }
    }

    static func positiveInteger(_ value: JSONValue?, path: String) throws(TesseraError) -> Int? {
        guard let number = try integer(value, path: path) else { return nil }
        guard number >= 1 else {
            throw TesseraError(
                .invalidArgument,
                "\(path) must be at least 1 (got \(number))",
                location: .init(field: path)
            )
        }
        return number
    }

    static func bool(_ value: JSONValue?, path: String) throws(TesseraError) -> Bool? {
        switch value {
        case nil, .null?: return nil
        case .bool(let flag)?: return flag
        default: throw TesseraError(.invalidArgument, "\(path) is true or false", location: .init(field: path))
        }
    }

    static func number(_ value: JSONValue, path: String) throws(TesseraError) -> Double {
        switch value {
        case .integer(let number): return Double(number)
        case .unsigned(let number): return Double(number)
        case .double(let number): return number
        default: throw TesseraError(.invalidArgument, "\(path) is a number", location: .init(field: path))
        }
    }

    static func floats(_ values: [JSONValue], path: String) throws(TesseraError) -> [Float] {
        var result: [Float] = []
        result.reserveCapacity(values.count)
        for (index, value) in values.enumerated() {
            result.append(Float(try number(value, path: "\(path)[\(index)]")))
        }
        return result
    }
}
