import Foundation
import NIOHTTP1
import Tessera
import TesseraQdrant

extension ClusterRouter {
    /// A universal query over every shard: the points, merged.
    ///
    /// A fusion at the root is computed here over each prefetch merged across shards (its filter joined by the
    /// root's, as a node's filter reaches its prefetches); any other query goes to every shard for its best
    /// `offset + limit` and the lists merge by score (by distance for Euclid fields, by the ordering value for
    /// `order_by`, by id for no query). A query by a point id takes that point's vector from its shard first and
    /// leaves the point out, as one collection does.
    /// - Parameters:
    ///   - record: The collection.
    ///   - body: The query request.
    ///   - raw: The request's bytes, when `body` was parsed from them: the query's vectors are then forwarded as
    ///     the client wrote them, not written again (writing 10⁴ numbers is most of a hop's cost).
    /// - Returns: The points.
    /// - Throws: ``ClusterError`` for a bad request, or a shard without an answering replica.
    func query(
        _ record: CollectionRecord,
        _ body: JSONValue,
        raw: [UInt8]? = nil
    ) async throws(ClusterError)
        -> [JSONValue]
    {
        guard var object = body.objectValue else { throw ClusterError("Format error in JSON body: expected an object") }
        var rawQuery = raw.flatMap { RawMembers.value(of: "query", in: $0) }
        for field in ["shard_key", "lookup_from"] where object[field] != nil && object[field] != .null {
            throw ClusterError("\(field) is not supported on a sharded collection yet")
        }
        let limit = object["limit"]?.intValue ?? 10
        let offset = object["offset"]?.intValue ?? 0
        guard limit >= 0, offset >= 0 else { throw ClusterError("limit and offset must not be negative") }
        var root = object["query"] ?? .null
        if let fusion = Self.fusion(root) {
            return try await fused(record, object, fusion, limit: limit, offset: offset)
        }
        if let id = Self.exampleID(root) {
            root = try await vector(of: id, record, using: object["using"]?.stringValue)
            object["query"] = root
            rawQuery = nil
            object["filter"] = Self.excluding(id, from: object["filter"])
        } else if Self.mentionsIDs(root) {
            throw ClusterError(
                "recommend, discover and context queries by point id are not supported on a sharded collection "
                    + "yet (give the vectors)"
            )
        }
        _ = try await gatherIDFStatistics(record, &object)
        object["limit"] = .integer(Int64(limit + offset))
        object["offset"] = nil
        // A query over prefetches rescores their candidates: the prefetches are the collection's (each merged
        // across shards), and each shard rescores the candidates it holds.
        var bodies: [Int: [UInt8]] = [:]
        if let prefetch = object["prefetch"], prefetch != .null {
            let lists = try await prefetchLists(record, object)
            var candidates: [Int: [JSONValue]] = [:]
            var seen: Set<String> = []
            for point in lists.joined() {
                guard let id = point.objectValue?["id"], seen.insert(id.jsonText).inserted else { continue }
                candidates[shard(of: id, record), default: []].append(id)
            }
            object["prefetch"] = nil
            if Self.isVectorQuery(root) {
                var params = object["params"]?.objectValue ?? [:]
                params["exact"] = true
                object["params"] = .object(params)
            }
            for (shard, ids) in candidates {
                var part = object
                let only: JSONValue = ["has_id": .array(ids)]
                if let filter = object["filter"], filter != .null {
                    part["filter"] = ["must": [filter, only]]
                } else {
                    part["filter"] = ["must": [only]]
                }
                bodies[shard] = Self.shardBody(part, rawQuery: rawQuery)
            }
        } else {
            let request = Self.shardBody(object, rawQuery: rawQuery)
            for shard in 0..<record.shardNumber { bodies[shard] = request }
        }
        let requests = bodies
        let answers = try await withShards(record, only: requests.keys.sorted()) { shard throws(ClusterError) in
            try await readShard(record, shard, .POST, "/points/query", body: requests[shard] ?? [])
        }
        let points = answers.flatMap { $0.objectValue?["points"]?.arrayValue ?? [] }
        let order = Self.order(of: root, object, record)
        let merged = Self.merge(points, order)
        return Array(merged.dropFirst(offset).prefix(limit))
    }

    /// A shard's query body: the members as given, the `query` member spliced in as the client's bytes when
    /// they are at hand.
    static func shardBody(_ object: JSONObject, rawQuery: ArraySlice<UInt8>?) -> [UInt8] {
        guard let rawQuery else { return JSONValue.object(object).jsonBytes }
        var rest = object
        rest["query"] = nil
        var bytes = JSONValue.object(rest).jsonBytes
        guard bytes.first == UInt8(ascii: "{") else { return JSONValue.object(object).jsonBytes }
        var member = Array(#""query":"#.utf8)
        member += rawQuery
        if rest.count > 0 { member.append(UInt8(ascii: ",")) }
        bytes.insert(contentsOf: member, at: 1)
        return bytes
    }

    enum MergeOrder {
        case descending, ascending, byID
        case orderValue(ascending: Bool)
        case unordered
    }

    /// How a query's results rank, so that shard lists merge as one list would.
    static func order(of root: JSONValue, _ object: JSONObject, _ record: CollectionRecord) -> MergeOrder {
        switch root {
        case .null: return object["prefetch"] == nil || object["prefetch"] == .null ? .byID : .descending
        case .object(let query):
            if let orderBy = query["order_by"] {
                let direction = orderBy.objectValue?["direction"]?.stringValue ?? "asc"
                return .orderValue(ascending: direction != "desc")
            }
            if query["sample"] != nil { return .unordered }
            if ["recommend", "discover", "context", "formula"].contains(where: { query[$0] != nil }) {
                return .descending
            }
        default: break
        }
        let using = object["using"]?.stringValue ?? ""
        let vectors = record.configuration["vectors"]?.objectValue ?? [:]
        let field = vectors["size"] != nil ? vectors : (vectors[using.isEmpty ? "" : using]?.objectValue ?? [:])
        let distance = field["distance"]?.stringValue?.lowercased()
        return distance == "euclid" || distance == "manhattan" ? .ascending : .descending
    }

    /// The points of every shard as one ranked list (stable: ties keep shard order, then position).
    static func merge(_ points: [JSONValue], _ order: MergeOrder) -> [JSONValue] {
        func score(_ point: JSONValue) -> Double { point.objectValue?["score"]?.doubleValue ?? 0 }
        let indexed = Array(points.enumerated())
        let sorted: [(offset: Int, element: JSONValue)]
        switch order {
        case .unordered: return points
        case .descending:
            sorted = indexed.sorted { a, b in
                let (x, y) = (score(a.element), score(b.element))
                return x != y ? x > y : a.offset < b.offset
            }
        case .ascending:
            sorted = indexed.sorted { a, b in
                let (x, y) = (score(a.element), score(b.element))
                return x != y ? x < y : a.offset < b.offset
            }
        case .byID:
            sorted = indexed.sorted { a, b in
                let x = a.element.objectValue?["id"].flatMap(pointID)
                let y = b.element.objectValue?["id"].flatMap(pointID)
                guard let x, let y else { return a.offset < b.offset }
                return x != y ? x < y : a.offset < b.offset
            }
        case .orderValue(let ascending):
            sorted = indexed.sorted { a, b in
                let x = orderValue(a.element)
                let y = orderValue(b.element)
                if x != y { return ascending ? x < y : x > y }
                return a.offset < b.offset
            }
        }
        return sorted.map(\.element)
    }

    /// An `order_value` as a number (a datetime's text compares as text would, which for RFC 3339 in one zone
    /// is its order).
    static func orderValue(_ point: JSONValue) -> Double {
        point.objectValue?["order_value"]?.doubleValue ?? 0
    }

    // MARK: Fusion

    enum FusionMethod {
        case rrf(k: Int, weights: [Float]?)
        case dbsf(weights: [Float]?)
    }

    static func fusion(_ root: JSONValue) -> FusionMethod? {
        guard let query = root.objectValue else { return nil }
        if let name = query["fusion"]?.stringValue {
            switch name {
            case "rrf": return .rrf(k: Fusion.defaultRankConstant, weights: nil)
            case "dbsf": return .dbsf(weights: nil)
            default: return nil
            }
        }
        if let rrf = query["rrf"]?.objectValue {
            let weights = rrf["weights"]?.arrayValue?.compactMap { $0.doubleValue.map(Float.init) }
            return .rrf(k: rrf["k"]?.intValue ?? Fusion.defaultRankConstant, weights: weights)
        }
        return nil
    }

    private func fused(
        _ record: CollectionRecord,
        _ object: JSONObject,
        _ method: FusionMethod,
        limit: Int,
        offset: Int
    ) async throws(ClusterError) -> [JSONValue] {
        let lists = try await prefetchLists(record, object)
        var first: [PointID: JSONValue] = [:]
        let scored: [[ScoredPoint]] = lists.map { list in
            list.compactMap { point in
                guard let id = point.objectValue?["id"].flatMap(Self.pointID) else { return nil }
                if first[id] == nil { first[id] = point }
                return ScoredPoint(id: id, score: Float(point.objectValue?["score"]?.doubleValue ?? 0))
            }
        }
        let ranked: [ScoredPoint]
        do {
            switch method {
            case .rrf(let k, let weights): ranked = try Fusion.reciprocalRank(scored, rankConstant: k, weights: weights)
            case .dbsf(let weights): ranked = try Fusion.distributionBased(scored, weights: weights)
            }
        } catch {
            throw ClusterError(error.message)
        }
        let threshold = object["score_threshold"]?.doubleValue
        let points: [JSONValue] = ranked.compactMap { point in
            if let threshold, Double(point.score) < threshold { return nil }
            guard var json = first[point.id]?.objectValue else { return nil }
            json["score"] = .double(Double(point.score))
            return .object(json)
        }
        return Array(points.dropFirst(offset).prefix(limit))
    }

    /// Each prefetch of a query node, run over the whole collection (its filter joined by the node's).
    private func prefetchLists(
        _ record: CollectionRecord,
        _ object: JSONObject
    ) async throws(ClusterError)
        -> [[JSONValue]]
    {
        let prefetches: [JSONValue]
        switch object["prefetch"] {
        case .array(let list)?: prefetches = list
        case .object(let one)?: prefetches = [.object(one)]
        default: throw ClusterError("a fusion query needs prefetches to fuse")
        }
        var lists: [[JSONValue]] = []
        for prefetch in prefetches {
            guard var sub = prefetch.objectValue else {
                throw ClusterError("Format error in JSON body: a prefetch is an object")
            }
            if let filter = object["filter"], filter != .null {
                let own = sub["filter"] ?? .null
                sub["filter"] = own == .null || own == filter ? filter : ["must": [filter, own]]
            }
            sub["with_payload"] = object["with_payload"] ?? false
            sub["with_vector"] = object["with_vector"] ?? false
            sub["limit"] = sub["limit"] ?? 10
            lists.append(try await query(record, .object(sub)))
        }
        return lists
    }

    /// Whether a query node scores by similarity to a vector (a vector, multivector, sparse vector, document).
    static func isVectorQuery(_ root: JSONValue) -> Bool {
        switch root {
        case .array: return true
        case .object(let query):
            if query["nearest"] != nil && query["mmr"] == nil { return true }
            return query["indices"] != nil || query["text"] != nil
        default: return false
        }
    }

    // MARK: Collection-wide statistics

    /// For a sparse query of a field with the `idf` modifier (N and n), or a text query over a payload text index
    /// with scoring (N, the total length and n): every shard's counts (over the node's corpus), summed and written
    /// into the node's `params.idf` as `statistics`, so that each shard weights the query as the whole collection
    /// does (a pre-pass before scoring, as Elasticsearch's DFS). Returns whether it did.
    private func gatherIDFStatistics(
        _ record: CollectionRecord,
        _ object: inout JSONObject
    ) async throws(ClusterError)
        -> Bool
    {
        let using = object["using"]?.stringValue ?? ""
        guard let root = object["query"], Self.fusion(root) == nil else { return false }
        let sparse = record.configuration["sparse_vectors"]?.objectValue?[using]?.objectValue
        let vectors = record.configuration["vectors"]?.objectValue ?? [:]
        let isVectorField = vectors["size"] != nil ? using.isEmpty : vectors[using] != nil
        let sparseIDF = sparse?["modifier"]?.stringValue?.lowercased() == "idf"
        // A text query whose `using` is a payload key (neither a vector field nor the `bm25` index).
        let textIndex =
            root.objectValue?["text"] != nil && !using.isEmpty && using != "bm25" && sparse == nil
            && !isVectorField
        guard sparseIDF || textIndex else { return false }
        var probe: JSONObject = ["query": root, "using": .string(using)]
        if let idf = object["params"]?.objectValue?["idf"] { probe["params"] = ["idf": idf] }
        let request = JSONValue.object(probe).jsonBytes
        let answers = try await withShards(record) { shard throws(ClusterError) in
            try await readShard(record, shard, .POST, "/points/query/idf", body: request)
        }
        let statistics: JSONValue
        if textIndex {
            var parts: [TextCorpusStatistics] = []
            for answer in answers {
                guard let part = TextCorpusStatistics(json: answer) else { return false }
                parts.append(part)
            }
            statistics = TextCorpusStatistics.sum(parts).json
        } else {
            var parts: [CorpusStatistics] = []
            for answer in answers {
                guard let part = CorpusStatistics(json: answer) else { return false }
                parts.append(part)
            }
            statistics = CorpusStatistics.sum(parts).json
        }
        var params = object["params"]?.objectValue ?? [:]
        params["idf"] = ["statistics": statistics]
        object["params"] = .object(params)
        return true
    }

    /// Runs `body` for every shard (or those in `only`) at once; the answers in shard order, or the first
    /// shard's error.
    func withShards(
        _ record: CollectionRecord,
        only: [Int]? = nil,
        _ body: @escaping @Sendable (Int) async throws(ClusterError) -> JSONValue
    ) async throws(ClusterError) -> [JSONValue] {
        let shards = only ?? Array(0..<record.shardNumber)
        let outcomes = await withTaskGroup(of: (Int, Result<JSONValue, ClusterError>).self) { group in
            for shard in shards {
                group.addTask {
                    do throws(ClusterError) {
                        return (shard, .success(try await body(shard)))
                    } catch {
                        return (shard, .failure(error))
                    }
                }
            }
            var outcomes: [(Int, Result<JSONValue, ClusterError>)] = []
            for await outcome in group { outcomes.append(outcome) }
            return outcomes.sorted { $0.0 < $1.0 }
        }
        var answers: [JSONValue] = []
        for (_, outcome) in outcomes {
            switch outcome {
            case .success(let answer): answers.append(answer)
            case .failure(let error): throw error
            }
        }
        return answers
    }

    // MARK: Queries by point id

    /// The id a nearest-neighbour query names (`"query": 42` or `{"nearest": 42}`).
    static func exampleID(_ root: JSONValue) -> JSONValue? {
        switch root {
        case .integer, .unsigned: return root
        case .string(let text) where UUID(uuidString: text) != nil: return root
        case .object(let query):
            if let nearest = query["nearest"], query.count == 1 { return exampleID(nearest) }
            return nil
        default: return nil
        }
    }

    /// Whether a query's examples name points by id somewhere.
    static func mentionsIDs(_ root: JSONValue) -> Bool {
        guard let query = root.objectValue else { return false }
        func hasID(_ value: JSONValue) -> Bool {
            switch value {
            case .integer, .unsigned: return true
            case .string(let text): return UUID(uuidString: text) != nil
            case .array(let values):
                return values.contains { if case .array = $0 { return false } else { return hasID($0) } }
            case .object(let object): return object.values.contains(where: hasID)
            default: return false
            }
        }
        for key in ["recommend", "discover", "context"] {
            if let part = query[key], hasID(part) { return true }
        }
        return false
    }

    /// A point's vector of a field, read from the point's shard.
    private func vector(
        of id: JSONValue,
        _ record: CollectionRecord,
        using: String?
    ) async throws(ClusterError)
        -> JSONValue
    {
        let request: JSONValue = ["ids": [id], "with_vector": true, "with_payload": false]
        let points = try await readShard(record, shard(of: id, record), .POST, "/points", body: request.jsonBytes)
        guard let point = points.arrayValue?.first?.objectValue, let vector = point["vector"] else {
            throw ClusterError("Not found: No point with id \(id.jsonText) found", status: 404)
        }
        if let named = vector.objectValue, named["indices"] == nil {
            let name = using ?? ""
            guard let field = named[name.isEmpty ? "" : name] ?? (name.isEmpty ? named.first?.value : nil) else {
                throw ClusterError("point \(id.jsonText) has no vector '\(name)'", status: 400)
            }
            return field
        }
        return vector
    }

    /// A filter that also leaves out one point.
    static func excluding(_ id: JSONValue, from filter: JSONValue?) -> JSONValue {
        let out: JSONValue = ["has_id": [id]]
        guard let filter, filter != .null else { return ["must_not": [out]] }
        return ["must": [filter], "must_not": [out]]
    }
}
