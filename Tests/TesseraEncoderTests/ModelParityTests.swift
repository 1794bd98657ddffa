import Foundation
import TesseraEncoder
import Testing

/// The reference output of all-MiniLM-L6-v2 written by `scripts/make-encoder-fixtures.py`.
struct MiniLMParityFixture: Decodable {
    var texts: [String]
    var maxLengths: [Int?]
    var ids: [[Int32]]
    var tokenCounts: [Int]
    var pooled: [[Float]]
    var hiddenSize: Int
    /// Per sequence, `[tokenCount, hidden]` from `minilm-parity.f32`.
    var lastHiddenState: [[Float]] = []

    enum CodingKeys: String, CodingKey {
        case texts, ids, pooled
        case maxLengths = "max_lengths"
        case tokenCounts = "token_counts"
        case hiddenSize = "hidden_size"
    }

    static func load() throws -> MiniLMParityFixture {
        let directory = TinyBertFixture.fixturesDirectory
        var fixture = try JSONDecoder().decode(
            MiniLMParityFixture.self,
            from: Data(contentsOf: directory.appendingPathComponent("minilm-parity.json"))
        )
        let bytes = try Data(contentsOf: directory.appendingPathComponent("minilm-parity.f32"))
        let values: [Float] = bytes.withUnsafeBytes { raw in
            (0..<(raw.count / 4)).map {
                Float(bitPattern: UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: 4 * $0, as: UInt32.self)))
            }
        }
        var start = 0
        for tokenCount in fixture.tokenCounts {
            let end = start + tokenCount * fixture.hiddenSize
            fixture.lastHiddenState.append(Array(values[start..<end]))
            start = end
        }
        return fixture
    }
}

/// all-MiniLM-L6-v2 against the numpy reference, in one padded batch of 1 to 250 tokens.
@Suite(
    "all-MiniLM-L6-v2 parity",
    .enabled(if: miniLMIsPresent, "models/all-MiniLM-L6-v2 is absent (scripts/fetch-model)")
)
struct ModelParityTests {
    /// Six layers of float32 GEMMs with different summation orders than numpy's: about 1e-5 is typical.
    static let hiddenStateTolerance: Float = 1e-4
    static let pooledTolerance: Float = 1e-5

    @Test("last_hidden_state and pooled vectors match the numpy reference")
    func lastHiddenState() throws {
        let fixture = try MiniLMParityFixture.load()
        let model = try BertModel(modelDirectory: miniLMDirectory)
        let outputs = try model.forward(fixture.ids)
        var hiddenDifference: Float = 0
        var pooledDifference: Float = 0
        for (index, output) in outputs.enumerated() {
            hiddenDifference = max(hiddenDifference, maxAbsoluteDifference(output, fixture.lastHiddenState[index]))
            let pooled = meanPooledNormalized(output, dimension: fixture.hiddenSize)
            pooledDifference = max(pooledDifference, maxAbsoluteDifference(pooled, fixture.pooled[index]))
        }
        print("all-MiniLM-L6-v2 parity: last_hidden_state max abs diff \(hiddenDifference), pooled \(pooledDifference)")
        #expect(hiddenDifference <= Self.hiddenStateTolerance)
        #expect(pooledDifference <= Self.pooledTolerance)
    }
}

/// Mean over rows of `[rows, dimension]`, then L2-normalised; computed in Double as a plain reference.
func meanPooledNormalized(_ rows: [Float], dimension: Int) -> [Float] {
    let rowCount = rows.count / dimension
    var mean = [Double](repeating: 0, count: dimension)
    for row in 0..<rowCount {
        for column in 0..<dimension { mean[column] += Double(rows[row * dimension + column]) }
    }
    let norm = mean.reduce(0) { $0 + $1 * $1 }.squareRoot()
    return mean.map { Float($0 / norm) }
}
