import Foundation
import Tessera
import Testing

@testable import TesseraQdrant

private func decodeFailure<T: Decodable>(_ type: T.Type, _ json: String) -> TesseraError? {
    do throws(TesseraError) {
        _ = try JSONValueDecoder().decode(type, from: try JSONValue.parse(json))
        return nil
    } catch {
        return error
    }
}

@Suite("JSONValueDecoder and Qdrant's wire types")
struct JSONValueDecoderTests {
    @Test(
        "errors name the JSON path of the bad field",
        arguments: [
            (#"{"prefetch": [{"limit": 3}, {"limit": "ten"}]}"#, "prefetch[1].limit"),
            (#"{"prefetch": {"prefetch": [{"query": [1, true]}]}}"#, "prefetch.prefetch[0].query[1]"),
            (#"{"query": [1, 0], "params": {"hnsw_ef": 0}}"#, "params.hnsw_ef"),
            (#"{"query": [1, 0], "params": {"acorn": {"enable": true}}}"#, "params.acorn"),
            (
                #"{"query": [1, 0], "params": {"quantization": {"oversampling": 0.5}}}"#,
                "params.quantization.oversampling"
            ),
            (#"{"query": [1, 0], "params": {"idf": {"corpus": {"must": 3}}}}"#, "params.idf.corpus.must"),
            (#"{"query": [1, 0], "params": {"idf": "local"}}"#, "params.idf"),
            (#"{"filter": {"must": [{"key": "a", "range": {"gt": "x"}}]}}"#, "filter.must[0].range.gt"),
            (#"{"filter": {"should": {"has_id": [1, "nope"]}}}"#, "filter.should.has_id[1]"),
            (#"{"filter": {"must": [{"key": "a", "values_count": {"gt": -1}}]}}"#, "filter.must[0].values_count.gt"),
            (#"{"with_payload": [1]}"#, "with_payload[0]"),
            (#"{"limt": 3}"#, "limt"),
        ]
    )
    func paths(json: String, field: String) throws {
        let error = try #require(decodeFailure(Qdrant.QueryRequest.self, json))
        #expect(error.code == .invalidArgument)
        #expect(error.location.field == field, "\(error)")
    }

    @Test("u64 ids are kept: 2^64-1 decodes as an id, a string of digits does not")
    func unsignedIDs() throws {
        let decoder = JSONValueDecoder()
        let largest = try decoder.decode(PointID.self, from: try JSONValue.parse("18446744073709551615"))
        #expect(largest == .integer(UInt64.max))
        let query = try decoder.decode(
            Qdrant.QueryRequest.self,
            from: try JSONValue.parse(#"{"query": 9223372036854775808}"#)
        )
        guard case .point(.integer(9_223_372_036_854_775_808))? = query.node.query else {
            Issue.record("the id above Int64.max did not decode as a point id")
            return
        }
        let digits = try #require(decodeFailure([PointID].self, #"[1, "18446744073709551615"]"#))
        #expect(digits.location.field == "[1]")
        #expect(digits.message.contains("a string id must be a UUID"))
        let negative = try #require(decodeFailure(Qdrant.Filter.self, #"{"must": {"has_id": [-1]}}"#))
        #expect(negative.location.field == "must.has_id[0]")
    }

    @Test(
        "unknown enum values are refused, naming the field",
        arguments: [
            (#"{"query": {"fusion": "max"}}"#, "query.fusion"),
            (#"{"query": {"nearest": {"recommend": {}}}}"#, "query.nearest.recommend"),
            (#"{"prefetch": [{"query": {"fusion": 1}}]}"#, "prefetch[0].query.fusion"),
        ]
    )
    func unknownEnumValues(json: String, field: String) throws {
        let error = try #require(decodeFailure(Qdrant.QueryRequest.self, json))
        #expect(error.location.field == field, "\(error)")
    }

    @Test("payload values keep their keys byte for byte and their numbers as read")
    func payloads() throws {
        let json = #"{"é": 1, "e\u0301": 18446744073709551615, "x": 5.0}"#
        let object = try JSONValueDecoder().decode(JSONObject.self, from: try JSONValue.parse(json))
        #expect(object.count == 3)
        #expect(object["x"] == .double(5))
        #expect(object["e\u{301}"] == .unsigned(UInt64.max))
    }

    @Test("a query request converts to the library's request")
    func conversion() throws {
        let request = try Tessera.QueryRequest(
            json: try JSONValue.parse(
                #"{"prefetch": [{"query": [1, 0], "using": "dense", "limit": 4.0}], "query": {"rrf": {"k": 7}}, "#
                    + #""filter": {"must": [{"key": "group", "match": {"any": ["a", "b"]}}]}, "limit": 3, "#
                    + #""with_payload": {"include": ["group"]}, "with_vector": ["dense"], "offset": 1}"#
            )
        )
        #expect(request.root.limit == 3)
        #expect(request.offset == 1)
        #expect(request.root.prefetch.first?.limit == 4)
        #expect(request.root.prefetch.first?.using == "dense")
        #expect(request.payloadSelector == (try PayloadSelector(include: ["group"])))
        #expect(request.withVectors == ["dense"])
        #expect(request.root.filter?.must.count == 1)
        guard case .fusion(.rrf(let k, nil))? = request.root.query else {
            Issue.record("rrf did not decode")
            return
        }
        #expect(k == 7)
    }

    @Test("the encoder writes JSON values as they are, and null where asked")
    func encoder() throws {
        let filter = Qdrant.Filter(must: [.hasID([.integer(UInt64.max)]), .isNull(key: "a")])
        let json = try JSONValueEncoder().encode(filter)
        #expect(json.jsonText == #"{"must":[{"has_id":[18446744073709551615]},{"is_null":{"key":"a"}}]}"#)
        let decoded = try JSONValueDecoder().decode(Qdrant.Filter.self, from: json)
        #expect(decoded == filter)
    }

    @Test("every integer type encodes, unsigned ids beyond Int64.max included")
    func integers() throws {
        struct Numbers: Encodable {
            var big: UInt64 = .max
            var small: UInt8 = 7
            var negative: Int32 = -3
            var id: PointID = .integer(UInt64.max - 1)
        }
        let json = try JSONValueEncoder().encode(Numbers())
        #expect(json.jsonText == #"{"big":18446744073709551615,"id":18446744073709551614,"negative":-3,"small":7}"#)
    }
}

@Suite("Qdrant documents for the built-in BM25 model")
struct BM25DocumentDecodingTests {
    @Test("a qdrant/bm25 document is a document's sparse vector in a point, a query's in a query")
    func documentsAndQueries() throws {
        let model = SparseBM25Model()
        let point = try JSONValueDecoder().decode(
            Qdrant.PointStruct.self,
            from: try JSONValue.parse(
                #"{"id": 1, "vector": {"bm25": {"text": "cats and cats", "model": "qdrant/bm25"}}}"#
            )
        )
        let stored = model.documentVector("cats and cats")
        #expect(point.vector == .named(["bm25": .sparse(indices: stored.indices, values: stored.values)]))
        let tuned = try JSONValueDecoder().decode(
            Qdrant.VectorInput.self,
            from: try JSONValue.parse(#"{"text": "cats", "model": "qdrant/bm25", "options": {"k": 2, "b": 0}}"#)
        )
        let expected = try SparseBM25Model(options: ["k": 2, "b": 0]).documentVector("cats")
        #expect(tuned == .sparse(indices: expected.indices, values: expected.values))
        #expect(expected.values != stored.values)
        let request = try JSONValueDecoder().decode(
            Qdrant.QueryRequest.self,
            from: try JSONValue.parse(
                #"{"prefetch": [{"query": {"text": "cats and cats", "model": "qdrant/bm25"}, "using": "bm25"}], "query": {"fusion": "rrf"}}"#
            )
        )
        guard case .sparse(let query)? = request.node.prefetch?.first?.query else {
            Issue.record("not a sparse query: \(String(describing: request.node.prefetch))")
            return
        }
        #expect(query == model.queryVector("cats"))
        #expect(query.values == [1])
    }

    @Test(
        "documents naming another model, options without a model, bad options and unknown members are refused",
        arguments: [
            (#"{"query": {"text": "a", "model": "Qdrant/bm25"}}"#, "query.model"),
            (#"{"query": {"text": "a", "options": {"k": 1}}}"#, "query.options"),
            (
                #"{"query": {"text": "a", "model": "qdrant/bm25", "options": {"language": "german"}}}"#,
                "query.options.language"
            ),
            (#"{"query": {"text": "a", "model": "qdrant/bm25", "options": 3}}"#, "query.options"),
            (#"{"query": {"text": "a", "model": "qdrant/bm25", "lang": "en"}}"#, "query.lang"),
        ]
    )
    func refusals(json: String, field: String) throws {
        let error = try #require(decodeFailure(Qdrant.QueryRequest.self, json))
        #expect(error.location.field == field, "\(error)")
        let point = json.replacingOccurrences(of: #"{"query": "#, with: #"{"id": 1, "vector": {"v": "#) + "}"
        let refused = try #require(decodeFailure(Qdrant.PointStruct.self, point), "\(point)")
        #expect(refused.location.field == field.replacingOccurrences(of: "query", with: "vector.v"), "\(refused)")
    }
}
