public import Tessera

extension Qdrant {
    /// Qdrant's `VectorParams`: one vector field's size, distance, and optionally a multivector comparator and an
    /// HNSW `m` (`0`: no HNSW index, as Qdrant's guide sets for multivectors).
    public struct VectorParams: Codable, Sendable, Equatable {
        public var size: Int
        public var distance: Distance
        public var multivectorConfig: MultivectorConfig?
        public var hnswConfig: HNSWConfig?

        /// Creates vector parameters.
        public init(size: Int, distance: Distance, multivector: Bool, hnswM: Int?) {
            self.size = size
            self.distance = distance
            multivectorConfig = multivector ? MultivectorConfig() : nil
            hnswConfig = hnswM.map(HNSWConfig.init(m:))
        }

        enum CodingKeys: String, CodingKey {
            case size, distance
            case multivectorConfig = "multivector_config"
            case hnswConfig = "hnsw_config"
        }

        public init(from decoder: any Decoder) throws {
            let container = try decoder.container(keyedBy: CodingKeys.self)
            size = try container.decode(Int.self, forKey: .size)
            guard (1...65536).contains(size) else {
                throw invalid(container.codingPath + [CodingKeys.size], "size must be an integer in 1...65536")
            }
            let name = try container.decode(String.self, forKey: .distance)
            guard let distance = Distance(rawValue: name) else {
                throw invalid(
                    container.codingPath + [CodingKeys.distance],
                    "distance must be Cosine, Dot or Euclid (\(name) is not supported)"
                )
            }
            self.distance = distance
            multivectorConfig = try container.decodeIfPresent(MultivectorConfig.self, forKey: .multivectorConfig)
            hnswConfig = try container.decodeIfPresent(HNSWConfig.self, forKey: .hnswConfig)
            if multivectorConfig != nil, distance == .euclid {
                throw invalid(container.codingPath, "a multivector field supports Cosine and Dot only")
            }
        }

        public func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(size, forKey: .size)
            try container.encode(distance.rawValue, forKey: .distance)
            try container.encodeIfPresent(multivectorConfig, forKey: .multivectorConfig)
            try container.encodeIfPresent(hnswConfig, forKey: .hnswConfig)
        }
    }

    /// Qdrant's `MultivectorConfig`: the comparator is `max_sim` (the only one Tessera scores).
    public struct MultivectorConfig: Codable, Sendable, Equatable {
        public var comparator = "max_sim"

        /// The `max_sim` comparator.
        public init() {}

        public init(from decoder: any Decoder) throws {
            let container = try decoder.container(keyedBy: JSONKey.self)
            let comparator = try container.decode(String.self, forKey: JSONKey(stringValue: "comparator"))
            guard comparator == "max_sim" else {
                throw invalid(
                    decoder.codingPath + [JSONKey(stringValue: "comparator")],
                    "comparator must be max_sim (got \(comparator))"
                )
            }
        }
    }

    /// The part of Qdrant's `HnswConfigDiff` a vector field keeps: `m`.
    public struct HNSWConfig: Codable, Sendable, Equatable {
        public var m: Int?
    }

    /// A collection's `vectors`: Qdrant's single unnamed vector (`{"size": …}`) or vectors by name.
    public enum VectorsConfig: Codable, Sendable, Equatable {
        case unnamed(VectorParams)
        case named([String: VectorParams])

        public init(from decoder: any Decoder) throws {
            let container = try decoder.singleValueContainer()
            guard case .object(let object) = try container.decode(JSONValue.self) else {
                throw mismatch("a JSON object", try container.decode(JSONValue.self), decoder.codingPath)
            }
            if object["size"] != nil {
                self = .unnamed(try container.decode(VectorParams.self))
            } else {
                guard !object.isEmpty else { throw invalid(decoder.codingPath, "`vectors` names no vector") }
                self = .named(try container.decode([String: VectorParams].self))
            }
        }

        public func encode(to encoder: any Encoder) throws {
            var container = encoder.singleValueContainer()
            switch self {
            case .unnamed(let parameters): try container.encode(parameters)
            case .named(let fields): try container.encode(fields)
            }
        }
    }

    /// The body of `PUT /collections/{name}`: `vectors` and `optimizers_config` are read; other settings of
    /// Qdrant's `CreateCollection` (shards, replication, WAL, quantization) have no counterpart in a local
    /// collection and are accepted without effect. `sparse_vectors` creates sparse fields (their `modifier`; the
    /// index's storage settings are accepted without effect).
    public struct CreateCollection: Decodable, Sendable {
        public var vectors: VectorsConfig
        /// `sparse_vectors`: each sparse field's modifier.
        public var sparseVectors: [String: SparseModifier] = [:]
        /// `optimizers_config`, when given.
        public var optimizersConfig: OptimizersConfig?

        enum CodingKeys: String, CodingKey {
            case vectors
            case optimizersConfig = "optimizers_config"
        }

        public init(from decoder: any Decoder) throws {
            let container = try decoder.container(keyedBy: CodingKeys.self)
            let members = try decoder.container(keyedBy: JSONKey.self)
            let sparse = JSONKey(stringValue: "sparse_vectors")
            if members.contains(sparse), !(try members.decodeNil(forKey: sparse)) {
                guard case .object(let fields) = try members.decode(JSONValue.self, forKey: sparse) else {
                    throw invalid(decoder.codingPath + [sparse], "sparse_vectors must be an object of sparse fields")
                }
                for (name, parameters) in fields {
                    let path = decoder.codingPath + [sparse, JSONKey(stringValue: name)]
                    guard case .object(let settings) = parameters else {
                        throw invalid(path, "a sparse field's parameters must be an object")
                    }
                    for key in settings.keys.sorted() where key != "modifier" && key != "index" {
                        throw invalid(path + [JSONKey(stringValue: key)], "unknown sparse vector parameter '\(key)'")
                    }
                    var modifier = SparseModifier.none
                    switch settings["modifier"] {
                    case nil, .null?: break
                    case .string(let text)?:
                        guard let known = SparseModifier(rawValue: text) else {
                            throw invalid(
                                path + [JSONKey(stringValue: "modifier")],
                                "unknown modifier '\(text)' (expected none or idf)"
                            )
                        }
                        modifier = known
                    case let other?:
                        throw mismatch("a string", other, path + [JSONKey(stringValue: "modifier")])
                    }
                    // The index's storage settings (on_disk, full_scan_threshold, datatype) have no counterpart:
                    // every sealed segment's inverted index is built in memory at first use.
                    if case let index? = settings["index"], index != .null {
                        guard case .object(let options) = index else {
                            throw invalid(path + [JSONKey(stringValue: "index")], "index must be an object")
                        }
                        for key in options.keys.sorted()
                        where !["on_disk", "full_scan_threshold", "datatype"].contains(key) {
                            throw invalid(
                                path + [JSONKey(stringValue: "index"), JSONKey(stringValue: key)],
                                "unknown sparse index parameter '\(key)'"
                            )
                        }
                    }
                    sparseVectors[name] = modifier
                }
            }
            if container.contains(.vectors) {
                vectors = try container.decode(VectorsConfig.self, forKey: .vectors)
            } else if !sparseVectors.isEmpty {
                vectors = .named([:])
            } else {
                throw invalid(decoder.codingPath, "a collection needs `vectors` or `sparse_vectors`")
            }
            for name in sparseVectors.keys.sorted() {
                if case .named(let named) = vectors, named[name] != nil {
                    throw invalid(decoder.codingPath, "`\(name)` is both a dense and a sparse vector field")
                }
            }
            optimizersConfig = try container.decodeIfPresent(OptimizersConfig.self, forKey: .optimizersConfig)
        }
    }

    /// `PATCH /collections/{name}`: the parameters that may change after creation.
    public struct UpdateCollection: Decodable, Sendable {
        /// `optimizers_config`, when given.
        public var optimizersConfig: OptimizersConfig?

        public init(from decoder: any Decoder) throws {
            let container = try decoder.container(keyedBy: JSONKey.self)
            for key in container.allKeys where key.stringValue != "optimizers_config" {
                throw invalid(
                    container.codingPath + [key],
                    "`\(key.stringValue)` cannot be changed here (only optimizers_config can)"
                )
            }
            optimizersConfig = try container.decodeIfPresent(
                OptimizersConfig.self,
                forKey: JSONKey(stringValue: "optimizers_config")
            )
        }
    }

    /// Qdrant's `optimizers_config`: the keys given, over the collection's current settings. Keys the optimiser
    /// does not have (`memmap_threshold`: every sealed segment is memory-mapped; `max_optimization_threads`) are
    /// refused, naming them.
    public struct OptimizersConfig: Decodable, Sendable {
        /// The keys given, as JSON.
        public var given: JSONObject

        static let keys: Set<String> = [
            "deleted_threshold", "vacuum_min_vector_number", "default_segment_number", "max_segment_size",
            "indexing_threshold", "flush_interval_sec",
        ]

        public init(from decoder: any Decoder) throws {
            let container = try decoder.singleValueContainer()
            guard case .object(let object) = try container.decode(JSONValue.self) else {
                throw mismatch("a JSON object", try container.decode(JSONValue.self), decoder.codingPath)
            }
            for (key, _) in object where !Self.keys.contains(key) {
                throw invalid(
                    decoder.codingPath + [JSONKey(stringValue: key)],
                    "optimizers_config.\(key) is not supported (supported: \(Self.keys.sorted().joined(separator: ", ")))"
                )
            }
            given = object
        }

        /// `settings` with the given keys applied, checked.
        /// - Throws: ``TesseraError/Code/invalidArgument`` naming the key with a bad value.
        public func applied(to settings: OptimizerSettings) throws(TesseraError) -> OptimizerSettings {
            var merged: JSONObject = [:]
            if case .object(let current) = try? JSONValueEncoder().encode(settings) { merged = current }
            for (key, value) in given { merged[key] = value }
            let result = try JSONValueDecoder().decode(OptimizerSettings.self, from: .object(merged))
            try result.validate()
            return result
        }
    }

    /// One entry of `GET /collections`.
    public struct CollectionDescription: Encodable, Sendable {
        public var name: String
    }

    /// The `result` of `GET /collections`.
    public struct CollectionsResponse: Encodable, Sendable {
        public var collections: [CollectionDescription]

        /// The list of collection names.
        public init(names: [String]) { collections = names.map(CollectionDescription.init(name:)) }
    }

    /// The `result` of `GET /collections/{name}/exists`.
    public struct CollectionExistence: Encodable, Sendable {
        public var exists: Bool

        /// Creates the answer.
        public init(exists: Bool) { self.exists = exists }
    }

    /// The `result` of `GET /collections/{name}` (Qdrant's `CollectionInfo`): the collection's vectors and
    /// counts, with Qdrant's defaults for the settings a local collection does not have.
    public struct CollectionInfo: Encodable, Sendable {
        public var vectors: VectorsConfig
        /// The sparse fields and their modifiers.
        public var sparseVectors: [String: SparseModifier] = [:]
        public var pointsCount: Int
        /// Qdrant's `status`: `green` (nothing to do), `yellow` (the optimiser is working), `grey` (work pending,
        /// not started), `red` (the last optimisation failed).
        public var status = "green"
        /// The last optimisation's error, for `optimizer_status`.
        public var optimizerError: String?
        /// Sealed segments, plus one for the appendable tail.
        public var segmentsCount = 1
        /// Points searched through a derived index (an HNSW graph or a compressed index).
        public var indexedVectorsCount = 0
        /// The optimiser's settings.
        public var optimizerSettings = OptimizerSettings()
        /// The payload indexes, described in `payload_schema` as Qdrant does:
        /// `{"city": {"data_type": "keyword", "points": 120}}`.
        public var payloadIndexes: [PayloadIndexInfo]

        /// Creates the description.
        public init(vectors: VectorsConfig, pointsCount: Int, payloadIndexes: [PayloadIndexInfo] = []) {
            self.vectors = vectors
            self.pointsCount = pointsCount
            self.payloadIndexes = payloadIndexes
        }

        public func encode(to encoder: any Encoder) throws {
            let vectorsJSON = try JSONValueEncoder().encode(vectors)
            let count = JSONValue.integer(Int64(pointsCount))
            let optimizerJSON = try JSONValueEncoder().encode(optimizerSettings)
            let optimizerStatus: JSONValue = optimizerError.map { ["error": .string($0)] } ?? "ok"
            var payloadSchema: JSONObject = [:]
            for index in payloadIndexes {
                payloadSchema[index.field] = [
                    "data_type": .string(index.type.dataType), "points": .integer(Int64(index.pointCount)),
                ]
            }
            let info: JSONValue = [
                "status": .string(status), "optimizer_status": optimizerStatus,
                "indexed_vectors_count": .integer(Int64(indexedVectorsCount)), "points_count": count,
                "segments_count": .integer(Int64(segmentsCount)),
                "config": [
                    "params": [
                        "vectors": vectorsJSON,
                        "sparse_vectors": .object(
                            JSONObject(sparseVectors.mapValues { ["modifier": .string($0.rawValue)] as JSONValue })
                        ),
                        "shard_number": 1, "replication_factor": 1,
                        "write_consistency_factor": 1, "on_disk_payload": true,
                    ],
                    "hnsw_config": [
                        "m": 16, "ef_construct": 200, "full_scan_threshold": 10000, "max_indexing_threads": 0,
                        "on_disk": false,
                    ],
                    "optimizer_config": optimizerJSON,
                    "wal_config": ["wal_capacity_mb": 32, "wal_segments_ahead": 0],
                    "quantization_config": nil,
                ],
                "payload_schema": .object(payloadSchema),
            ]
            var container = encoder.singleValueContainer()
            try container.encode(info)
        }
    }
}
