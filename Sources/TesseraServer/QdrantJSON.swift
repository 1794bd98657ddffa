import HTTPTypes
import MaxSim
import Tessera
import TesseraQdrant

/// Qdrant's vectors against a collection's vector parameters: checks and conversions that need to know the
/// collection (its fields' sizes and kinds), which the wire types alone cannot do.
enum QdrantJSON {
    /// Qdrant's refusal of a vector of the wrong length.
    static func checkDimension(_ dimension: Int, _ parameters: VectorParameters) throws(APIError) {
        guard dimension == parameters.size else {
            throw APIError(
                .badRequest,
                "Wrong input: Vector dimension error: expected dim: \(parameters.size), got \(dimension)"
            )
        }
    }

    /// Checks the vector names and the dimensions of a query tree's vectors as Qdrant does, with its messages,
    /// before the pipeline runs (which checks everything else). A text query's `using` may name Tessera's text search
    /// (`bm25`) or a payload key with a text index.
    static func validate(_ node: QueryNode, parameters: [String: VectorParameters]) throws(APIError) {
        var field: VectorParameters?
        if let using = node.using {
            field = parameters[using]
            var isText = false
            // A text query may name Tessera's `bm25` or a payload key with a text index (which the pipeline checks).
            if case .text? = node.query { isText = true }
            guard field != nil || isText else {
                throw APIError(.badRequest, "Wrong input: Not existing vector name error: \(using)")
            }
        } else if parameters.count == 1 {
            field = parameters.first?.value
        }
        if let field, field.sparse == nil {
            switch node.query {
            case .dense(let values)?: try checkDimension(values.count, field)
            case .multivector(let query)?: try checkDimension(query.dimension, field)
            default: break
            }
        }
        for child in node.prefetch { try validate(child, parameters: parameters) }
    }

    static func normalize(_ values: inout [Float]) {
        var sum: Float = 0
        for value in values { sum += value * value }
        guard sum > 0 else { return }
        let scale = 1 / sum.squareRoot()
        for index in values.indices { values[index] *= scale }
    }

    /// A point's vectors: a map by field name, or the bare vector of a collection with one unnamed vector.
    static func json(_ vectors: [String: VectorValue], parameters: [String: VectorParameters]) -> JSONValue {
        if parameters.count == 1, let (name, field) = parameters.first, field.unnamed {
            return vectors[name].map { json($0, dimension: field.size) } ?? .null
        }
        // A field the point has no vector in is not among `vectors`; an empty sparse vector is one.
        return .object(JSONObject(vectors.mapValues { json($0, dimension: 0) }))
    }

    static func json(_ vector: VectorValue, dimension: Int) -> JSONValue {
        switch vector {
        case .dense(let values): return .array(values.map { .double(Double($0)) })
        case .multivector(let rows): return .array(rows.map { .array($0.map { .double(Double($0)) }) })
        case .sparse(let vector):
            return [
                "indices": .array(vector.indices.map { .integer(Int64($0)) }),
                "values": .array(vector.values.map { .double(Double($0)) }),
            ]
        case .flat(let values, let tokenCount):
            let width = tokenCount > 0 ? values.count / tokenCount : dimension
            return .array(
                (0..<tokenCount).map { row in
                    .array(values[(row * width)..<((row + 1) * width)].map { .double(Double($0)) })
                }
            )
        }
    }
}

/// Turns an upsert's wire points into the library's points for one collection: vector names and kinds checked
/// against its fields, dimensions checked with Qdrant's message, documents given as text encoded with the
/// server's model for that field.
struct PointConverter {
    let collection: String
    let parameters: [String: VectorParameters]
    let store: CollectionStore
    let encoder: (any DocumentTextEncoder)?

    func points(_ body: Qdrant.UpsertPoints) throws -> [Point] {
        switch body {
        case .points(let points):
            return try points.enumerated().map { index, point in
                Point(
                    id: point.id,
                    payload: point.payload ?? [:],
                    vectors: try vectors(point.vector, path: "points[\(index)].vector")
                )
            }
        case .batch(let batch):
            let ids = batch.ids
            var columns: [String: [Qdrant.VectorInput]] = [:]
            switch batch.vectors {
            case .named(let named):
                for (field, rows) in named {
                    guard rows.count == ids.count else {
                        throw APIError(
                            .badRequest,
                            "Wrong input: batch.vectors.\(field) must hold one vector per id (\(ids.count))"
                        )
                    }
                    columns[field] = rows
                }
            case .list(let rows) where parameters.count == 1 && rows.count == ids.count:
                columns[parameters.keys.first!] = rows
            case .list:
                throw APIError(.badRequest, "Wrong input: batch.vectors must hold one vector per id (\(ids.count))")
            }
            let payloads = batch.payloads ?? []
            return try ids.enumerated().map { index, id in
                Point(
                    id: id,
                    payload: (index < payloads.count ? payloads[index] : nil) ?? [:],
                    vectors: try vectors(.named(columns.mapValues { $0[index] }), path: "batch.vectors[\(index)]")
                )
            }
        }
    }

    /// The vectors of one point: a map by field name, or one vector for a collection with one field.
    func vectors(_ input: Qdrant.VectorInput, path: String) throws -> [String: VectorValue] {
        if case .named(let named) = input {
            var result: [String: VectorValue] = [:]
            for (field, vector) in named {
                guard let fieldParameters = parameters[field] else {
                    throw APIError(
                        .badRequest,
                        "Wrong input: Not existing vector name error: \(field) (collection `\(collection)` has "
                            + parameters.keys.sorted().joined(separator: ", ") + ")"
                    )
                }
                result[field] = try value(vector, field: field, parameters: fieldParameters, path: "\(path).\(field)")
            }
            return result
        }
        guard parameters.count == 1, let (field, fieldParameters) = parameters.first else {
            throw APIError(.badRequest, "Wrong input: the collection has named vectors; \(path) must name them")
        }
        return [field: try value(input, field: field, parameters: fieldParameters, path: path)]
    }

    /// One field's vector: a dense list or a multivector (list of lists), as the field is. The collection scales
    /// cosine fields' vectors itself.
    func value(
        _ input: Qdrant.VectorInput,
        field: String,
        parameters: VectorParameters,
        path: String
    ) throws -> VectorValue {
        if let modifier = parameters.sparse {
            _ = modifier
            guard case .sparse(let indices, let values) = input else {
                throw APIError(
                    .badRequest,
                    "Wrong input: vector '\(field)' is a sparse field; \(path) must be {\"indices\": […], \"values\": […]}"
                )
            }
            do {
                return .sparse(try SparseVector(indices: indices, values: values))
            } catch {
                throw APIError(.badRequest, "Wrong input: \(path): \(error.message)")
            }
        }
        switch input {
        case .sparse:
            throw APIError(
                .badRequest,
                "Wrong input: vector '\(field)' is not a sparse field; \(path) gives a sparse vector"
            )
        case .document(let text):
            return try encodeDocument(text, field: field)
        case .multivector(var rows) where parameters.multivector:
            for index in rows.indices {
                try QdrantJSON.checkDimension(rows[index].count, parameters)
                if parameters.legacyTokenNormalization { QdrantJSON.normalize(&rows[index]) }
            }
            return .multivector(rows)
        case .dense(let values) where !parameters.multivector:
            try QdrantJSON.checkDimension(values.count, parameters)
            return .dense(values)
        case _ where parameters.multivector:
            throw APIError(
                .badRequest,
                "Wrong input: vector '\(field)' is a multivector field; \(path) must be a list of vectors"
            )
        default:
            throw APIError(.badRequest, "Format error in JSON body: \(path) must be a list of numbers")
        }
    }

    /// A vector for a document given as text (Tessera's extension `{"text": …}`), from the server's encoder.
    func encodeDocument(_ text: String, field: String) throws -> VectorValue {
        guard let encoder else {
            throw APIError(
                .badRequest,
                "Wrong input: vector '\(field)' is given as text, but the server has no model (start it with --model)"
            )
        }
        // The stored field, with the encoder identity the collection recorded: the catalog encodes with that
        // model and profile, or refuses.
        guard let description = store.configuration.field(named: field) else {
            throw APIError(.badRequest, "Wrong input: Not existing vector name error: \(field)")
        }
        do {
            return try encoder.encodeDocument(text, for: description)
        } catch let error as TesseraError {
            throw APIError(from: error)
        } catch {
            throw APIError(.badRequest, "Wrong input: encoding the text of vector '\(field)' failed: \(error)")
        }
    }
}
