import Foundation
import Tessera
import Testing

@Suite("Bad input")
struct BadInputTests {
    static let configuration = CollectionConfiguration(fields: [multivectorField(), denseField()])

    static func good(_ id: UInt64) -> Point {
        Point(
            id: .integer(id),
            payload: ["n": .integer(Int64(id))],
            vectors: ["tokens": .multivector([[1, 2, 3, 4], [5, 6, 7, 8]]), "dense": .dense([1, 0, 0])]
        )
    }

    /// Each bad point, the code it must raise and a text the message must contain.
    static let cases: [(String, Point, TesseraError.Code, String)] = {
        var cases: [(String, Point, TesseraError.Code, String)] = []
        var point = good(100)
        point.vectors["tokens"] = .multivector([[1, 2, 3, 4], [1, 2, 3]])
        cases.append(("short token row", point, .dimensionMismatch, "token 1 has 3 values"))
        point = good(101)
        point.vectors["dense"] = .dense([1, 2])
        cases.append(("short dense vector", point, .dimensionMismatch, "dimension is 3"))
        point = good(102)
        point.vectors["tokens"] = .flat(values: [1, 2, 3, 4, 5], tokenCount: 1)
        cases.append(("flat values that do not fill the tokens", point, .dimensionMismatch, "5 values"))
        point = good(103)
        point.vectors["tokens"] = .multivector([[1, .nan, 3, 4]])
        cases.append(("NaN", point, .invalidArgument, "not finite"))
        point = good(104)
        point.vectors["dense"] = .dense([.infinity, 0, 0])
        cases.append(("infinity", point, .invalidArgument, "not finite"))
        point = good(105)
        point.vectors["tokens"] = .multivector([])
        cases.append(("empty multivector", point, .invalidArgument, "at least one token"))
        // A missing field is no error: the point has no vector there (AbsentVectorTests).
        point = good(107)
        point.vectors["colour"] = .dense([1, 2, 3])
        cases.append(("unknown field", point, .invalidArgument, "unknown field 'colour'"))
        point = good(108)
        point.vectors["dense"] = .multivector([[1, 2, 3]])
        cases.append(("multivector for a dense field", point, .invalidArgument, "dense field"))
        point = good(109)
        point.payload["x"] = .double(.nan)
        cases.append(("NaN in the payload", point, .invalidArgument, "non-finite"))
        return cases
    }()

    @Test("a bad point fails the whole batch with an error naming it, and stored points are unchanged")
    func badPoints() throws {
        try withCollectionPath { path in
            let store = try CollectionStore.create(at: path, configuration: Self.configuration)
            try store.upsert((0..<5).map(Self.good))
            let before = try store.scroll(limit: 100, withVectors: true)
            for (name, bad, code, text) in Self.cases {
                // The bad point comes last, after a new good point and a replacement of a stored one.
                var replaced = Self.good(2)
                replaced.payload = ["n": "changed"]
                let error = #expect(throws: TesseraError.self, "\(name)") {
                    try store.upsert([Self.good(50), replaced, bad])
                }
                #expect(error?.code == code, "\(name): \(error?.description ?? "")")
                #expect(error?.message.contains(text) == true, "\(name): \(error?.description ?? "")")
                #expect(error?.location.field?.contains("point \(bad.id)") == true, "\(name)")
                #expect(store.count() == 5)
                #expect(try store.scroll(limit: 100, withVectors: true) == before, "\(name)")
            }
            try store.checkIntegrity()
            try store.close()
        }
    }

    @Test("float16 fields reject values beyond ±65504")
    func float16Range() throws {
        try withCollectionPath { path in
            let store = try CollectionStore.create(
                at: path,
                configuration: CollectionConfiguration(fields: [denseField(dimension: 2, .float16)])
            )
            let error = #expect(throws: TesseraError.self) {
                try store.upsert([Point(id: .integer(1), vectors: ["dense": .dense([70000, 1])])])
            }
            #expect(error?.code == .invalidArgument)
            #expect(store.count() == 0)
            try store.close()
        }
    }

    @Test("point ids parse from numbers and UUID strings; other strings are errors")
    func pointIDs() throws {
        let decoder = JSONDecoder()
        #expect(try decoder.decode(PointID.self, from: Data("42".utf8)) == .integer(42))
        let uuid = "550e8400-e29b-41d4-a716-446655440000"
        #expect(try decoder.decode(PointID.self, from: Data("\"\(uuid)\"".utf8)) == .uuid(UUID(uuidString: uuid)!))
        #expect(throws: DecodingError.self) { try decoder.decode(PointID.self, from: Data("\"not-a-uuid\"".utf8)) }
        #expect(throws: DecodingError.self) { try decoder.decode(PointID.self, from: Data("-1".utf8)) }
        #expect(throws: DecodingError.self) { try decoder.decode(PointID.self, from: Data("1.5".utf8)) }
        let error = #expect(throws: TesseraError.self) { try PointID(parsing: "abc") }
        #expect(error?.code == .invalidArgument)
        #expect(try PointID(parsing: uuid.uppercased()) == .uuid(UUID(uuidString: uuid)!))
        let filterError = #expect(throws: TesseraError.self) { try Filter(json: #"{"must": [{"has_id": [1, "x"]}]}"#) }
        #expect(filterError?.location.field == "must[0].has_id[1]")
    }

    @Test(
        "bad filter JSON names the field",
        arguments: [
            (#"{"must": [{"key": "a", "match": {"valu": 1}}]}"#, "must[0].match.valu"),
            (#"{"must_nt": []}"#, "must_nt"),
            (#"{"should": [{"key": "a", "range": {"gt": "x"}}]}"#, "should[0].range.gt"),
            (#"{"must": [{"key": "a", "match": {"any": [1, "b"]}}]}"#, "must[0].match.any[1]"),
            (#"{"must": [{"key": 3, "match": {"value": 1}}]}"#, "must[0].key"),
            (#"{"must": [{"is_empty": {}}]}"#, "must[0].is_empty"),
            (
                #"{"must": [{"nested": {"key": "c", "filter": {"must": [{"has_id": [1]}]}}}]}"#,
                "must[0].nested.filter.must[0].has_id"
            ),
            (#"{"must": [{"key": "a", "match": {"value": 1}, "range": {"gt": 1}}]}"#, "must[0]"),
            (#"{"must": [{"key": "a..b", "match": {"value": 1}}]}"#, "must[0].key"),
            (#"{"min_should": {"conditions": [], "min_count": -1}}"#, "min_should.min_count"),
            (#"[1]"#, "filter"),
        ]
    )
    func badFilters(json: String, field: String) throws {
        let error = #expect(throws: TesseraError.self) { try Filter(json: json) }
        #expect(error?.code == .invalidArgument)
        #expect(error?.location.field == field, "\(error?.description ?? "")")
        // Codable decoding fails too.
        #expect(throws: DecodingError.self) { try JSONDecoder().decode(Filter.self, from: Data(json.utf8)) }
    }
}
