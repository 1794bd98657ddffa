import Foundation
import TesseraEncoder
import TesseraPlatform
import TesseraTestSupport
import Testing

@Suite("PCA projection")
struct EncodingPCATests {
    /// Vectors stretched along known axes: variance 9 along (1,1,0,0)/√2, 1 along (0,0,1,0), ~0 elsewhere.
    static func sample() -> [Float] {
        var generator = SplitMix64(seed: 7)
        var vectors: [Float] = []
        for _ in 0..<400 {
            let a = Float(generator.nextGaussian()) * 3
            let b = Float(generator.nextGaussian())
            let axis = a / Float(2).squareRoot()
            vectors += [axis + 1, axis - 2, b + 0.5, 0.001 * Float(generator.nextGaussian())]
        }
        return vectors
    }

    @Test("fit finds the largest-variance directions, largest first")
    func fit() throws {
        let pca = try PCAProjection.fit(vectors: Self.sample(), dimension: 4, outputDimension: 2)
        #expect(pca.outputDimension == 2)
        let first = Array(pca.components[0..<4])
        let second = Array(pca.components[4..<8])
        #expect(abs(abs(first[0]) - 0.7071) < 0.02 && abs(abs(first[1]) - 0.7071) < 0.02 && abs(first[2]) < 0.05)
        #expect(abs(abs(second[2]) - 1) < 0.01)
        #expect(pca.variances[0] > pca.variances[1])
        #expect(abs(pca.mean[1] + 2) < 0.5)
        let projected = pca.apply(Array(Self.sample()[0..<8]), rowCount: 2)
        #expect(projected.count == 4)
    }

    @Test("save and load round-trip exactly")
    func roundTrip() throws {
        let pca = try PCAProjection.fit(vectors: Self.sample(), dimension: 4, outputDimension: 3)
        let path = try makeTemporaryDirectory() + "/pca.json"
        try pca.save(to: path)
        #expect(try PCAProjection(contentsOf: path) == pca)
        try "{\"format\": \"other\"}".write(toFile: path, atomically: true, encoding: .utf8)
        let error = #expect(throws: EncoderError.self) { try PCAProjection(contentsOf: path) }
        #expect(error?.code == .malformedFile)
    }
}

extension SplitMix64 {
    /// A standard normal sample (Box–Muller).
    mutating func nextGaussian() -> Double {
        let u = Double.random(in: Double.ulpOfOne..<1, using: &self)
        let v = Double.random(in: 0..<1, using: &self)
        return (-2 * log(u)).squareRoot() * cos(2 * Double.pi * v)
    }
}
