import Foundation
import Tessera

/// The probe's collection and the content of each of its points, a pure function of the id.
///
/// `Tests/TesseraTests/CrashSafetyTests.swift` holds a copy of this function to check what survived a kill;
/// keep the two in step.
enum ProbePoints {
    static let configuration = CollectionConfiguration(fields: [
        VectorField(name: "tokens", dimension: 8, kind: .multivector(comparator: .maxSim), elementType: .float32),
        VectorField(name: "summary", dimension: 4, kind: .dense(distance: .cosine), elementType: .float16),
    ])

    static func point(id: UInt64) -> Point {
        let tokenCount = 1 + Int(id % 5)
        let tokens = (0..<tokenCount).map { token in
            (0..<8).map { component in Float(sin(Double(id) * 0.37 + Double(token) * 1.3 + Double(component) * 0.11)) }
        }
        let summary = (0..<4).map { component in Float(cos(Double(id) * 0.21 + Double(component))) }
        return Point(
            id: .integer(id),
            payload: ["n": .integer(Int64(id)), "tag": .string("p\(id % 7)"), "even": .bool(id % 2 == 0)],
            vectors: ["tokens": .multivector(tokens), "summary": .dense(summary)]
        )
    }
}
