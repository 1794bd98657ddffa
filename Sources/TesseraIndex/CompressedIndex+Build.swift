import Foundation
import TesseraPlatform

/// Where a build reads token vectors from, a few documents at a time, so that the whole float corpus is never
/// held at once.
public struct TokenSource {
    /// The token dimension.
    public var dimension: Int
    /// The token count of every document, in document order.
    public var documentTokenCounts: [Int]
    /// Returns the token vectors of a range of documents, `[tokens, dimension]` row-major, in order.
    public var read: (Range<Int>) throws -> [Float]

    /// Creates a source.
    /// - Parameters:
    ///   - dimension: The token dimension.
    ///   - documentTokenCounts: Tokens per document.
    ///   - read: Reads the vectors of a document range.
    public init(dimension: Int, documentTokenCounts: [Int], read: @escaping (Range<Int>) throws -> [Float]) {
        self.dimension = dimension
        self.documentTokenCounts = documentTokenCounts
        self.read = read
    }
}

/// How to build a compressed index.
public struct CompressedIndexOptions: Sendable, Equatable {
    /// The number of centroids; `nil` for ``defaultCentroidCount(tokenCount:)``.
    public var centroidCount: Int?
    /// Residual bits per dimension: 1, 2 or 4.
    public var bitCount: Int
    /// How many tokens k-means trains on; `nil` for ``defaultTrainingTokenCount(centroidCount:tokenCount:)``.
    public var trainingTokenCount: Int?
    /// k-means iterations.
    public var iterationCount: Int
    /// The seed for the training sample and the k-means seeding.
    public var seed: UInt64
    /// About how many tokens are read, assigned and encoded at a time (bounds the build's float memory).
    public var chunkTokenCount: Int

    /// Creates options.
    /// - Parameters:
    ///   - centroidCount: Centroids, or `nil` for the default.
    ///   - bitCount: Residual bits per dimension (default 2).
    ///   - trainingTokenCount: Training sample size, or `nil` for the default.
    ///   - iterationCount: k-means iterations (default 8).
    ///   - seed: The seed.
    ///   - chunkTokenCount: Tokens per streaming chunk (default 65,536).
    public init(
        centroidCount: Int? = nil,
        bitCount: Int = 2,
        trainingTokenCount: Int? = nil,
        iterationCount: Int = 8,
        seed: UInt64 = 0x7E55_E7A,
        chunkTokenCount: Int = 65_536
    ) {
        self.centroidCount = centroidCount
        self.bitCount = bitCount
        self.trainingTokenCount = trainingTokenCount
        self.iterationCount = iterationCount
        self.seed = seed
        self.chunkTokenCount = chunkTokenCount
    }

    /// ColBERTv2's centroid count, `2^floor(log2(16·√tokenCount))`, at most `tokenCount`.
    /// - Parameter tokenCount: The tokens to index.
    /// - Returns: The count (at least 1).
    public static func colbertCentroidCount(tokenCount: Int) -> Int {
        guard tokenCount > 1 else { return 1 }
        let exponent = Int(log2(16 * Double(tokenCount).squareRoot()).rounded(.down))
        return max(1, min(tokenCount, 1 << exponent))
    }

    /// The default centroid count: ColBERTv2's count divided by 4 (16,384 → 4,096 for SciFact's 1.24 M tokens).
    ///
    /// At 384 dimensions, ColBERTv2's count makes assigning every token cost 2·T·K·384 flops (15.6 TFLOP for
    /// SciFact, about 100 s on 2 cores) and scoring each query against the centroids 0.4 GFLOP; a quarter of it
    /// builds in under a minute and answers queries in a few milliseconds, at the nDCG@10 shown in the README.
    /// - Parameter tokenCount: The tokens to index.
    /// - Returns: The count (at least 1, at most `tokenCount`).
    public static func defaultCentroidCount(tokenCount: Int) -> Int {
        max(1, min(tokenCount, colbertCentroidCount(tokenCount: tokenCount) / 4))
    }

    /// The default training sample: 32 tokens per centroid, at least 65,536, at most every token.
    /// - Parameters:
    ///   - centroidCount: The centroids to train.
    ///   - tokenCount: The tokens to index.
    /// - Returns: The sample size.
    public static func defaultTrainingTokenCount(centroidCount: Int, tokenCount: Int) -> Int {
        min(tokenCount, max(65_536, 32 * centroidCount))
    }
}

/// A build's progress: the stage and how far it is.
public struct BuildProgress: Sendable {
    /// `"sampling"`, `"training"` or `"encoding"`.
    public var stage: String
    /// Units done in this stage (documents, or k-means iterations).
    public var completed: Int
    /// Units in this stage.
    public var total: Int
}

extension CompressedIndex {
    /// Builds an index: samples training tokens, trains centroids with k-means, fits the residual codec on the
    /// sample's residuals, then streams every document, assigning and encoding its tokens.
    ///
    /// Memory: the training sample in floats, one chunk of documents in floats, and the codes of every token
    /// (``ResidualCodec/bytesPerToken`` + 8 bytes each); never the whole corpus in floats.
    /// - Parameters:
    ///   - source: The documents' token vectors.
    ///   - documentKeys: One key per document (at most ``maximumKeyByteCount`` bytes).
    ///   - options: Centroids, bits, sample, seed.
    ///   - progress: Called as the build advances, from the calling thread.
    /// - Returns: The contents, to write with ``IndexContents/write(to:)``.
    /// - Throws: ``IndexError/Code/invalidArgument`` for inconsistent input (no tokens, a key count that does not
    ///   match, a bad bit count); errors thrown by `source.read`, wrapped as ``IndexError/Code/io``.
    /// - Complexity: O(sample × K × dim × iterations + T × K × dim) flops, through BLAS.
    public static func build(
        source: TokenSource,
        documentKeys: [[UInt8]],
        options: CompressedIndexOptions = CompressedIndexOptions(),
        progress: ((BuildProgress) -> Void)? = nil
    ) throws(IndexError) -> IndexContents {
        let started = Date()
        let dimension = source.dimension
        let documentCount = source.documentTokenCounts.count
        guard documentKeys.count == documentCount else {
            throw IndexError(
                .invalidArgument,
                "\(documentKeys.count) keys for \(documentCount) documents",
                field: "documentKeys"
            )
        }
        var documentTokenOffsets: [UInt64] = [0]
        documentTokenOffsets.reserveCapacity(documentCount + 1)
        for (document, count) in source.documentTokenCounts.enumerated() {
            guard count >= 0 else {
                throw IndexError(
                    .invalidArgument,
                    "negative token count",
                    field: "documentTokenCounts",
                    offset: document
                )
            }
            documentTokenOffsets.append(documentTokenOffsets[document] + UInt64(count))
        }
        let tokenCount = Int(documentTokenOffsets[documentCount])
        guard tokenCount > 0 else {
            throw IndexError(.invalidArgument, "there are no tokens to index", field: "source")
        }
        guard documentCount <= Int(UInt32.max) else {
            throw IndexError(.invalidArgument, "\(documentCount) documents (at most 2³²−1)", field: "source")
        }
        let centroidCount = min(
            tokenCount,
            options.centroidCount ?? CompressedIndexOptions.defaultCentroidCount(tokenCount: tokenCount)
        )
        guard centroidCount >= 1 else {
            throw IndexError(.invalidArgument, "centroidCount must be at least 1", field: "centroidCount")
        }
        let sampleCount = min(
            tokenCount,
            max(
                centroidCount,
                options.trainingTokenCount
                    ?? CompressedIndexOptions.defaultTrainingTokenCount(
                        centroidCount: centroidCount,
                        tokenCount: tokenCount
                    )
            )
        )
        let chunks = documentChunks(offsets: documentTokenOffsets, chunkTokenCount: max(1, options.chunkTokenCount))

        // 1. A uniform sample of tokens (selection sampling: each token is taken with probability
        //    needed / remaining), gathered chunk by chunk.
        var generator = SplitMix64(seed: options.seed)
        var sample: [Float] = []
        sample.reserveCapacity(sampleCount * dimension)
        var needed = sampleCount
        var remaining = tokenCount
        for (index, chunk) in chunks.enumerated() where needed > 0 {
            let values = try read(source, chunk)
            let rows = values.count / dimension
            for row in 0..<rows where needed > 0 {
                if generator.next() % UInt64(remaining) < UInt64(needed) {
                    sample.append(contentsOf: values[(row * dimension)..<((row + 1) * dimension)])
                    needed -= 1
                }
                remaining -= 1
            }
            progress?(BuildProgress(stage: "sampling", completed: index + 1, total: chunks.count))
        }

        // 2. Centroids.
        let centroids = try KMeans.train(
            points: sample,
            dimension: dimension,
            options: KMeansOptions(
                centroidCount: centroidCount,
                iterationCount: options.iterationCount,
                seed: options.seed
            ),
            progress: { iteration, total in
                progress?(BuildProgress(stage: "training", completed: iteration, total: total))
            }
        )

        // 3. The codec, from the sample's residuals.
        let sampleCells = KMeans.assign(points: sample, dimension: dimension, centroids: centroids)
        var residuals = sample
        for row in 0..<sampleCells.count {
            let cell = Int(sampleCells[row])
            for component in 0..<dimension {
                residuals[row * dimension + component] -= centroids[cell * dimension + component]
            }
        }
        sample = []
        let codec = try ResidualCodec.fit(residuals: residuals, dimension: dimension, bitCount: options.bitCount)
        residuals = []
        let trained = Date()

        // 4. Every token: its cell and its code, in document order.
        let bytesPerToken = codec.bytesPerToken
        var tokenCells: [UInt32] = []
        tokenCells.reserveCapacity(tokenCount)
        var documentOrderCodes: [UInt8] = []
        documentOrderCodes.reserveCapacity(tokenCount * bytesPerToken)
        for (index, chunk) in chunks.enumerated() {
            let values = try read(source, chunk)
            let encoded = encode(values, dimension: dimension, centroids: centroids, codec: codec)
            tokenCells.append(contentsOf: encoded.cells)
            documentOrderCodes.append(contentsOf: encoded.codes)
            progress?(BuildProgress(stage: "encoding", completed: index + 1, total: chunks.count))
        }

        // 5. Group by cell (a stable counting sort: within a cell, tokens stay in document order).
        var cellOffsets = [UInt64](repeating: 0, count: centroidCount + 1)
        for cell in tokenCells { cellOffsets[Int(cell) + 1] += 1 }
        for cell in 0..<centroidCount { cellOffsets[cell + 1] += cellOffsets[cell] }
        var next = cellOffsets
        var tokenDocuments = [UInt32](repeating: 0, count: tokenCount)
        var codes = [UInt8](repeating: 0, count: tokenCount * bytesPerToken)
        documentOrderCodes.withUnsafeBufferPointer { source in
            codes.withUnsafeMutableBufferPointer { target in
                var token = 0
                for document in 0..<documentCount {
                    for _ in documentTokenOffsets[document]..<documentTokenOffsets[document + 1] {
                        let cell = Int(tokenCells[token])
                        let position = Int(next[cell])
                        next[cell] += 1
                        tokenDocuments[position] = UInt32(document)
                        let from = source.baseAddress! + token * bytesPerToken
                        (target.baseAddress! + position * bytesPerToken).update(from: from, count: bytesPerToken)
                        token += 1
                    }
                }
            }
        }
        let finished = Date()
        let report = BuildReport(
            centroidCount: centroidCount,
            bitCount: codec.bitCount,
            dimension: dimension,
            trainingTokenCount: sampleCount,
            iterationCount: options.iterationCount,
            seed: options.seed,
            documentCount: documentCount,
            tokenCount: tokenCount,
            trainingSeconds: trained.timeIntervalSince(started),
            encodingSeconds: finished.timeIntervalSince(trained),
            buildSeconds: finished.timeIntervalSince(started)
        )
        return IndexContents(
            centroids: centroids,
            codec: codec,
            cellOffsets: cellOffsets,
            tokenDocuments: tokenDocuments,
            codes: codes,
            documentTokenOffsets: documentTokenOffsets,
            documentKeys: documentKeys,
            report: report
        )
    }

    /// Assigns token rows to their nearest centroids and encodes their residuals.
    static func encode(
        _ values: [Float],
        dimension: Int,
        centroids: [Float],
        codec: ResidualCodec
    ) -> (cells: [UInt32], codes: [UInt8]) {
        let rows = values.count / dimension
        guard rows > 0 else { return ([], []) }
        let assigned = KMeans.assign(points: values, dimension: dimension, centroids: centroids)
        var codes: [UInt8] = []
        codes.reserveCapacity(rows * codec.bytesPerToken)
        var residual = [Float](repeating: 0, count: dimension)
        for row in 0..<rows {
            let cell = Int(assigned[row])
            for component in 0..<dimension {
                residual[component] = values[row * dimension + component] - centroids[cell * dimension + component]
            }
            codec.encode(residual.span, appendingTo: &codes)
        }
        return (assigned.map { UInt32($0) }, codes)
    }

    /// Splits documents into consecutive ranges of about `chunkTokenCount` tokens (at least one document each).
    static func documentChunks(offsets: [UInt64], chunkTokenCount: Int) -> [Range<Int>] {
        var chunks: [Range<Int>] = []
        var start = 0
        let documentCount = offsets.count - 1
        while start < documentCount {
            var end = start + 1
            while end < documentCount, offsets[end + 1] - offsets[start] <= UInt64(chunkTokenCount) { end += 1 }
            chunks.append(start..<end)
            start = end
        }
        return chunks
    }

    private static func read(_ source: TokenSource, _ documents: Range<Int>) throws(IndexError) -> [Float] {
        let values: [Float]
        do {
            values = try source.read(documents)
        } catch {
            throw IndexError(.io, "reading documents \(documents) failed: \(error)", field: "source")
        }
        let expected = source.documentTokenCounts[documents].reduce(0, +) * source.dimension
        guard values.count == expected else {
            throw IndexError(
                .invalidArgument,
                "documents \(documents) gave \(values.count) values, expected \(expected)",
                field: "source",
                offset: documents.lowerBound
            )
        }
        return values
    }
}
