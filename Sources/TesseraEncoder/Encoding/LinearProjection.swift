import TesseraPlatform

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// A linear map applied to token vectors after the encoder: `y = W x (+ b)`.
///
/// ColBERT checkpoints store `W` as `linear.weight` `[outputDimension, hidden]` (no bias) beside the BERT tensors;
/// PyLate and sentence-transformers store a `1_Dense/` module (`config.json` with `in_features`, `out_features`,
/// `bias`, and `model.safetensors` with `linear.weight` and maybe `linear.bias`).
public struct LinearProjection: Sendable, Equatable {
    /// `[outputDimension, inputDimension]`, row-major.
    public var weight: [Float]
    /// `[outputDimension]`, or empty for none.
    public var bias: [Float]
    public var inputDimension: Int
    public var outputDimension: Int

    /// Creates a projection from its parts.
    /// - Parameters:
    ///   - weight: `[outputDimension, inputDimension]`, row-major.
    ///   - bias: `[outputDimension]`, or empty.
    ///   - inputDimension: The width of the vectors it reads.
    /// - Precondition: `weight.count == outputDimension * inputDimension`, and `bias` is empty or
    ///   `outputDimension` long.
    public init(weight: [Float], bias: [Float] = [], inputDimension: Int) {
        precondition(inputDimension > 0 && weight.count % inputDimension == 0, "weight is not [out, inputDimension]")
        self.weight = weight
        self.inputDimension = inputDimension
        self.outputDimension = weight.count / inputDimension
        precondition(bias.isEmpty || bias.count == outputDimension, "bias is not [outputDimension]")
        self.bias = bias
    }

    /// Finds the projection of a ColBERT or PyLate checkpoint.
    /// - Parameters:
    ///   - modelDirectory: The model folder.
    ///   - inputDimension: The encoder's hidden dimension.
    /// - Returns: `linear.weight` from `model.safetensors` if present, else the `1_Dense/` module, else `nil`.
    /// - Throws: ``EncoderError`` for a malformed `1_Dense` module or a tensor of the wrong shape.
    public static func load(modelDirectory: String, inputDimension: Int) throws(EncoderError) -> LinearProjection? {
        let weights = try SafetensorsFile(path: modelDirectory + "/model.safetensors")
        if let info = weights.tensors["linear.weight"] {
            let outputDimension = info.shape.first ?? 0
            let weight = try weights.tensor(candidates: ["linear.weight"], shape: [outputDimension, inputDimension])
            return LinearProjection(weight: weight, inputDimension: inputDimension)
        }
        let denseDirectory = modelDirectory + "/1_Dense"
        let configPath = denseDirectory + "/config.json"
        let configBytes: [UInt8]
        do {
            configBytes = try EncoderError.readFile(configPath)
        } catch  where error.code == .missingFile {
            return nil
        }
        let config: DenseConfiguration
        do {
            config = try JSONDecoder().decode(DenseConfiguration.self, from: Data(configBytes))
        } catch {
            throw EncoderError(.malformedFile, "not a Dense configuration: \(error)", location: .init(path: configPath))
        }
        guard config.inFeatures == inputDimension else {
            throw EncoderError(
                .tensorShape,
                "in_features \(config.inFeatures) differs from the encoder's hidden size \(inputDimension)",
                location: .init(path: configPath, field: "in_features")
            )
        }
        if let activation = config.activationFunction, !activation.hasSuffix("Identity") {
            throw EncoderError(
                .unsupportedConfiguration,
                "activation_function '\(activation)' is not supported; only Identity is",
                location: .init(path: configPath, field: "activation_function")
            )
        }
        let dense = try SafetensorsFile(path: denseDirectory + "/model.safetensors")
        let weight = try dense.tensor(candidates: ["linear.weight"], shape: [config.outFeatures, config.inFeatures])
        let bias = config.bias ?? true ? try dense.tensor(candidates: ["linear.bias"], shape: [config.outFeatures]) : []
        return LinearProjection(weight: weight, bias: bias, inputDimension: inputDimension)
    }

    /// Projects `rowCount` vectors.
    /// - Parameters:
    ///   - rows: `[rowCount, inputDimension]`, row-major.
    ///   - rowCount: The number of vectors.
    /// - Returns: `[rowCount, outputDimension]`, row-major.
    public func apply(_ rows: [Float], rowCount: Int) -> [Float] {
        precondition(rows.count == rowCount * inputDimension, "rows is not [rowCount, inputDimension]")
        var output = [Float](repeating: 0, count: rowCount * outputDimension)
        if rowCount == 0 { return output }
        if !bias.isEmpty {
            for row in 0..<rowCount {
                for column in 0..<outputDimension { output[row * outputDimension + column] = bias[column] }
            }
        }
        GEMM.multiplyTransposed(
            rows,
            weight,
            rows: rowCount,
            columns: outputDimension,
            depth: inputDimension,
            beta: bias.isEmpty ? 0 : 1,
            into: &output
        )
        return output
    }
}

/// A sentence-transformers `Dense` module's `config.json`.
private struct DenseConfiguration: Decodable {
    var inFeatures: Int
    var outFeatures: Int
    var bias: Bool?
    var activationFunction: String?

    enum CodingKeys: String, CodingKey {
        case inFeatures = "in_features"
        case outFeatures = "out_features"
        case bias
        case activationFunction = "activation_function"
    }
}

/// L2-normalises each row of `[rowCount, dimension]` in place; an all-zero row stays zero.
func normalizeRows(_ values: inout [Float], dimension: Int) {
    guard dimension > 0 else { return }
    for row in 0..<(values.count / dimension) {
        var squares: Float = 0
        for column in 0..<dimension { squares += values[row * dimension + column] * values[row * dimension + column] }
        guard squares > 0 else { continue }
        let inverseNorm = 1 / squares.squareRoot()
        for column in 0..<dimension { values[row * dimension + column] *= inverseNorm }
    }
}
