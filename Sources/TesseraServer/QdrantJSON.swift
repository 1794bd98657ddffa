import Foundation
import HTTPTypes
import MaxSim
import Tessera

/// Reading and writing Qdrant's JSON shapes.
enum QdrantJSON {
    static func object(_ value: JSONValue?, _ what: String) throws(APIError) -> JSONObject {
        guard case .object(let object)? = value else {
            throw APIError(.badRequest, "Format error in JSON body: \(what) must be a JSON object")
        }
        return object
    }

    static func pointID(_ value: JSONValue, _ path: String) throws(APIError) -> PointID {
        do {
            return try PointID(json: value, field: path)
        } catch {
            throw APIError(.badRequest, "Format error in JSON body: \(path): \(error.message)")
        }
    }

    static func pointIDs(_ value: JSONValue?, _ path: String) throws(APIError) -> [PointID] {
        guard case .array(let items)? = value else {
            throw APIError(.badRequest, "Format error in JSON body: \(path) must be a list of point ids")
        }
        var ids: [PointID] = []
        for (index, item) in items.enumerated() { ids.append(try pointID(item, "\(path)[\(index)]")) }
        return ids
    }

    static func json(_ id: PointID) -> JSONValue { id.jsonValue }

    static func floats(_ value: JSONValue, _ path: String) throws(APIError) -> [Float] {
        guard case .array(let items) = value else {
            throw APIError(.badRequest, "Format error in JSON body: \(path) must be a list of numbers")
        }
        var result: [Float] = []
        result.reserveCapacity(items.count)
        for item in items {
            switch item {
            case .integer(let number): result.append(Float(number))
            case .unsigned(let number): result.append(Float(number))
            case .double(let number): result.append(Float(number))
            default: throw APIError(.badRequest, "Format error in JSON body: \(path) must be a list of numbers")
            }
        }
        return result
    }

    /// A vector of a point for a field: a dense list or a multivector (list of lists). The collection scales cosine
    /// fields' vectors itself.
    static func vector(
        _ value: JSONValue,
        field: String,
        parameters: VectorParameters,
        path: String
    ) throws(APIError)
        -> VectorValue
    {
        if parameters.multivector {
            guard case .array(let rows) = value, rows.allSatisfy({ if case .array = $0 { true } else { false } }) else {
                throw APIError(
                    .badRequest,
                    "Wrong input: vector '\(field)' is a multivector field; \(path) must be a list of vectors"
                )
            }
            var matrix: [[Float]] = []
            for (index, row) in rows.enumerated() {
                var values = try floats(row, "\(path)[\(index)]")
                try checkDimension(values.count, parameters)
                if parameters.legacyTokenNormalization { normalize(&values) }
                matrix.append(values)
            }
            return .multivector(matrix)
        }
        let values = try floats(value, path)
        try checkDimension(values.count, parameters)
        return .dense(values)
    }

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
    /// before the pipeline runs (which checks everything else). `using: "bm25"` names Tessera's text search.
    static func validate(_ node: QueryNode, parameters: [String: VectorParameters], path: String) throws(APIError) {
        var field: VectorParameters?
        if let using = node.using {
            field = parameters[using]
            var isText = false
            if case .text? = node.query { isText = using == "bm25" }
            guard field != nil || isText else {
                throw APIError(.badRequest, "Wrong input: Not existing vector name error: \(using)")
            }
        } else if parameters.count == 1 {
            field = parameters.first?.value
        }
        if let field {
            switch node.query {
            case .dense(let values)?: try checkDimension(values.count, field)
            case .multivector(let query)?: try checkDimension(query.dimension, field)
            default: break
            }
        }
        for child in node.prefetch { try validate(child, parameters: parameters, path: path + ".prefetch") }
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
        return .object(JSONObject(vectors.mapValues { json($0, dimension: 0) }))
    }

    static func json(_ vector: VectorValue, dimension: Int) -> JSONValue {
        switch vector {
        case .dense(let values): return .array(values.map { .double(Double($0)) })
        case .multivector(let rows): return .array(rows.map { .array($0.map { .double(Double($0)) }) })
        case .flat(let values, let tokenCount):
            let width = tokenCount > 0 ? values.count / tokenCount : dimension
            return .array(
                (0..<tokenCount).map { row in
                    .array(values[(row * width)..<((row + 1) * width)].map { .double(Double($0)) })
                }
            )
        }
    }

    static func payloadJSON(_ payload: JSONObject?, keys: [String]?) -> JSONValue {
        guard var payload else { return .null }
        if let keys { payload = payload.filter { member in keys.contains { $0.utf8.elementsEqual(member.key.utf8) } } }
        return .object(payload)
    }

    /// `with_payload`: a bool or a list of keys (or `{"include": [...]}`).
    static func payloadSelection(_ value: JSONValue?, default fallback: Bool) -> (Bool, [String]?) {
        switch value {
        case .bool(let flag)?: return (flag, nil)
        case .array(let keys)?: return (true, keys.compactMap { if case .string(let key) = $0 { key } else { nil } })
        case .object(let object)?:
            if case .array(let keys)? = object["include"] {
                return (true, keys.compactMap { if case .string(let key) = $0 { key } else { nil } })
            }
            return (true, nil)
        default: return (fallback, nil)
        }
    }

    /// `with_vector`: a bool or a list of field names.
    static func vectorSelection(_ value: JSONValue?) -> [String]? {
        switch value {
        case .bool(true)?: return []
        case .array(let names)?: return names.compactMap { if case .string(let name) = $0 { name } else { nil } }
        default: return nil
        }
    }

    static func filter(_ value: JSONValue?, _ path: String) throws(APIError) -> Filter? {
        guard let value, value != .null else { return nil }
        do {
            return try Filter(json: value.jsonText)
        } catch {
            let field = error.location.field.map { "\(path).\($0)" } ?? path
            throw APIError(.badRequest, "Format error in JSON body: \(field): \(error.message)")
        }
    }
}
