import CBLAS
import TesseraPlatform

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// A principal-component projection of token vectors to a smaller dimension.
///
/// Fitted on a sample of document token vectors: the sample mean is subtracted, the covariance computed with one
/// `cblas_sgemm`, and its eigenvectors found with LAPACK `ssyevd`; the `outputDimension` eigenvectors with the
/// largest eigenvalues are kept. The encoder applies it after its own output and then re-normalises.
/// Saved as JSON (`format: "tessera-pca"`); `Float` values round-trip exactly through it.
public struct PCAProjection: Sendable, Equatable, Codable {
    /// The file format's name, checked on load.
    public static let formatName = "tessera-pca"

    public var format: String = PCAProjection.formatName
    public var version: Int = 1
    public var inputDimension: Int
    public var outputDimension: Int
    /// The sample mean, `[inputDimension]`.
    public var mean: [Float]
    /// The components, `[outputDimension, inputDimension]`, row-major, largest variance first, each of unit length.
    public var components: [Float]
    /// The variance along each component, `[outputDimension]`, largest first.
    public var variances: [Float]

    /// Fits a projection on sample vectors.
    /// - Parameters:
    ///   - vectors: The sample, `[rowCount, dimension]`, row-major.
    ///   - dimension: The width of one vector.
    ///   - outputDimension: The number of components to keep, `1...dimension`.
    /// - Returns: The fitted projection.
    /// - Throws: ``EncoderError`` `.invalidArgument` for an empty sample or a bad dimension; `.invalidArgument` when
    ///   the eigen-decomposition fails.
    public static func fit(vectors: [Float], dimension: Int, outputDimension: Int) throws(EncoderError) -> PCAProjection
    {
        guard dimension > 0, vectors.count % dimension == 0, vectors.count >= dimension else {
            throw EncoderError(.invalidArgument, "the sample is not a non-empty [rows, \(dimension)] matrix")
        }
        guard (1...dimension).contains(outputDimension) else {
            throw EncoderError(
                .invalidArgument,
                "outputDimension \(outputDimension) is outside 1...\(dimension)",
                location: .init(field: "outputDimension")
            )
        }
        let rowCount = vectors.count / dimension
        var mean = [Float](repeating: 0, count: dimension)
        for row in 0..<rowCount {
            for column in 0..<dimension { mean[column] += vectors[row * dimension + column] }
        }
        for column in 0..<dimension { mean[column] /= Float(rowCount) }
        var centered = vectors
        for row in 0..<rowCount {
            for column in 0..<dimension { centered[row * dimension + column] -= mean[column] }
        }
        // covariance = centeredᵀ · centered / rows, [dimension, dimension]
        var covariance = [Float](repeating: 0, count: dimension * dimension)
        GEMM.gram(centered, rows: rowCount, columns: dimension, scale: 1 / Float(rowCount), into: &covariance)
        var eigenvalues = [Float](repeating: 0, count: dimension)
        let status = covariance.withUnsafeMutableBufferPointer { matrix in
            eigenvalues.withUnsafeMutableBufferPointer { values in
                tsr_symmetric_eigen(Int32(dimension), matrix.baseAddress, values.baseAddress)
            }
        }
        guard status == 0 else {
            throw EncoderError(.invalidArgument, "the eigen-decomposition failed (LAPACK info \(status))")
        }
        // Eigenvalues are ascending; keep the last `outputDimension`, largest first.
        var components: [Float] = []
        var variances: [Float] = []
        components.reserveCapacity(outputDimension * dimension)
        for index in stride(from: dimension - 1, through: dimension - outputDimension, by: -1) {
            var component = Array(covariance[(index * dimension)..<((index + 1) * dimension)])
            // Fix the sign (largest-magnitude entry positive) so fits are reproducible.
            if let largest = component.max(by: { abs($0) < abs($1) }), largest < 0 {
                component = component.map { -$0 }
            }
            components += component
            variances.append(max(0, eigenvalues[index]))
        }
        return PCAProjection(
            inputDimension: dimension,
            outputDimension: outputDimension,
            mean: mean,
            components: components,
            variances: variances
        )
    }

    /// Creates a projection from its parts.
    /// - Parameters:
    ///   - inputDimension: The width of the vectors it reads.
    ///   - outputDimension: The width of the vectors it writes.
    ///   - mean: `[inputDimension]`.
    ///   - components: `[outputDimension, inputDimension]`, row-major.
    ///   - variances: `[outputDimension]`.
    public init(inputDimension: Int, outputDimension: Int, mean: [Float], components: [Float], variances: [Float]) {
        self.inputDimension = inputDimension
        self.outputDimension = outputDimension
        self.mean = mean
        self.components = components
        self.variances = variances
    }

    /// Loads a projection saved by ``save(to:)``.
    /// - Parameter path: The JSON file.
    /// - Throws: ``EncoderError`` `.missingFile`, or `.malformedFile` for a file that is not a consistent
    ///   `tessera-pca` projection.
    public init(contentsOf path: String) throws(EncoderError) {
        let bytes = try EncoderError.readFile(path)
        do {
            self = try JSONDecoder().decode(PCAProjection.self, from: Data(bytes))
        } catch {
            throw EncoderError(.malformedFile, "not a PCA projection: \(error)", location: .init(path: path))
        }
        guard format == Self.formatName, version == 1, mean.count == inputDimension,
            components.count == outputDimension * inputDimension, variances.count == outputDimension
        else {
            throw EncoderError(
                .malformedFile,
                "format, version or array lengths do not match a \(Self.formatName) v1 file",
                location: .init(path: path)
            )
        }
    }

    /// Writes the projection as JSON.
    /// - Parameter path: The file to create or replace.
    /// - Throws: ``EncoderError`` `.invalidArgument` when the file cannot be written.
    public func save(to path: String) throws(EncoderError) {
        let data: Data
        do {
            data = try JSONEncoder().encode(self)
        } catch {
            throw EncoderError(.invalidArgument, "cannot encode the projection: \(error)")
        }
        do {
            try AtomicFile.write([UInt8](data), to: path)
        } catch {
            throw EncoderError(.invalidArgument, "\(error.call) failed: \(error.reason)", location: .init(path: path))
        }
    }

    /// Projects vectors (mean subtracted, then onto the components); the result is not normalised.
    /// - Parameters:
    ///   - rows: `[rowCount, inputDimension]`, row-major.
    ///   - rowCount: The number of vectors.
    /// - Returns: `[rowCount, outputDimension]`, row-major.
    public func apply(_ rows: [Float], rowCount: Int) -> [Float] {
        var centered = rows
        for row in 0..<rowCount {
            for column in 0..<inputDimension { centered[row * inputDimension + column] -= mean[column] }
        }
        return LinearProjection(weight: components, inputDimension: inputDimension).apply(centered, rowCount: rowCount)
    }
}
