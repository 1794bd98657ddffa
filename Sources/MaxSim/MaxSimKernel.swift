import Foundation

/// Which document token each query token matched, for every scored item.
///
/// Item `i`'s matches are `self[i]`: one document token index per query token (relative to the document's
/// first token), or −1 when the document has no tokens.
public struct MatchedTokens: Sendable, Equatable {
    /// All matches back to back.
    public let indices: [Int32]
    /// `itemCount + 1` offsets into ``indices``.
    public let offsets: [Int]

    /// The number of scored items.
    public var count: Int { offsets.count - 1 }

    /// The matches of item `index`, one per query token.
    public subscript(index: Int) -> ArraySlice<Int32> { indices[offsets[index]..<offsets[index + 1]] }
}

/// Scores and, when asked for, the matched document tokens.
public struct MaxSimResult: Sendable, Equatable {
    /// One score per scored item, in the order the entry point documents.
    public var scores: [Float]
    /// The argmax for each scored item, when requested.
    public var matches: MatchedTokens?
}

/// A (query, document) pair to score.
public struct MaxSimPair: Sendable, Hashable {
    /// Index of the query.
    public var query: Int
    /// Index of the document.
    public var document: Int

    /// Creates a pair.
    /// - Parameters:
    ///   - query: index of the query.
    ///   - document: index of the document.
    public init(query: Int, document: Int) {
        self.query = query
        self.document = document
    }
}

/// A document and its score, as returned by top-k selection.
public struct ScoredDocument: Sendable, Hashable {
    /// The document's index.
    public var index: Int
    /// Its MaxSim score.
    public var score: Float

    /// Creates a scored document.
    /// - Parameters:
    ///   - index: the document's index.
    ///   - score: its score.
    public init(index: Int, score: Float) {
        self.index = index
        self.score = score
    }
}

/// The MaxSim kernels: `score(Q, D) = Σ_i max_j q_i · d_j` over token vectors.
///
/// ## Numerics
/// Every similarity `q_i · d_j` is one fused multiply-add chain in Float over `k = 0 ..< dimension`; each query
/// token keeps the first document token reaching its maximum (a strictly greater similarity replaces it, so
/// ties go to the lowest token index); a score is the sum of its query tokens' maxima in token order, in Float.
/// The bits of a pair's score therefore do not depend on the thread count, on the other documents or queries
/// in the call, nor on the instruction set. Float16 and BFloat16 documents are converted to Float exactly;
/// Int8 documents are either multiplied by their scale first (``Int8Mode/float``) or, by default, scored with
/// integer dot products against a per-token int8 quantisation of the query (``Int8Mode/integer``).
///
/// A document with no tokens scores 0 (each query token contributes 0) and its matches are −1.
/// NaN: a NaN similarity never wins a maximum, so a NaN document token is skipped; a query token whose every
/// similarity is NaN contributes −∞. Inputs are not checked for NaN (that would cost a pass over the data);
/// collections reject NaN when vectors are stored.
///
/// Tolerances against a Float64 reference are in the MaxSim module documentation.
public struct MaxSimKernel: Sendable {
    /// How Int8 documents are scored.
    public enum Int8Mode: String, Sendable, Hashable, CaseIterable {
        /// The query is quantised to int8 per token and dot products are exact 32-bit integer sums, scaled after.
        case integer
        /// Document values are multiplied by their scale and scored in Float against the Float query.
        case float
    }

    /// Threads a call may use (≥ 1).
    public var threadCount: Int
    /// The instruction-set variant.
    public var instructionSet: InstructionSet
    /// How Int8 documents are scored.
    public var int8Mode: Int8Mode

    /// Creates a kernel configuration.
    /// - Parameters:
    ///   - threadCount: threads per call; `nil` uses every active core.
    ///   - instructionSet: the variant to run; `nil` picks the fastest this CPU supports.
    ///   - int8Mode: how Int8 documents are scored.
    /// - Precondition: `threadCount` is positive and `instructionSet` is supported by this CPU.
    public init(threadCount: Int? = nil, instructionSet: InstructionSet? = nil, int8Mode: Int8Mode = .integer) {
        let threads = threadCount ?? ProcessInfo.processInfo.activeProcessorCount
        precondition(threads >= 1, "threadCount must be at least 1")
        let isa = instructionSet ?? .best
        precondition(isa.isSupported, "instruction set \(isa) is not supported by this CPU")
        self.threadCount = threads
        self.instructionSet = isa
        self.int8Mode = int8Mode
    }

    func usesIntegerKernel(for documents: TokenElements) -> Bool {
        documents.elementType == .int8 && int8Mode == .integer
    }

    static func checkDimensions(query: Int, documents: Int, argument: String) throws(MaxSimError) {
        guard query == documents else {
            throw MaxSimError(
                .dimensionMismatch,
                argument: argument,
                "queries have dimension \(query) but documents have \(documents)"
            )
        }
    }

    static func matches(_ argmax: [Int32], stride: Int, count: Int) -> MatchedTokens {
        MatchedTokens(indices: argmax, offsets: (0...count).map { $0 * stride })
    }
}
