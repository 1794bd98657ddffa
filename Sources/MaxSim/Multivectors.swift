/// One multivector: token vectors `[tokenCount, dimension]`, row-major, in one element type.
public struct Multivector: Sendable, Equatable {
    /// The values, `[tokenCount, dimension]`.
    public let elements: TokenElements
    /// Values per token.
    public let dimension: Int

    /// The number of tokens.
    public var tokenCount: Int { elements.valueCount / dimension }

    /// Wraps token values.
    /// - Parameters:
    ///   - elements: `[tokenCount, dimension]` values (for int8, one scale per token).
    ///   - dimension: values per token (> 0).
    /// - Throws: `MaxSimError` when the dimension is not positive, the values are not a whole number of
    ///   tokens, or int8 scales do not match the token count.
    public init(elements: TokenElements, dimension: Int) throws(MaxSimError) {
        try Multivectors.validate(elements: elements, dimension: dimension, argument: "elements")
        self.elements = elements
        self.dimension = dimension
    }

    /// Wraps Float32 token values.
    /// - Parameters:
    ///   - values: `[tokenCount, dimension]` Floats.
    ///   - dimension: values per token.
    /// - Throws: `MaxSimError` as ``init(elements:dimension:)``.
    public init(_ values: [Float], dimension: Int) throws(MaxSimError) {
        try self.init(elements: .float32(values), dimension: dimension)
    }
}

/// Many multivectors held packed: all tokens back to back in one `[tokenCount, dimension]` array, and
/// `count + 1` offsets (starting at 0) saying where each item's tokens begin and end.
///
/// This is the layout the kernels read directly; building one validates the offsets once, so scoring calls
/// do not re-check them.
public struct Multivectors: Sendable, Equatable {
    /// All tokens, `[tokenCount, dimension]`.
    public let elements: TokenElements
    /// `count + 1` token offsets: item i owns tokens `offsets[i] ..< offsets[i + 1]`.
    public let offsets: [Int]
    /// Values per token.
    public let dimension: Int

    /// The number of items.
    public var count: Int { offsets.count - 1 }
    /// The total number of tokens.
    public var tokenCount: Int { offsets[offsets.count - 1] }

    /// The tokens of item `index`.
    /// - Parameter index: the item.
    /// - Returns: its token range.
    public func tokenRange(of index: Int) -> Range<Int> { offsets[index]..<offsets[index + 1] }

    /// Wraps packed tokens.
    /// - Parameters:
    ///   - elements: `[tokenCount, dimension]` values.
    ///   - offsets: `count + 1` non-decreasing offsets starting at 0 and ending at the token count.
    ///   - dimension: values per token (> 0).
    /// - Throws: `MaxSimError` naming `offsets` and the first bad index, or the shape problem.
    public init(elements: TokenElements, offsets: [Int], dimension: Int) throws(MaxSimError) {
        try Self.validate(elements: elements, dimension: dimension, argument: "elements")
        guard !offsets.isEmpty else {
            throw MaxSimError(.invalidOffsets, argument: "offsets", "needs count + 1 entries; got none")
        }
        guard offsets[0] == 0 else {
            throw MaxSimError(.invalidOffsets, argument: "offsets", index: 0, "must start at 0; got \(offsets[0])")
        }
        let tokenCount = elements.valueCount / dimension
        for index in 1..<offsets.count where offsets[index] < offsets[index - 1] || offsets[index] > tokenCount {
            let problem =
                offsets[index] < offsets[index - 1]
                ? "decreases from \(offsets[index - 1]) to \(offsets[index])"
                : "is \(offsets[index]), past the token count \(tokenCount)"
            throw MaxSimError(.invalidOffsets, argument: "offsets", index: index, problem)
        }
        guard offsets[offsets.count - 1] == tokenCount else {
            throw MaxSimError(
                .invalidOffsets,
                argument: "offsets",
                index: offsets.count - 1,
                "must end at the token count \(tokenCount); got \(offsets[offsets.count - 1])"
            )
        }
        self.elements = elements
        self.offsets = offsets
        self.dimension = dimension
    }

    /// Packs a list of multivectors of one element type.
    /// - Parameters:
    ///   - items: the multivectors; all must have `dimension` values per token.
    ///   - dimension: values per token; needed when `items` is empty.
    /// - Throws: `MaxSimError` when an item's dimension or element type differs from the first's.
    public init(_ items: [Multivector], dimension: Int) throws(MaxSimError) {
        let elementType = items.first?.elements.elementType ?? .float32
        var offsets = [0]
        offsets.reserveCapacity(items.count + 1)
        for (index, item) in items.enumerated() {
            guard item.dimension == dimension else {
                throw MaxSimError(
                    .dimensionMismatch,
                    argument: "items",
                    index: index,
                    "dimension \(item.dimension), expected \(dimension)"
                )
            }
            guard item.elements.elementType == elementType else {
                throw MaxSimError(
                    .invalidShape,
                    argument: "items",
                    index: index,
                    "element type \(item.elements.elementType), expected \(elementType)"
                )
            }
            offsets.append(offsets[offsets.count - 1] + item.tokenCount)
        }
        var float32: [Float] = []
        var halves: [Float16] = []
        var bfloats: [BFloat16] = []
        var bytes: [Int8] = []
        var scales: [Float] = []
        for item in items {
            switch item.elements.arrayBacked {
            case .float32(let values): float32.append(contentsOf: values)
            case .float16(let values): halves.append(contentsOf: values)
            case .bfloat16(let values): bfloats.append(contentsOf: values)
            case .int8(let values, let itemScales):
                bytes.append(contentsOf: values)
                scales.append(contentsOf: itemScales)
            case .mapped: preconditionFailure("arrayBacked is never mapped")
            }
        }
        let elements: TokenElements
        switch elementType {
        case .float32: elements = .float32(float32)
        case .float16: elements = .float16(halves)
        case .bfloat16: elements = .bfloat16(bfloats)
        case .int8: elements = .int8(values: bytes, scales: scales)
        }
        try self.init(elements: elements, offsets: offsets, dimension: dimension)
    }

    /// Packs Float32 multivectors, converting them to `elementType`.
    /// - Parameters:
    ///   - items: each item's `[tokenCount, dimension]` Floats.
    ///   - dimension: values per token.
    ///   - elementType: the element type to store.
    /// - Throws: `MaxSimError` naming the item whose value count is not a multiple of `dimension`.
    public init(
        float32 items: [[Float]],
        dimension: Int,
        elementType: TokenElementType = .float32
    )
        throws(MaxSimError)
    {
        guard dimension > 0 else {
            throw MaxSimError(.dimensionMismatch, argument: "dimension", "must be positive; got \(dimension)")
        }
        var offsets = [0]
        offsets.reserveCapacity(items.count + 1)
        for (index, item) in items.enumerated() {
            guard item.count % dimension == 0 else {
                throw MaxSimError(
                    .dimensionMismatch,
                    argument: "items",
                    index: index,
                    "\(item.count) values are not a whole number of \(dimension)-value tokens"
                )
            }
            offsets.append(offsets[offsets.count - 1] + item.count / dimension)
        }
        let flat = items.flatMap { $0 }
        try self.init(
            elements: TokenElements.converting(flat, dimension: dimension, to: elementType),
            offsets: offsets,
            dimension: dimension
        )
    }

    /// Item `index` as its own multivector (copies its tokens; shares them for mapped values).
    /// - Parameter index: the item.
    /// - Returns: the item's tokens.
    public func item(_ index: Int) -> Multivector {
        let range = tokenRange(of: index)
        let values = (range.lowerBound * dimension)..<(range.upperBound * dimension)
        let elements: TokenElements
        switch self.elements {
        case .float32(let v): elements = .float32(Array(v[values]))
        case .float16(let v): elements = .float16(Array(v[values]))
        case .bfloat16(let v): elements = .bfloat16(Array(v[values]))
        case .int8(let v, let s): elements = .int8(values: Array(v[values]), scales: Array(s[range]))
        case .mapped(let tokens):
            // A view of the same mapping, not a copy.
            elements = .mapped(
                tokens.slice(
                    values: values.lowerBound,
                    count: values.count,
                    firstToken: range.lowerBound,
                    tokenCount: range.count
                )
            )
        }
        // Valid by construction: a whole number of tokens with matching scales.
        return try! Multivector(elements: elements, dimension: dimension)
    }

    static func validate(elements: TokenElements, dimension: Int, argument: String) throws(MaxSimError) {
        guard dimension > 0 else {
            throw MaxSimError(.dimensionMismatch, argument: "dimension", "must be positive; got \(dimension)")
        }
        guard elements.valueCount % dimension == 0 else {
            throw MaxSimError(
                .dimensionMismatch,
                argument: argument,
                "\(elements.valueCount) values are not a whole number of \(dimension)-value tokens"
            )
        }
        if case .int8(let values, let scales) = elements, scales.count != values.count / dimension {
            throw MaxSimError(
                .invalidShape,
                argument: "\(argument).scales",
                "\(scales.count) scales for \(values.count / dimension) tokens"
            )
        }
        if case .mapped(let tokens) = elements, tokens.elementType == .int8,
            tokens.scaleCount != tokens.valueCount / dimension
        {
            throw MaxSimError(
                .invalidShape,
                argument: "\(argument).scales",
                "\(tokens.scaleCount) scales for \(tokens.valueCount / dimension) tokens"
            )
        }
    }
}

/// Multivectors padded to one length: values `[count, paddedLength, dimension]` and each item's real length.
/// Rows past an item's length are ignored (their contents do not matter).
public struct PaddedMultivectors: Sendable, Equatable {
    /// The values, `[count, paddedLength, dimension]`.
    public let elements: TokenElements
    /// Each item's real token count (≤ `paddedLength`).
    public let lengths: [Int]
    /// Token rows reserved per item.
    public let paddedLength: Int
    /// Values per token.
    public let dimension: Int

    /// The number of items.
    public var count: Int { lengths.count }

    /// Wraps padded values.
    /// - Parameters:
    ///   - elements: `[count, paddedLength, dimension]` values.
    ///   - lengths: each item's real token count, 0 ≤ length ≤ `paddedLength`.
    ///   - paddedLength: token rows per item.
    ///   - dimension: values per token (> 0).
    /// - Throws: `MaxSimError` naming `lengths` and the index of a length out of range, or the shape problem.
    public init(elements: TokenElements, lengths: [Int], paddedLength: Int, dimension: Int) throws(MaxSimError) {
        try Multivectors.validate(elements: elements, dimension: dimension, argument: "elements")
        guard paddedLength >= 0 else {
            throw MaxSimError(.invalidLength, argument: "paddedLength", "must not be negative; got \(paddedLength)")
        }
        guard elements.valueCount == lengths.count * paddedLength * dimension else {
            throw MaxSimError(
                .invalidShape,
                argument: "elements",
                "\(elements.valueCount) values, expected \(lengths.count) × \(paddedLength) × \(dimension)"
            )
        }
        for (index, length) in lengths.enumerated() where length < 0 || length > paddedLength {
            throw MaxSimError(
                .invalidLength,
                argument: "lengths",
                index: index,
                "length \(length) is outside 0...\(paddedLength) (the padding)"
            )
        }
        self.elements = elements
        self.lengths = lengths
        self.paddedLength = paddedLength
        self.dimension = dimension
    }
}
