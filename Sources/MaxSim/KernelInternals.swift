internal import CMaxSimKernels
import TesseraPlatform

/// Documents as the C kernels see them: element storage plus each document's first and end row.
struct DocumentLayout: Sendable {
    let elements: TokenElements
    /// Packed: the `count + 1` offsets (ends are the offsets shifted by one). Padded: each item's first row.
    let begins: [Int]
    /// Padded only: each item's end row. `nil` for packed documents.
    let ends: [Int]?
    let dimension: Int
    let count: Int

    init(_ documents: Multivectors) {
        elements = documents.elements
        begins = documents.offsets
        ends = nil
        dimension = documents.dimension
        count = documents.count
    }

    init(_ documents: PaddedMultivectors) {
        elements = documents.elements
        begins = (0..<documents.count).map { $0 * documents.paddedLength }
        ends = (0..<documents.count).map { $0 * documents.paddedLength + documents.lengths[$0] }
        dimension = documents.dimension
        count = documents.count
    }

    func tokenCount(of index: Int) -> Int {
        if let ends { return ends[index] - begins[index] }
        return begins[index + 1] - begins[index]
    }

    /// Runs `body` with the C view of these documents; the view is valid only inside `body`.
    func withKernelView<R>(_ body: (UnsafePointer<tsr_documents>) -> R) -> R {
        precondition(Int.bitWidth == 64, "offsets are passed to C as int64_t")
        return elements.withUnsafeRawPointers { rows, scales in
            begins.withUnsafeBufferPointer { beginBuffer in
                // Int is 64 bits (checked above), so [Int] storage is int64_t storage.
                let begin = UnsafeRawPointer(beginBuffer.baseAddress!).assumingMemoryBound(to: Int64.self)
                func run(_ end: UnsafePointer<Int64>) -> R {
                    var view = tsr_documents(
                        rows: rows,
                        scales: scales,
                        row_begin: begin,
                        row_end: end,
                        element: elements.elementType.kernelCode,
                        dimension: Int32(dimension)
                    )
                    return withUnsafePointer(to: &view) { body($0) }
                }
                if let ends {
                    return ends.withUnsafeBufferPointer {
                        run(UnsafeRawPointer($0.baseAddress!).assumingMemoryBound(to: Int64.self))
                    }
                }
                // Packed: document d ends where d + 1 begins. There are count + 1 offsets, so the shifted
                // pointer stays inside the buffer for every d < count.
                return run(begin + 1)
            }
        }
    }
}

/// One or more queries packed into the panel layout of the kernels.
struct PackedQueryBlock: Sendable {
    var floatPanels: [Float] = []
    var integerPanels: [Int16] = []
    var rowScales: [Float] = []
    /// `queryCount + 1` offsets of each query's rows within the block.
    var segmentOffsets: [Int32]
    var packedRowCount: Int
    var integer: Bool

    var queryCount: Int { segmentOffsets.count - 1 }
    var realRowCount: Int { Int(segmentOffsets[segmentOffsets.count - 1]) }

    /// Packs the token rows `ranges[i]` of `source` (one query each).
    /// - Parameters:
    ///   - source: the tokens the queries come from.
    ///   - dimension: values per token.
    ///   - ranges: each query's token rows in `source`.
    ///   - integer: pack int8 rows for the integer kernel (quantising Float rows per token).
    init(source: TokenElements, dimension: Int, ranges: [Range<Int>], integer: Bool) {
        var offsets: [Int32] = [0]
        offsets.reserveCapacity(ranges.count + 1)
        for range in ranges { offsets.append(offsets[offsets.count - 1] + Int32(range.count)) }
        let rowCount = Int(offsets[offsets.count - 1])
        segmentOffsets = offsets
        packedRowCount = Int(tsr_packed_row_count(Int32(rowCount)))
        self.integer = integer
        if integer {
            var values = [Int8]()
            values.reserveCapacity(rowCount * dimension)
            var scales = [Float]()
            scales.reserveCapacity(packedRowCount)
            if case .int8(let sourceValues, let sourceScales) = source.arrayBacked {
                for range in ranges {
                    values.append(
                        contentsOf: sourceValues[(range.lowerBound * dimension)..<(range.upperBound * dimension)]
                    )
                    scales.append(contentsOf: sourceScales[range])
                }
            } else {
                let rows = Self.floatRows(source: source, dimension: dimension, ranges: ranges)
                let quantized = Int8Quantizer.quantize(rows, dimension: dimension)
                values = quantized.values
                scales = quantized.scales
            }
            scales.append(contentsOf: repeatElement(0, count: packedRowCount - rowCount))
            rowScales = scales
            let panelCount = packedRowCount * Int(tsr_even_dimension(Int32(dimension)))
            integerPanels = [Int16](unsafeUninitializedCapacity: panelCount) { buffer, initialized in
                values.withUnsafeBufferPointer {
                    tsr_pack_query_i8($0.baseAddress, Int32(rowCount), Int32(dimension), buffer.baseAddress)
                }
                initialized = panelCount
            }
        } else {
            let rows = Self.floatRows(source: source, dimension: dimension, ranges: ranges)
            let panelCount = packedRowCount * dimension
            floatPanels = [Float](unsafeUninitializedCapacity: panelCount) { buffer, initialized in
                rows.withUnsafeBufferPointer {
                    tsr_pack_query_f32($0.baseAddress, Int32(rowCount), Int32(dimension), buffer.baseAddress)
                }
                initialized = panelCount
            }
        }
    }

    private static func floatRows(source: TokenElements, dimension: Int, ranges: [Range<Int>]) -> [Float] {
        var rows = [Float]()
        rows.reserveCapacity(ranges.reduce(0) { $0 + $1.count } * dimension)
        for range in ranges {
            let values = (range.lowerBound * dimension)..<(range.upperBound * dimension)
            switch source {
            case .float32(let v): rows.append(contentsOf: v[values])
            case .float16(let v): rows.append(contentsOf: v[values].lazy.map { Float($0) })
            case .bfloat16(let v): rows.append(contentsOf: v[values].lazy.map(\.floatValue))
            case .int8(let v, let s):
                for index in values { rows.append(Float(v[index]) * s[index / dimension]) }
            case .mapped(let tokens): tokens.appendFloatValues(values, dimension: dimension, to: &rows)
            }
        }
        return rows
    }

    /// Runs `body` with the C view of this block; valid only inside `body`.
    func withKernelView<R>(_ body: (UnsafePointer<tsr_query_block>) -> R) -> R {
        segmentOffsets.withUnsafeBufferPointer { segments in
            rowScales.withUnsafeBufferPointer { scales in
                func run(_ packed: UnsafeRawPointer?) -> R {
                    var view = tsr_query_block(
                        packed: packed,
                        row_scales: integer ? scales.baseAddress : nil,
                        segment_offsets: segments.baseAddress,
                        segment_count: Int32(queryCount),
                        packed_row_count: Int32(packedRowCount),
                        integer: integer ? 1 : 0
                    )
                    return withUnsafePointer(to: &view) { body($0) }
                }
                return integer
                    ? integerPanels.withUnsafeBytes { run($0.baseAddress) }
                    : floatPanels.withUnsafeBytes { run($0.baseAddress) }
            }
        }
    }
}

/// Sends raw pointers into worker closures.
///
/// `@unchecked Sendable`: the pointers refer to buffers that outlive the parallel loop, and workers write only
/// to disjoint ranges of them (or read), so no two threads touch the same memory unsynchronised.
struct SendablePointers: @unchecked Sendable {
    let query: UnsafePointer<tsr_query_block>
    let documents: UnsafePointer<tsr_documents>
    let ids: UnsafePointer<Int64>?
    let scores: UnsafeMutablePointer<Float>
    let argmax: UnsafeMutablePointer<Int32>?
}

extension MaxSimKernel {
    /// Documents handed to one worker at a time: about 64 K tokens, and enough chunks to balance the threads.
    func chunkSize(documentCount: Int, tokenCount: Int) -> Int {
        guard documentCount > 0 else { return 1 }
        let tokensPerDocument = max(1, tokenCount / documentCount)
        let byTokens = max(1, 65_536 / tokensPerDocument)
        let byBalance = max(1, documentCount / (threadCount * 8))
        return min(byTokens, byBalance)
    }

    /// Runs `body(chunkIndex, worker)` for chunks `0 ..< chunkCount` on up to `threadCount` threads, each chunk
    /// once. Chunks are taken in increasing order from a shared counter; `worker` identifies the thread's slot.
    func parallelForEachChunk(chunkCount: Int, _ body: @Sendable (_ chunk: Int, _ worker: Int) -> Void) {
        ParallelFor.runChunked(taskCount: chunkCount, workerCount: threadCount, body)
    }

    /// Scores documents (all, or those in `ids`) against every query of `block`.
    ///
    /// - Returns: scores `[documentCount, queryCount]` and, when `withArgmax`, matched rows
    ///   `[documentCount, block.realRowCount]`.
    func run(
        block: PackedQueryBlock,
        documents: DocumentLayout,
        ids: [Int]?,
        withArgmax: Bool
    ) -> (scores: [Float], argmax: [Int32]) {
        let count = ids?.count ?? documents.count
        let queryCount = block.queryCount
        let argmaxStride = block.realRowCount
        var scores = [Float](repeating: 0, count: count * queryCount)
        var argmax = [Int32](repeating: -1, count: withArgmax ? count * argmaxStride : 0)
        guard count > 0, queryCount > 0 else { return (scores, argmax) }
        let totalTokens: Int
        if let ids {
            totalTokens = ids.reduce(0) { $0 + documents.tokenCount(of: $1) }
        } else {
            totalTokens =
                documents.ends.map { zip($0, documents.begins).reduce(0) { $0 + $1.0 - $1.1 } }
                ?? documents.begins[documents.count]
        }
        let chunk = chunkSize(documentCount: count, tokenCount: totalTokens)
        let chunkCount = (count + chunk - 1) / chunk
        let isa = instructionSet.code
        let scratchBytes = tsr_scratch_byte_count(Int32(documents.dimension), Int32(block.packedRowCount))
        let workerCount = min(threadCount, chunkCount)
        let scratch = UnsafeMutableRawPointer.allocate(byteCount: scratchBytes * workerCount, alignment: 64)
        defer { scratch.deallocate() }
        let scratchAddress = UInt(bitPattern: scratch)
        let idValues = ids ?? []
        block.withKernelView { queryView in
            documents.withKernelView { documentView in
                idValues.withUnsafeBufferPointer { idBuffer in
                    scores.withUnsafeMutableBufferPointer { scoreBuffer in
                        argmax.withUnsafeMutableBufferPointer { argmaxBuffer in
                            let pointers = SendablePointers(
                                query: queryView,
                                documents: documentView,
                                ids: ids == nil
                                    ? nil : UnsafeRawPointer(idBuffer.baseAddress!).assumingMemoryBound(to: Int64.self),
                                scores: scoreBuffer.baseAddress!,
                                argmax: withArgmax ? argmaxBuffer.baseAddress : nil
                            )
                            parallelForEachChunk(chunkCount: chunkCount) { chunkIndex, worker in
                                let start = chunkIndex * chunk
                                let end = min(count, start + chunk)
                                let workerScratch =
                                    UnsafeMutableRawPointer(bitPattern: scratchAddress)!
                                    + worker * scratchBytes
                                tsr_score_documents(
                                    isa,
                                    pointers.query,
                                    pointers.documents,
                                    pointers.ids.map { $0 + start },
                                    Int64(start),
                                    Int64(end - start),
                                    pointers.scores + start * queryCount,
                                    pointers.argmax.map { $0 + start * argmaxStride },
                                    Int64(argmaxStride),
                                    workerScratch
                                )
                            }
                        }
                    }
                }
            }
        }
        return (scores, argmax)
    }
}
