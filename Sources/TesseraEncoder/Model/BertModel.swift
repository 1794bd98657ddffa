import CBLAS
import CMaxSimKernels
import TesseraPlatform

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A BERT encoder: token ids in, one contextual vector per token out (`last_hidden_state`).
///
/// The forward pass follows Hugging Face `BertModel` in float32: embeddings (word + position + token type 0) and
/// LayerNorm, then per layer self-attention, output projection + residual + LayerNorm, exact-erf GELU feed-forward,
/// output projection + residual + LayerNorm.
///
/// ## Batching without padding
/// A batch is *packed*: the tokens of all sequences are stacked into one `[totalTokenCount, hidden]` matrix, so
/// every dense product is one `cblas_sgemm` over the whole batch with no padding rows. Attention runs per
/// (sequence, head) on that sequence's rows only. This computes exactly what a padded batch with an additive mask
/// of `finfo(float32).min` computes on real tokens: such a mask makes `exp(score - max)` round to `0` for every
/// padding key, so padding contributes nothing to a real token's output; and padding rows' own outputs are
/// discarded. Sequences of different lengths therefore cost only their own tokens.
public struct BertModel: Sendable {
    /// The model's shape and numeric settings.
    public let configuration: BertConfiguration
    let weights: BertWeights
    /// The arithmetic of the projections.
    public let precision: EncoderPrecision
    /// Per layer, the projections packed for the encoder's own kernels; empty when float32 runs on OpenBLAS
    /// (a CPU without AVX-512).
    let packedLayers: [PackedLayerWeights]
    /// How many threads a forward pass uses: BLAS threads for the dense products and workers for attention.
    public var threadCount: Int

    /// Loads `config.json` and `model.safetensors` from a Hugging Face model folder.
    /// - Parameters:
    ///   - modelDirectory: The folder holding `config.json` and `model.safetensors`.
    ///   - threadCount: Threads per forward pass; `nil` means one per active core.
    ///   - precision: The arithmetic of the projections.
    /// - Throws: ``EncoderError`` naming the file, field, tensor or byte offset of the problem.
    public init(
        modelDirectory: String,
        threadCount: Int? = nil,
        precision: EncoderPrecision = .float32
    ) throws(EncoderError) {
        let configuration = try BertConfiguration(contentsOf: modelDirectory + "/config.json")
        try self.init(
            configuration: configuration,
            weightsPath: modelDirectory + "/model.safetensors",
            threadCount: threadCount,
            precision: precision
        )
    }

    /// Loads the weights of a model whose configuration is known.
    /// - Parameters:
    ///   - configuration: The model's configuration.
    ///   - weightsPath: A safetensors checkpoint with F32, F16 or BF16 tensors, with or without a `bert.` prefix.
    ///   - threadCount: Threads per forward pass; `nil` means one per active core.
    ///   - precision: The arithmetic of the projections; at ``EncoderPrecision/int8`` the weights are quantised
    ///     here, once, and their float32 copies dropped.
    /// - Throws: ``EncoderError`` naming the file, tensor or byte offset of the problem.
    public init(
        configuration: BertConfiguration,
        weightsPath: String,
        threadCount: Int? = nil,
        precision: EncoderPrecision = .float32
    ) throws(EncoderError) {
        let file = try SafetensorsFile(path: weightsPath)
        self.configuration = configuration
        var weights = try BertWeights(file: file, configuration: configuration)
        self.precision = precision
        if precision == .bfloat16, tsr_bf16_supported() == 0 {
            throw EncoderError(
                .unsupportedConfiguration,
                "precision bf16 needs a CPU with AVX512_BF16 (vdpbf16ps), which this one lacks; use f32 or int8",
                location: .init(field: "precision")
            )
        }
        if precision != .float32 || BertModel.packsFloat32 {
            packedLayers = weights.layers.map {
                PackedLayerWeights(
                    $0,
                    precision: precision,
                    hidden: configuration.hiddenDimension,
                    intermediate: configuration.intermediateDimension
                )
            }
            for index in weights.layers.indices { weights.layers[index].dropProjections() }
        } else {
            packedLayers = []
        }
        self.weights = weights
        self.threadCount = max(1, threadCount ?? BertModel.activeCoreCount)
    }

    /// Whether float32 projections run on the encoder's own packed-weight kernel (AVX-512) rather than OpenBLAS.
    static var packsFloat32: Bool { tsr_isa_best() == Int32(TSR_ISA_AVX512) }

    /// Whether this CPU can run `precision` (bf16 needs AVX512_BF16; the others run everywhere).
    public static func supports(_ precision: EncoderPrecision) -> Bool {
        precision != .bfloat16 || tsr_bf16_supported() != 0
    }

    /// The number of cores this process may use.
    public static var activeCoreCount: Int {
        #if canImport(Glibc)
        return max(1, Int(sysconf(Int32(_SC_NPROCESSORS_ONLN))))
        #else
        return max(1, Int(sysconf(_SC_NPROCESSORS_ONLN)))
        #endif
    }

    /// Runs the encoder over a batch of token-id sequences.
    ///
    /// Every token of a sequence is attended (attention mask 1); a sequence's tokens are exactly what it is given,
    /// specials included.
    /// - Parameter batch: The sequences, each `[tokenCount]` ids with `1 ≤ tokenCount ≤ maxPositionCount`.
    /// - Returns: Per sequence, in input order, its `last_hidden_state` `[tokenCount, hidden]`, row-major.
    /// - Throws: ``EncoderError`` `.invalidArgument` for an empty or too long sequence or an id outside the
    ///   vocabulary; `location.offset` is the sequence's index in the batch.
    public func forward(_ batch: [[Int32]]) throws(EncoderError) -> [[Float]] {
        let hidden = configuration.hiddenDimension
        var rowStarts: [Int] = []
        rowStarts.reserveCapacity(batch.count + 1)
        var totalTokenCount = 0
        for (index, sequence) in batch.enumerated() {
            guard !sequence.isEmpty, sequence.count <= configuration.maxPositionCount else {
                throw EncoderError(
                    .invalidArgument,
                    "sequence has \(sequence.count) tokens; allowed 1...\(configuration.maxPositionCount)",
                    location: .init(field: "batch", offset: index)
                )
            }
            if let bad = sequence.first(where: { $0 < 0 || Int($0) >= configuration.vocabularySize }) {
                throw EncoderError(
                    .invalidArgument,
                    "token id \(bad) is outside the vocabulary of \(configuration.vocabularySize)",
                    location: .init(field: "batch", offset: index)
                )
            }
            rowStarts.append(totalTokenCount)
            totalTokenCount += sequence.count
        }
        rowStarts.append(totalTokenCount)
        if batch.isEmpty { return [] }

        // Consecutive groups of sequences of at most `groupTokenLimit` tokens (or one longer sequence), run one
        // after another through one workspace: its pages are cleared by the kernel once per call, not once per
        // group, and its size is bounded whatever the batch.
        var groups: [Range<Int>] = []
        var groupStart = 0
        for index in batch.indices.dropFirst()
        where rowStarts[index + 1] - rowStarts[groupStart] > Self.groupTokenLimit {
            groups.append(groupStart..<index)
            groupStart = index
        }
        groups.append(groupStart..<batch.count)
        let capacity = groups.map { rowStarts[$0.upperBound] - rowStarts[$0.lowerBound] }.max() ?? 0
        var workspace = ForwardWorkspace(
            rowCapacity: capacity,
            hidden: hidden,
            intermediate: configuration.intermediateDimension,
            scratchByteCount: packedLayers.isEmpty ? 0 : scratchByteCount(rowCapacity: capacity)
        )
        var outputs: [[Float]] = []
        outputs.reserveCapacity(batch.count)
        for group in groups {
            let groupRowStarts = rowStarts[group.lowerBound...group.upperBound].map { $0 - rowStarts[group.lowerBound] }
            let states = runPacked(Array(batch[group]), rowStarts: groupRowStarts, workspace: &workspace)
            for index in group {
                let start = states + groupRowStarts[index - group.lowerBound] * hidden
                outputs.append(Array(UnsafeBufferPointer(start: start, count: batch[index].count * hidden)))
            }
        }
        return outputs
    }

    /// The most tokens one group of sequences holds in a forward pass (a longer sequence is a group of its own).
    ///
    /// Large enough that each of a few workers gets blocks of hundreds of rows, small enough that a group's
    /// matrices (about 14 KiB per token for all-MiniLM-L6-v2) stay tens of megabytes.
    static let groupTokenLimit = 2048

    /// Bytes of kernel scratch for blocks of at most `rowCapacity` rows in total: per row the most any
    /// precision needs for the widest input, plus 64 bytes of alignment slack per block.
    private func scratchByteCount(rowCapacity: Int) -> Int {
        let perRow = PackedLinear.scratchBytesPerRow(
            inputDimension: max(configuration.hiddenDimension, configuration.intermediateDimension)
        )
        return rowCapacity * perRow + 64 * Self.maximumBlockCount(threadCount: threadCount)
    }

    /// At most two blocks per worker.
    static func maximumBlockCount(threadCount: Int) -> Int { 2 * threadCount }

    /// The packed forward pass over one group of sequences, in `workspace`.
    ///
    /// Threads: BLAS runs single-threaded and the pass splits the work itself, because every stage but attention
    /// is row-local. Each layer is two parallel regions: attention, one task per (sequence, head); then, per block
    /// of rows, the output projection, LayerNorm, feed-forward, LayerNorm and the next layer's Q/K/V projection.
    /// Letting OpenBLAS thread each product instead left its threads spinning in `sched_yield` during the
    /// element-wise stages; on 2 cores that ran slower than one thread (2,270 vs 2,470 tokens/s).
    /// - Returns: `[rowStarts.last, hidden]` final states in `workspace`, valid until its next use.
    private func runPacked(
        _ batch: [[Int32]],
        rowStarts: [Int],
        workspace: inout ForwardWorkspace
    ) -> UnsafeMutablePointer<Float> {
        let hidden = configuration.hiddenDimension
        let intermediate = configuration.intermediateDimension
        let epsilon = configuration.layerNormEpsilon
        let rowCount = rowStarts.last!
        let previousThreadCount = tsr_blas_thread_count()
        tsr_blas_set_thread_count(1)
        defer { if previousThreadCount > 0 { tsr_blas_set_thread_count(previousThreadCount) } }
        // Blocks of at least 32 rows, about two per worker so a slow worker does not hold the others up.
        let blockCount = max(1, min(Self.maximumBlockCount(threadCount: threadCount), rowCount / 32))
        let blocks: [Range<Int>] = (0..<blockCount).map { block in
            (block * rowCount / blockCount)..<((block + 1) * rowCount / blockCount)
        }
        // Block b's scratch for the packed kernels' converted activations starts at its first row's share plus
        // 64 bytes per earlier block (the alignment slack each block may use).
        let scratchPerRow = PackedLinear.scratchBytesPerRow(inputDimension: max(hidden, intermediate))
        let scratchOffsets = blocks.indices.map { blocks[$0].lowerBound * scratchPerRow + 64 * $0 }
        let layers = weights.layers

        return workspace.withBuffers { statesBase, queryKeyValueBase, contextBase, sumBase, expandedBase, scratchBase in
            embed(batch, rowStarts: rowStarts, into: statesBase)
            let pointers = LayerPointers(
                states: statesBase,
                queryKeyValue: queryKeyValueBase,
                context: contextBase,
                sum: sumBase,
                expanded: expandedBase,
                scratch: scratchBase
            )
            /// The row-local stages for `rows`: layer `index`'s attention output and feed-forward (when
            /// `index >= 0`), then layer `index + 1`'s Q/K/V projection (when there is one).
            @Sendable func rowStages(_ block: Int, after index: Int) {
                let rows = blocks[block]
                let count = rows.count
                let scratch = pointers.scratch + scratchOffsets[block]
                let states = pointers.states + rows.lowerBound * hidden
                if index >= 0 {
                    let layer = layers[index]
                    let packed = packedLayers.isEmpty ? nil : packedLayers[index]
                    let sum = pointers.sum + rows.lowerBound * hidden
                    let expanded = pointers.expanded + rows.lowerBound * intermediate
                    project(
                        pointers.context + rows.lowerBound * hidden,
                        rowCount: count,
                        inputDimension: hidden,
                        weight: layer.attentionOutputWeight,
                        bias: layer.attentionOutputBias,
                        packed: packed?.attentionOutput,
                        residual: states,
                        into: sum,
                        scratch: scratch
                    )
                    normalizeLayer(
                        sum,
                        rowCount: count,
                        scale: layer.attentionNormScale,
                        bias: layer.attentionNormBias,
                        epsilon: epsilon,
                        into: states
                    )
                    project(
                        states,
                        rowCount: count,
                        inputDimension: hidden,
                        weight: layer.intermediateWeight,
                        bias: layer.intermediateBias,
                        packed: packed?.intermediate,
                        residual: nil,
                        into: expanded,
                        scratch: scratch
                    )
                    applyGELU(expanded, count: count * intermediate)
                    project(
                        expanded,
                        rowCount: count,
                        inputDimension: intermediate,
                        weight: layer.outputWeight,
                        bias: layer.outputBias,
                        packed: packed?.output,
                        residual: states,
                        into: sum,
                        scratch: scratch
                    )
                    normalizeLayer(
                        sum,
                        rowCount: count,
                        scale: layer.outputNormScale,
                        bias: layer.outputNormBias,
                        epsilon: epsilon,
                        into: states
                    )
                }
                if index + 1 < layers.count {
                    // Q, K and V in one product: [rows, 3·hidden].
                    project(
                        states,
                        rowCount: count,
                        inputDimension: hidden,
                        weight: layers[index + 1].queryKeyValueWeight,
                        bias: layers[index + 1].queryKeyValueBias,
                        packed: packedLayers.isEmpty ? nil : packedLayers[index + 1].queryKeyValue,
                        residual: nil,
                        into: pointers.queryKeyValue + rows.lowerBound * 3 * hidden,
                        scratch: scratch
                    )
                }
            }
            ParallelFor.run(taskCount: blocks.count, workerCount: threadCount) { rowStages($0, after: -1) }
            for index in layers.indices {
                attention(queryKeyValue: pointers.queryKeyValue, rowStarts: rowStarts, into: pointers.context)
                ParallelFor.run(taskCount: blocks.count, workerCount: threadCount) {
                    rowStages($0, after: index)
                }
            }
            return statesBase
        }
    }

    /// Writes word + position + token-type-0 embeddings, LayerNormed, for every token.
    private func embed(_ batch: [[Int32]], rowStarts: [Int], into states: UnsafeMutablePointer<Float>) {
        let hidden = configuration.hiddenDimension
        weights.wordEmbeddings.withUnsafeBufferPointer { words in
            weights.positionEmbeddings.withUnsafeBufferPointer { positions in
                weights.tokenTypeEmbedding.withUnsafeBufferPointer { tokenType in
                    for (index, sequence) in batch.enumerated() {
                        for (position, id) in sequence.enumerated() {
                            let row = states + (rowStarts[index] + position) * hidden
                            let word = words.baseAddress! + Int(id) * hidden
                            let place = positions.baseAddress! + position * hidden
                            for column in 0..<hidden {
                                row[column] = word[column] + place[column] + tokenType[column]
                            }
                        }
                    }
                }
            }
        }
        normalizeLayer(
            states,
            rowCount: rowStarts.last!,
            scale: weights.embeddingNormScale,
            bias: weights.embeddingNormBias,
            epsilon: configuration.layerNormEpsilon,
            into: states
        )
    }

    /// A projection at the model's precision: the packed layer when there is one, else float32 ``linear``.
    private func project(
        _ input: UnsafePointer<Float>,
        rowCount: Int,
        inputDimension: Int,
        weight: [Float],
        bias: [Float],
        packed: PackedLinear?,
        residual: UnsafePointer<Float>?,
        into output: UnsafeMutablePointer<Float>,
        scratch: UnsafeMutableRawPointer
    ) {
        if let packed {
            packed.apply(input, rowCount: rowCount, residual: residual, into: output, scratch: scratch)
        } else {
            linear(
                input,
                rowCount: rowCount,
                inputDimension: inputDimension,
                weight: weight,
                bias: bias,
                residual: residual,
                into: output
            )
        }
    }

    /// `output = input · weightᵀ + bias (+ residual)` for `[rowCount, inputDimension]` input and a
    /// `[outputDimension, inputDimension]` weight.
    private func linear(
        _ input: UnsafePointer<Float>,
        rowCount: Int,
        inputDimension: Int,
        weight: [Float],
        bias: [Float],
        residual: UnsafePointer<Float>?,
        into output: UnsafeMutablePointer<Float>
    ) {
        let outputDimension = bias.count
        bias.withUnsafeBufferPointer { bias in
            for row in 0..<rowCount {
                let target = output + row * outputDimension
                if let residual {
                    let source = residual + row * outputDimension
                    for column in 0..<outputDimension { target[column] = source[column] + bias[column] }
                } else {
                    target.update(from: bias.baseAddress!, count: outputDimension)
                }
            }
        }
        weight.withUnsafeBufferPointer { weight in
            GEMM.multiply(
                rows: rowCount,
                columns: outputDimension,
                depth: inputDimension,
                alpha: 1,
                a: input,
                aStride: inputDimension,
                b: weight.baseAddress!,
                bStride: inputDimension,
                bTransposed: true,
                beta: 1,
                c: output,
                cStride: outputDimension
            )
        }
    }

    /// Scaled dot-product attention per (sequence, head), written to `context` `[rows, hidden]`.
    private func attention(
        queryKeyValue: UnsafePointer<Float>,
        rowStarts: [Int],
        into context: UnsafeMutablePointer<Float>
    ) {
        let hidden = configuration.hiddenDimension
        let headCount = configuration.headCount
        let headDimension = configuration.headDimension
        let sequenceCount = rowStarts.count - 1
        // Longest sequences first, so the last tasks handed out are the cheap ones.
        let tokenCounts: [Int] = (0..<sequenceCount).map { rowStarts[$0 + 1] - rowStarts[$0] }
        let order: [Int] = (0..<sequenceCount).sorted { tokenCounts[$0] > tokenCounts[$1] }
        let longest: Int = tokenCounts.max() ?? 0
        let taskCount = sequenceCount * headCount
        let workerCount = min(threadCount, taskCount)
        let scale = 1 / Float(headDimension).squareRoot()
        let shared = AttentionPointers(queryKeyValue: queryKeyValue, context: context)
        // One scores matrix per worker, [longest, longest], reused by every task the worker runs.
        let scratch = UnsafeMutablePointer<Float>.allocate(capacity: max(1, workerCount) * longest * longest)
        defer { scratch.deallocate() }
        let scratchBase = AttentionScratch(base: scratch)
        ParallelFor.runChunked(taskCount: taskCount, workerCount: workerCount) { task, worker in
            let scores = scratchBase.base + worker * longest * longest
            let sequence = order[task / headCount]
            let head = task % headCount
            let start = rowStarts[sequence]
            let tokenCount = tokenCounts[sequence]
            let stride = 3 * hidden
            let query = shared.queryKeyValue + start * stride + head * headDimension
            let key = query + hidden
            let value = query + 2 * hidden
            // scores = scale · Q Kᵀ, [tokenCount, tokenCount]
            GEMM.multiply(
                rows: tokenCount,
                columns: tokenCount,
                depth: headDimension,
                alpha: scale,
                a: query,
                aStride: stride,
                b: key,
                bStride: stride,
                bTransposed: true,
                beta: 0,
                c: scores,
                cStride: tokenCount
            )
            softmaxRows(scores, rowCount: tokenCount, columnCount: tokenCount)
            // context[:, head] = scores · V, [tokenCount, headDimension]
            GEMM.multiply(
                rows: tokenCount,
                columns: headDimension,
                depth: tokenCount,
                alpha: 1,
                a: scores,
                aStride: tokenCount,
                b: value,
                bStride: stride,
                bTransposed: false,
                beta: 0,
                c: shared.context + start * hidden + head * headDimension,
                cStride: hidden
            )
        }
    }
}

/// The forward pass's matrices, shared by the workers of one parallel region.
private struct LayerPointers: @unchecked Sendable {
    // @unchecked: every worker reads and writes only its own block of rows (or its own (sequence, head) block in
    // attention), and the pointers do not outlive `runPacked(...)`.
    let states: UnsafeMutablePointer<Float>
    let queryKeyValue: UnsafeMutablePointer<Float>
    let context: UnsafeMutablePointer<Float>
    let sum: UnsafeMutablePointer<Float>
    let expanded: UnsafeMutablePointer<Float>
    /// The packed kernels' scratch; each block uses its own disjoint range.
    let scratch: UnsafeMutableRawPointer
}

/// Base pointers shared by the attention workers; each worker writes a disjoint block of `context`.
private struct AttentionPointers: @unchecked Sendable {
    // @unchecked: the pointers are read-only (`queryKeyValue`) or written at disjoint
    // (sequence, head) blocks (`context`), and they do not outlive `attention(...)`.
    let queryKeyValue: UnsafePointer<Float>
    let context: UnsafeMutablePointer<Float>
}

/// The attention workers' score matrices; worker `w` uses only its own `[longest, longest]` block.
private struct AttentionScratch: @unchecked Sendable {
    // @unchecked: each worker index is used by one thread at a time (``ParallelFor/runChunked``), and the
    // buffer does not outlive `attention(...)`.
    let base: UnsafeMutablePointer<Float>
}
